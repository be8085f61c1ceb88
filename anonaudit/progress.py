"""Progress output: bars on a terminal, one plain line per finished unit of work elsewhere.

A log file (``anonaudit run ... > log``) gets no bar redraws: when standard error is not a terminal,
:func:`progress` wraps nothing and :func:`finished` prints one line per finished unit (an audit unit,
a training epoch). ``ANONAUDIT_PROGRESS=0`` or :func:`silenced` turn both off.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


_silenced = 0


def progress_enabled() -> bool:
    return not _silenced and os.environ.get("ANONAUDIT_PROGRESS", "1") not in ("0", "false", "no")


def on_terminal() -> bool:
    """Whether progress goes to a terminal (bars) rather than a log or pipe (plain lines)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No progress output from anything called inside (an audit run with ``show_progress=False``)."""
    global _silenced
    _silenced += 1
    try:
        yield
    finally:
        _silenced -= 1


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, disable: bool = False) -> Iterable[T]:
    """Wrap ``iterable`` in a progress bar when progress is enabled and goes to a terminal."""
    if disable or not progress_enabled() or not on_terminal():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def finished(what: str, seconds: float, status: str = "ok") -> None:
    """One line for a finished unit of work, when progress is enabled and not on a terminal
    (on a terminal the bars already show it)."""
    if progress_enabled() and not on_terminal():
        print(f"[{status}] {what} ({seconds:.1f} s)", file=sys.stderr, flush=True)


def reused(target: str, run: object, units: list[str]) -> None:
    """Say which finished units of ``target`` a resumed run took from its folder ``run`` (always
    printed, even without progress output: what was not recomputed belongs in the run's log)."""
    if units:
        print(
            f"reused {len(units)} finished unit(s) of {target} from {run}: {', '.join(units)}",
            file=sys.stderr,
            flush=True,
        )
