"""The OCR engine interface: one :class:`Reading` per image, memoised per crop content and config.

Where OCR looks: a record with boxes is read on its first box (the plate), grown by a small margin
and clipped to the image, because scenes are large and an OCR model rescales its input to a
fixed height; a record without boxes (a plate crop) is read whole. Each crop is read as one text
line ("crops are read whole"): no text detection step decides what to read.

Readings are cached with :class:`~anonaudit.memo.Memo` under the engine's :meth:`OCREngine.model_id`
(engine name, backend version, every parameter) and the content hash of the crop, so the
originals of a data set are OCR'd once however many targets an audit attacks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...data.imageset import Box, ImageSet, Record
from ...data.io import as_rgb_uint8, content_hash
from ...memo import Memo
from ...params import ParamsMixin
from ...progress import progress

#: Margin around the plate box, as a fraction of its width/height on each side.
PLATE_MARGIN = 0.05

#: Characters of licence plates (for ``allowlist="plates"``).
PLATE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class Reading:
    """What an engine read in one image.

    ``text`` is the raw text (lines joined with a space), ``confidence`` the engine's own score in
    [0, 1] (nan when nothing was read), ``alternatives`` per character of ``text`` the ranked
    candidates ``(char, probability)`` best first (``None`` when the engine cannot expose them).
    """

    text: str
    confidence: float
    alternatives: tuple[tuple[tuple[str, float], ...], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": None if math.isnan(self.confidence) else self.confidence,
            "alternatives": None
            if self.alternatives is None
            else [[[c, None if math.isnan(p) else p] for c, p in pos] for pos in self.alternatives],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reading:
        conf = data.get("confidence")
        alts = data.get("alternatives")
        return cls(
            text=data["text"],
            confidence=float("nan") if conf is None else float(conf),
            alternatives=None
            if alts is None
            else tuple(tuple((c, float("nan") if p is None else float(p)) for c, p in pos) for pos in alts),
        )

    @classmethod
    def empty(cls, with_alternatives: bool) -> Reading:
        """Nothing read (an empty string with nan confidence)."""
        return cls("", float("nan"), () if with_alternatives else None)


def resolve_allowlist(allowlist: str | None) -> str | None:
    """``"plates"`` -> A-Z0-9; any other string is the allowed characters themselves."""
    if allowlist is None:
        return None
    return PLATE_CHARS if allowlist == "plates" else allowlist


def plate_box(record: Record, image_shape: tuple[int, ...], margin: float = PLATE_MARGIN) -> Box:
    """The region OCR reads: the record's first box grown by ``margin``, clipped; else the image."""
    h, w = image_shape[:2]
    if not record.boxes:
        return Box(0, 0, w, h, "image")
    box = record.boxes[0].expand(margin) if margin else record.boxes[0]
    clipped = box.clip(w, h)
    return clipped if clipped.area > 0 else Box(0, 0, w, h, "image")


def plate_crop(image: np.ndarray, record: Record, margin: float = PLATE_MARGIN) -> np.ndarray:
    """The pixels OCR reads for ``record`` (see :func:`plate_box`)."""
    box = plate_box(record, image.shape, margin)
    ys, xs = box.slices
    return np.ascontiguousarray(image[ys, xs])


def join_lines(
    lines: Sequence[tuple[str, float, tuple[float, float, float, float]]], min_height: float = 0.6
) -> tuple[str, float]:
    """Assemble detected text lines ``(text, confidence, (x, y, w, h))`` into one plate reading.

    Lines shorter than ``min_height`` times the tallest one (slogans, state names, stickers) are
    dropped; the rest are ordered top-to-bottom by rows, then left-to-right, and joined with
    spaces. Confidence is the character-weighted mean of the kept lines' confidences.
    """
    kept = [ln for ln in lines if ln[0].strip()]
    if not kept:
        return "", float("nan")
    tallest = max(ln[2][3] for ln in kept)
    kept = [ln for ln in kept if ln[2][3] >= min_height * tallest]
    # A line joins the current row when its centre is within half the tallest line's height of the
    # centre of the row's first line; otherwise it starts a new row.
    kept.sort(key=lambda ln: ln[2][1] + ln[2][3] / 2)
    rows: list[list[tuple[str, float, tuple[float, float, float, float]]]] = []
    for ln in kept:
        centre = ln[2][1] + ln[2][3] / 2
        if rows and abs(centre - (rows[-1][0][2][1] + rows[-1][0][2][3] / 2)) < 0.5 * tallest:
            rows[-1].append(ln)
        else:
            rows.append([ln])
    ordered = [ln for row in rows for ln in sorted(row, key=lambda ln: ln[2][0])]
    text = " ".join(ln[0].strip() for ln in ordered)
    weights = np.array([max(1, len(ln[0].strip())) for ln in ordered], dtype=float)
    conf = float(np.average([ln[1] for ln in ordered], weights=weights))
    return text, conf


class OCREngine(ParamsMixin):
    """Base class of OCR engines (registered in ``OCR_ENGINES``).

    Subclasses implement :meth:`_recognize` (a batch of RGB crops -> readings) and
    :meth:`backend_version`. ``alternatives_reason`` is empty when the engine exposes per-position
    alternatives, else it says why not (top-k metrics are then absent for this engine).
    """

    name = ""
    alternatives_reason = ""

    @property
    def provides_alternatives(self) -> bool:
        return not self.alternatives_reason

    def backend_version(self) -> str:
        raise NotImplementedError

    def model_id(self) -> str:
        """Cache identity: engine class, backend version and every parameter that changes outputs."""
        params = json.dumps(self.get_params(), sort_keys=True, default=str)
        cls = type(self)
        return f"ocr:{self.name}:{cls.__module__}.{cls.__qualname__}:{self.backend_version()}:{params}"

    def _recognize(self, crops: list[np.ndarray]) -> list[Reading]:
        raise NotImplementedError

    def read_arrays(self, images: Sequence[np.ndarray], batch_size: int = 32) -> list[Reading]:
        """Read each image whole as one plate (memoised by content hash)."""
        arrays = [as_rgb_uint8(im, f"image {i}") for i, im in enumerate(images)]
        memo = Memo(self.model_id())

        def compute(idx: list[int]) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for start in range(0, len(idx), batch_size):
                chunk = [arrays[i] for i in idx[start : start + batch_size]]
                out.extend(r.to_json() for r in self._recognize(chunk))
            return out

        values = memo.get_or_compute([content_hash(a) for a in arrays], compute)
        return [Reading.from_json(v) for v in values]

    def read(
        self,
        images: ImageSet,
        batch_size: int = 32,
        records: Sequence[Record] | None = None,
        margin: float = PLATE_MARGIN,
        desc: str = "",
    ) -> list[Reading]:
        """One reading per image: the plate box crop (with ``margin``) or the whole image.

        ``records`` (default: the images' own) say where the plate is; an attack passes the
        originals' records so a release without labels is cropped where the original plate was.
        """
        recs = list(records) if records is not None else images.records
        if len(recs) != len(images):
            raise ValueError(f"{len(recs)} records for {len(images)} images")
        out: list[Reading] = []
        batches = images.batches(batch_size)
        total = math.ceil(len(images) / batch_size)
        for idx, arrays in progress(batches, desc=desc or f"ocr {self.name}", total=total):
            crops = [plate_crop(a, recs[i], margin) for i, a in zip(idx, arrays)]
            out.extend(self.read_arrays(crops, batch_size))
        return out
