"""Plate detectability (utility): does a text detector still find the plate after anonymization?

An anonymized plate that a detector still finds keeps its use for counting vehicles, tracking or
checking that every plate was redacted. ``PlateDetectability`` ("plate_detectability") runs the
RapidOCR text detector (PP-OCR DB model, shipped in the ``rapidocr`` wheel) on a window around
each plate box and counts the plate as **detected** when:

1. at least one detected text region lies mostly on the plate: ``area(region & plate) >=
   min_inside * area(region)`` (so scene text and the huge blobs a blurred scene produces do not
   count), and
2. the union of those regions is plate-shaped: at least ``min_aspect`` times wider than tall and
   spanning at least ``min_coverage`` of the plate box width.

The window is the plate box grown by ``context`` times its width and height on each side (a plate
crop without boxes is its own window and plate box). The value is the share of anonymized images
with a detected plate (Wilson 95% CI); the measurement's ``original`` is the same on the originals.
"""

from __future__ import annotations

from ..data.imageset import Box, Record, Release
from ..measurement import Measurement
from ..models.ocr.rapid import RapidOCREngine, TextRegion
from ..registry import EVALUATORS
from ..stats import proportion
from .base import Evaluator


def plate_detected(
    regions: list[TextRegion], plate: Box, min_inside: float = 0.5, min_coverage: float = 0.3, min_aspect: float = 1.5
) -> bool:
    """The detection rule above for text ``regions`` and a ``plate`` box in the same coordinates."""
    kept = []
    for r in regions:
        area = r.w * r.h
        iw = min(r.x + r.w, plate.x + plate.w) - max(r.x, plate.x)
        ih = min(r.y + r.h, plate.y + plate.h) - max(r.y, plate.y)
        if area > 0 and iw > 0 and ih > 0 and iw * ih >= min_inside * area:
            kept.append(r)
    if not kept:
        return False
    x0, y0 = min(r.x for r in kept), min(r.y for r in kept)
    x1, y1 = max(r.x + r.w for r in kept), max(r.y + r.h for r in kept)
    w, h = x1 - x0, y1 - y0
    return h > 0 and w >= min_aspect * h and w >= min_coverage * plate.w


def plate_window(record: Record, shape: tuple[int, ...], context: float) -> tuple[Box, Box]:
    """``(window, plate box in window coordinates)`` for a record in an image of ``shape``."""
    h, w = shape[:2]
    if not record.boxes:
        return Box(0, 0, w, h), Box(0, 0, w, h, "plate")
    plate = record.boxes[0].clip(w, h)
    dx, dy = round(plate.w * context), round(plate.h * context)
    win = Box(plate.x - dx, plate.y - dy, plate.w + 2 * dx, plate.h + 2 * dy).clip(w, h)
    return win, Box(plate.x - win.x, plate.y - win.y, plate.w, plate.h, plate.label)


@EVALUATORS.register("plate_detectability")
class PlateDetectability(Evaluator):
    """Share of anonymized images in which the text detector still finds the plate (module doc).

    Args:
        min_inside: share of a detected region that must lie on the plate box.
        min_coverage: share of the plate box width the kept regions must span.
        min_aspect: minimum width / height of the kept regions' union.
        context: window margin around the plate box, in plate widths/heights per side.
    """

    higher_is_better = True
    folder_audit = {"plates": {}}

    def __init__(
        self, min_inside: float = 0.5, min_coverage: float = 0.3, min_aspect: float = 1.5, context: float = 1.0
    ):
        self.min_inside = min_inside
        self.min_coverage = min_coverage
        self.min_aspect = min_aspect
        self.context = context
        self._engine = RapidOCREngine()
        self._anonymized: list[bool]
        self._originals: list[bool]
        self.add_state("_anonymized", [], merge="cat")
        self.add_state("_originals", [], merge="cat")
        super().__init__()

    def _detect(self, images, records: list[Record]) -> list[bool]:
        windows, plates = [], []
        for i, rec in enumerate(records):
            image = images[i]
            win, plate = plate_window(rec, image.shape, self.context)
            ys, xs = win.slices
            windows.append(image[ys, xs])
            plates.append(plate)
        found = self._engine.detect_arrays(windows)
        return [
            plate_detected(r, p, self.min_inside, self.min_coverage, self.min_aspect) for r, p in zip(found, plates)
        ]

    def update(self, release: Release) -> None:
        records = release.originals.records
        self._anonymized.extend(self._detect(release.anonymized, records))
        self._originals.extend(self._detect(release.originals, records))

    def compute(self) -> Measurement:
        method = (
            "share of images where the RapidOCR text detector finds a plate-shaped text region on the plate box "
            f"(>= {self.min_inside:g} of each region on the box, union >= {self.min_aspect:g}:1 wide and >= "
            f"{self.min_coverage:g} of the box width), Wilson 95% CI"
        )
        return self.measurement(proportion(self._anonymized, method), original=proportion(self._originals, method))
