"""``Box`` (a region in pixels) and ``Record`` (what is known about one image apart from its pixels).

They sit below :mod:`anonaudit.data.imageset` and :mod:`anonaudit.data.degradation`, which both use them:
a release's declared degradation says where it was applied in terms of a record's boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Box:
    """An axis-aligned region ``(x, y, w, h)`` in pixels, e.g. a plate or face."""

    x: int
    y: int
    w: int
    h: int
    label: str = ""

    def clip(self, width: int, height: int) -> Box:
        """The part of the box inside a ``width x height`` image (may be empty)."""
        x0, y0 = max(0, int(self.x)), max(0, int(self.y))
        x1, y1 = min(width, int(self.x + self.w)), min(height, int(self.y + self.h))
        return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0), self.label)

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    @property
    def area(self) -> int:
        return max(0, self.w) * max(0, self.h)

    def expand(self, fraction: float) -> Box:
        dx, dy = int(round(self.w * fraction)), int(round(self.h * fraction))
        return Box(self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy, self.label)


@dataclass(frozen=True)
class Record:
    """Everything known about one image apart from its pixels."""

    key: str
    path: Path | None = None
    identity: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    boxes: tuple[Box, ...] = ()
    text: str | None = None
