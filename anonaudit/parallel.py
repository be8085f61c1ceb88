"""Worker processes for CPU-bound model calls that hold Python's GIL (dlib's face descriptor network).

``ANONAUDIT_WORKERS`` sets the number of processes (default on Linux: the CPUs this process may
use, at most 8; elsewhere 1; ``1`` runs everything in this process). Workers are forked (Linux), so
a user's script needs no ``if __name__ == "__main__"`` guard; they only run the given module-level
function (dlib, numpy), never torch. The pool starts on first use, is reused by every call and shut
down at exit. Results come back in input order and do not depend on the number of workers. If the
pool breaks (a worker killed), the work is redone in this process with a warning: a slow audit, not
a lost one.

Workers never outlive the audit. Each one dies with its parent: on Linux the kernel sends it SIGKILL
when the parent dies (``prctl(PR_SET_PDEATHSIG)``, set when the pool is started from the main thread,
whose end is the process's end), and everywhere a watchdog thread exits it within
:data:`WATCH_SECONDS` of the parent's death (its parent id changes). Workers ignore SIGINT: Ctrl-C
reaches the whole process group, and the parent stops them (:func:`terminate`) when a parallel call
is interrupted. :func:`stop_on_signals` turns SIGTERM into :class:`Terminated` (a
``KeyboardInterrupt``), so ``kill PID`` stops an audit as Ctrl-C does: workers terminated, finished
units kept, and a rerun resumes; it holds an interrupt back while workers are being started.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 8
#: How often a worker's watchdog checks that its parent is alive (seconds).
WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
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
        # Fork starts the workers in this thread: the kernel's parent-death signal fires when the
        # thread that forked ends, so it is asked for only from the main thread.
        tie = threading.current_thread() is threading.main_thread()
        with _interrupts_deferred():  # one arriving during a fork would be lost in the fork's handlers
            _pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context(method),
                                        initializer=_init_worker, initargs=(os.getpid(), tie))
            _pool_size = size
            _pool.submit(int)  # starts (forks) every worker now
    return _pool


def _init_worker(parent: int, parent_death_signal: bool) -> None:
    """First thing every worker runs: leave Ctrl-C and SIGTERM's handling to the parent, and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited by fork
    if parent_death_signal:
        _kill_with_parent()
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="anonaudit-parent-watch", daemon=True).start()


def _kill_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (nothing elsewhere: the watchdog covers it)."""
    if not sys.platform.startswith("linux"):
        return
    # OSError, AttributeError: no prctl in this C library; the watchdog still ends the worker
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _watch_parent(parent: int) -> None:
    """Exit this worker at once when ``parent`` is gone (the worker was re-parented)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)


def shutdown() -> None:
    """Stop the worker processes (they restart on the next parallel call)."""
    global _pool, _pool_size
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
    _pool, _pool_size = None, 0


def terminate() -> None:
    """Stop the worker processes now, abandoning what they compute (an interrupted call)."""
    global _pool, _pool_size
    pool, _pool, _pool_size = _pool, None, 0
    if pool is None:
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before Python 3.14
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
    # A worker killed while it passed a chunk or a result leaves half a message in a pipe, and the
    # pool's manager thread would wait for the rest forever (holding up the interpreter's exit): the
    # feeder is not waited for, and the results pipe is closed, so the manager reads its end.
    with contextlib.suppress(AttributeError, OSError):
        pool._call_queue.cancel_join_thread()
        pool._result_queue._writer.close()
    pool.shutdown(wait=False, cancel_futures=True)


atexit.register(shutdown)


class Terminated(KeyboardInterrupt):
    """SIGTERM received: raised in the main thread, so the work stops as on Ctrl-C."""


_deferring = 0  # > 0 while workers are started (see _interrupts_deferred)
_pending: KeyboardInterrupt | None = None


def _raiser(kind: type[KeyboardInterrupt]) -> Callable[[int, object], None]:
    """A signal handler raising ``kind``, or keeping it for later while interrupts are deferred."""

    def handler(signum: int, frame: object) -> None:
        global _pending
        if _deferring:
            _pending = _pending or kind()
            return
        raise kind()

    return handler


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated` in the main
    thread, except while workers are being started: then the signal waits until they are (an
    exception raised inside a fork's handlers would be lost, and the work would go on). A signal
    whose handling was changed before (ignored by ``nohup``, say) is left as it is; outside the main
    thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    kinds = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
    previous = {s: signal.getsignal(s) for s in kinds}
    for s, kind in kinds.items():
        if previous[s] is defaults[s]:
            signal.signal(s, _raiser(kind))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold back the interrupts of :func:`stop_on_signals` inside the block; raise the first after it."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None:
            pending, _pending = _pending, None
            raise pending


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
    chunks = [items[a:b] for a, b in itertools.pairwise(bounds)]
    try:
        parts = list(_get_pool(size).map(fn, chunks))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workers' chunks are lost with the call
        terminate()
        raise
    except BrokenProcessPool as exc:
        shutdown()
        warnings.warn(
            f"worker processes failed ({exc}); computing in this process instead", RuntimeWarning, stacklevel=2
        )
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
