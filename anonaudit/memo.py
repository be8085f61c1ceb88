"""Compute once: per-image model outputs cached by (model id, image content hash).

OCR readings, embeddings and detections are stored in memory for the process and in an SQLite
file so later runs reuse them: ``$ANONAUDIT_CACHE/features.sqlite`` when ``ANONAUDIT_CACHE`` is set
(one cache shared by every run), otherwise the file of the run in progress (an audit with an output
folder uses ``<output>/cache.sqlite``: see :func:`run_cache`), so attacks, sweeps and reruns of one
run folder share every model output they have in common. Values are JSON-able objects or numpy
arrays (stored with ``allow_pickle=False``; nothing is unpickled).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_MEMORY: dict[str, dict[str, Any]] = {}
_LOCK = threading.Lock()
_RUN_DB: Path | None = None  # the SQLite file of the run in progress (see run_cache)
# Computes missing values in parallel while set (see parallel_compute): (compute, todo) -> values.
_MAPPER: Callable[[Callable[[list[int]], list[Any]], list[int]], list[Any]] | None = None

#: File name of a run's own cache inside its output folder.
RUN_CACHE_NAME = "cache.sqlite"


def _encode(value: Any) -> tuple[str, bytes]:
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return "npy", buf.getvalue()
    return "json", json.dumps(value).encode()


def _decode(kind: str, blob: bytes) -> Any:
    if kind == "npy":
        return np.load(io.BytesIO(blob), allow_pickle=False)
    return json.loads(blob.decode())


def default_db_path() -> Path | None:
    """``$ANONAUDIT_CACHE/features.sqlite`` when set, else the active run's cache file (or None)."""
    root = os.environ.get("ANONAUDIT_CACHE")
    return Path(root) / "features.sqlite" if root else _RUN_DB


@contextmanager
def run_cache(db_path: str | Path | None) -> Iterator[Path | None]:
    """Make ``db_path`` the persistent cache of every :class:`Memo` created inside the block.

    A module-level setting (not a context variable) so threads and forked worker processes started
    inside the block use it too. ``None`` leaves the setting as it is. ``ANONAUDIT_CACHE``, when
    set, still takes precedence.
    """
    global _RUN_DB
    if db_path is None:
        yield _RUN_DB
        return
    with _LOCK:
        previous, _RUN_DB = _RUN_DB, Path(db_path)
    try:
        yield _RUN_DB
    finally:
        with _LOCK:
            _RUN_DB = previous


class Memo:
    """Cache of one model's outputs. ``model_id`` must change whenever outputs could change."""

    def __init__(self, model_id: str, db_path: str | Path | None = None):
        self.model_id = model_id
        self.db_path = Path(db_path) if db_path else default_db_path()
        with _LOCK:
            self._mem = _MEMORY.setdefault(model_id, {})
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection | None:
        if self.db_path is None:
            return None
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.db_path, timeout=30)
        con.execute(
            "CREATE TABLE IF NOT EXISTS memo (model TEXT, key TEXT, kind TEXT, value BLOB, PRIMARY KEY (model, key))"
        )
        return con

    def get_or_compute(self, keys: Sequence[str], compute: Callable[[list[int]], list[Any]]) -> list[Any]:
        """Values for ``keys``; ``compute(indices)`` is called once, batched, for the missing ones."""
        out: list[Any] = [None] * len(keys)
        missing: list[int] = []
        for i, k in enumerate(keys):
            if k in self._mem:
                out[i] = self._mem[k]
            else:
                missing.append(i)
        con = self._connect() if missing else None
        if con is not None:
            still = []
            for i in missing:
                row = con.execute(
                    "SELECT kind, value FROM memo WHERE model=? AND key=?", (self.model_id, keys[i])
                ).fetchone()
                if row is None:
                    still.append(i)
                else:
                    out[i] = self._mem[keys[i]] = _decode(row[0], row[1])
            missing = still
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            # The same image may occur twice in one call: compute each distinct key once.
            first: dict[str, int] = {}
            for i in missing:
                first.setdefault(keys[i], i)
            todo = list(first.values())
            values = compute(todo) if _MAPPER is None else _MAPPER(compute, todo)
            if len(values) != len(todo):
                raise RuntimeError(f"{self.model_id}: computed {len(values)} values for {len(todo)} images")
            for i, v in zip(todo, values):
                self._mem[keys[i]] = v
            for i in missing:
                out[i] = self._mem[keys[i]]
            if con is not None:
                with con:
                    con.executemany(
                        "INSERT OR REPLACE INTO memo VALUES (?, ?, ?, ?)",
                        [(self.model_id, keys[i], *_encode(v)) for i, v in zip(todo, values)],
                    )
        if con is not None:
            con.close()
        return out


@contextmanager
def parallel_compute(mapper: Callable[[Callable[[list[int]], list[Any]], list[int]], list[Any]]) -> Iterator[None]:
    """Inside the block, every :class:`Memo` computes its missing values with ``mapper(compute, todo)``
    (e.g. in parts on a cluster: :class:`~anonaudit.executors.RayExecutor`) instead of ``compute(todo)``.

    ``mapper`` must return what ``compute(todo)`` returns. Splitting ``todo`` is safe because a
    memoised value depends on its own image only (the contract every cached model keeps: the memo
    already computes whichever subset of a batch it misses)."""
    global _MAPPER
    with _LOCK:
        previous, _MAPPER = _MAPPER, mapper
    try:
        yield
    finally:
        with _LOCK:
            _MAPPER = previous


def clear_memory() -> None:
    """Forget every in-memory cached output (tests, benchmarks)."""
    with _LOCK:
        _MEMORY.clear()
