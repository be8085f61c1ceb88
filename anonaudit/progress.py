"""Progress bars (tqdm), silenced with ``ANONAUDIT_PROGRESS=0`` or when not on a terminal in CI."""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("ANONAUDIT_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, disable: bool = False) -> Iterable[T]:
    """Wrap ``iterable`` in a progress bar unless progress output is disabled."""
    if disable or not progress_enabled():
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)
