"""Progress bars (tqdm), silenced with ``ANONAUDIT_PROGRESS=0`` or when not on a terminal in CI."""

from __future__ import annotations

import contextlib
import os
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


_silenced = 0


def progress_enabled() -> bool:
    return not _silenced and os.environ.get("ANONAUDIT_PROGRESS", "1") not in ("0", "false", "no")


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No progress bar from anything called inside (an audit run with ``show_progress=False``)."""
    global _silenced
    _silenced += 1
    try:
        yield
    finally:
        _silenced -= 1


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, disable: bool = False) -> Iterable[T]:
    """Wrap ``iterable`` in a progress bar unless progress output is disabled."""
    if disable or not progress_enabled():
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)
