"""Shared helpers of the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def cpu_line() -> str:
    """The machine's CPU count and how many this process may use."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return f"CPUs: {os.cpu_count()} (usable by this process: {affinity if affinity is not None else 'unknown'})"


def best_time(fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls of ``fn`` (``before`` runs untimed ahead of each) and the last value."""
    best, value = float("inf"), None
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value
