"""Degradation operators: how an anonymizer degrades an image, declared on the ``Release``.

An anonymizer that knows its operation (a classical blur, pixelation, mask or noise) declares it
with :meth:`Anonymizer.degradation() <anonaudit.anonymizers.base.Anonymizer.degradation>`; the
audit puts it on the :class:`~anonaudit.data.imageset.Release` it builds, and the inversion
attacks invert the declared operator (:mod:`anonaudit.attacks.inversion`). A release that declares
nothing (an external release, a learned method) is inverted blind, with the operator estimated
from the image. No attack needs to know which anonymizer made a release.

Every operator says where it was applied:

- ``region="image"``: the whole image;
- ``region="boxes"``: inside each box of the *released* image's record, grown by ``margin`` (a
  fraction of the box's width and height on each side) and clipped to the image. Anonymizers keep
  their input's boxes on their output (the classical ones) or replace them by the regions they
  changed (the face anonymizers), so these are the boxes the operator was applied in.

``relative=True`` gives the strength as a fraction of the region's height (for ``"image"`` the
first box's height, else the image height), exactly as :mod:`anonaudit.anonymizers.classical`
applies it; :meth:`Degradation.regions` turns that into pixels for one image.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

from ..errors import ConfigError
from ..params import check_range
from .records import Box, Record

REGIONS = ("image", "boxes")


@dataclass(frozen=True, kw_only=True)
class Degradation:
    """Base of the operators: where the operation was applied and how its strength scales."""

    region: str = "image"
    relative: bool = False
    margin: float = 0.0

    #: Short name of the operation (``"gaussian_blur"``, ``"pixelate"``, ...).
    kind: ClassVar[str] = ""
    #: Name of the strength field (``"sigma"``, ``"block"``, ...), empty when there is none.
    strength_field: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ConfigError(f"{type(self).__name__}: region must be one of {REGIONS}, got {self.region!r}")
        check_range(type(self).__name__, "margin", self.margin, ge=0, finite=True)
        if self.strength_field:
            check_range(type(self).__name__, self.strength_field, getattr(self, self.strength_field), ge=0, finite=True)

    def strength(self) -> float:
        """The strength as declared (pixels, or a fraction of the region height); 0 without one."""
        return float(getattr(self, self.strength_field)) if self.strength_field else 0.0

    def strength_px(self, reference_height: int) -> float:
        """The strength in pixels for a region ``reference_height`` pixels high."""
        return self.strength() * reference_height if self.relative else self.strength()

    def regions(self, record: Record, shape: tuple[int, ...]) -> list[tuple[Box, float]]:
        """Where the operator was applied in one image of ``shape``: ``(box, strength in pixels)``.

        ``record`` is the released image's record. Empty boxes (outside the image) are left out;
        ``region="boxes"`` on a record without boxes gives ``[]`` (nothing was changed).
        """
        h, w = shape[:2]
        if self.region == "image":
            ref = record.boxes[0].h if record.boxes else h
            return [(Box(0, 0, w, h), self.strength_px(ref))]
        out = []
        for b in record.boxes:
            box = (b.expand(self.margin) if self.margin else b).clip(w, h)
            if box.area:
                out.append((box, self.strength_px(box.h)))
        return out

    def with_strength(self, strength: float, relative: bool | None = None) -> Degradation:
        """The same operation with another strength (and, when given, another ``relative``)."""
        changes: dict = {} if relative is None else {"relative": bool(relative)}
        if self.strength_field:
            changes[self.strength_field] = float(strength)
        return replace(self, **changes)

    def describe(self) -> str:
        """A one-line description, e.g. ``gaussian_blur(sigma=0.12 x region height, truncate=4) in boxes``."""
        parts = []
        for f in fields(self):
            if f.name in ("region", "relative", "margin"):
                continue
            v = getattr(self, f.name)
            text = f"{v:.4g}" if isinstance(v, float) else str(v)
            if f.name == self.strength_field:
                text += " x region height" if self.relative else " px"
            parts.append(f"{f.name}={text}")
        where = (
            "whole image"
            if self.region == "image"
            else "in boxes" + (f" grown by {self.margin:g}" if self.margin else "")
        )
        return f"{self.kind}({', '.join(parts)}) {where}"


@dataclass(frozen=True, kw_only=True)
class GaussianBlurOperator(Degradation):
    """Gaussian blur of standard deviation ``sigma``, kernel truncated at ``truncate`` sigmas
    (``scipy.ndimage.gaussian_filter``, reflect boundaries)."""

    sigma: float
    truncate: float = 4.0
    kind: ClassVar[str] = "gaussian_blur"
    strength_field: ClassVar[str] = "sigma"


@dataclass(frozen=True, kw_only=True)
class BoxBlurOperator(Degradation):
    """Mean over a ``size x size`` window (``scipy.ndimage.uniform_filter``, reflect boundaries;
    the size is rounded to an integer)."""

    size: float
    kind: ClassVar[str] = "box_blur"
    strength_field: ClassVar[str] = "size"


@dataclass(frozen=True, kw_only=True)
class PixelateOperator(Degradation):
    """Mosaic of ``block x block`` cells anchored at the region's top-left corner, each the mean
    colour of its cell (the block is rounded to an integer)."""

    block: float
    kind: ClassVar[str] = "pixelate"
    strength_field: ClassVar[str] = "block"


@dataclass(frozen=True, kw_only=True)
class MaskOperator(Degradation):
    """Solid fill with ``color``: nothing of the region survives."""

    color: tuple[int, int, int] = (0, 0, 0)
    kind: ClassVar[str] = "mask"


@dataclass(frozen=True, kw_only=True)
class NoiseOperator(Degradation):
    """Additive i.i.d. Gaussian noise of standard deviation ``std`` (0..255 scale)."""

    std: float
    kind: ClassVar[str] = "noise"
    strength_field: ClassVar[str] = "std"


__all__ = [
    "REGIONS",
    "BoxBlurOperator",
    "Degradation",
    "GaussianBlurOperator",
    "MaskOperator",
    "NoiseOperator",
    "PixelateOperator",
]
