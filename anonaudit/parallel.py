"""Worker processes for CPU-bound model calls that hold Python's GIL (dlib's face descriptor network).

``ANONAUDIT_WORKERS`` sets the number of processes (default on Linux: the CPUs this process may
use, at most 8; elsewhere 1; ``1`` runs everything in this process). Workers are forked (Linux), so
a user's script needs no ``if __name__ == "__main__"`` guard; they only run the given module-level
function (dlib, numpy), never torch. The pool starts on first use, is reused by every call and shut
down at exit. Results come back in input order and do not depend on the number of workers. If the
pool breaks (a worker killed), the work is redone in this process with a warning: a slow audit, not
a lost one.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence, TypeVar

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 8
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def worker_count() -> int:
    """Processes to use: ``ANONAUDIT_WORKERS`` or the usable CPUs (capped at 8)."""
    raw = os.environ.get("ANONAUDIT_WORKERS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"ANONAUDIT_WORKERS must be a positive integer, got {raw!r}") from None
        if value < 1:
            raise ConfigError(f"ANONAUDIT_WORKERS must be a positive integer, got {raw!r}")
        return value
    if not sys.platform.startswith("linux"):
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS))


def _get_pool(size: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != size:
        shutdown()
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        _pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context(method))
        _pool_size = size
    return _pool


def shutdown() -> None:
    """Stop the worker processes (they restart on the next parallel call)."""
    global _pool, _pool_size
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
    _pool, _pool_size = None, 0


atexit.register(shutdown)


def map_chunks(fn: Callable[[list[T]], list[R]], items: Sequence[T], min_per_worker: int = 8) -> list[R]:
    """``fn(items)`` computed over contiguous chunks in worker processes, concatenated in order.

    ``fn`` must be a module-level function (picklable) mapping a list to a list of the same length.
    Fewer than ``min_per_worker`` items per worker, or one worker, runs ``fn(items)`` here.
    """
    items = list(items)
    size = worker_count()
    workers = min(size, len(items) // max(1, min_per_worker))
    if workers < 2:
        return fn(items)
    bounds = [round(i * len(items) / workers) for i in range(workers + 1)]
    chunks = [items[a:b] for a, b in zip(bounds, bounds[1:])]
    try:
        parts = list(_get_pool(size).map(fn, chunks))
    except BrokenProcessPool as exc:
        shutdown()
        warnings.warn(f"worker processes failed ({exc}); computing in this process instead", RuntimeWarning, stacklevel=2)
        return fn(items)
    return [r for part in parts for r in part]


def thread_map(fn: Callable[[T], R], items: Sequence[T], min_items: int = 4) -> list[R]:
    """``[fn(x) for x in items]`` computed by ``worker_count()`` threads, in input order.

    For kernels that release the GIL (scipy.ndimage, OpenCV, numpy on large arrays), so the same
    values come out faster on several cores. Fewer than ``min_items`` items, or one worker, run here.
    """
    items = list(items)
    threads = min(worker_count(), len(items))
    if threads < 2 or len(items) < min_items:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))
