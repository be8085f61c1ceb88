"""Face embeddings as the face attacks and evaluators take them: embedders by spec, the fallback face
crop, and embeddings at given faces.

**Fallback crop.** A detecting embedder (dlib, FaceNet, ArcFace) gives no embedding where its
detector finds no face, which is exactly what strong blurring or pixelation causes. An attacker who
stopped there would under-attack: the release's images are still face photos in a known layout. So
where no face is found, the attacker embeds the crop at the *typical* face position of its own
reference images (median box and landmarks relative to the image size). Which rows used it is
reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...data.imageset import Box, ImageSet
from ...errors import ConfigError
from ...memo import Memo
from ...progress import progress
from ...registry import EMBEDDERS
from .align import main_face
from .base import Detection, l2_normalise, make_detector
from .embedders import DetectingEmbedder


def make_embedder(spec: str | dict[str, Any]):
    """A registered face embedder from a name or ``{name: ..., **params}``."""
    if isinstance(spec, str):
        return EMBEDDERS.create(spec)
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        params = {k: v for k, v in spec.items() if k != "name"}
        return EMBEDDERS.create(spec["name"], **params)
    raise ConfigError(f"embedder must be a registered name or a mapping with 'name', got {spec!r}")


def embedder_name(spec: str | dict[str, Any]) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name"))


@dataclass(frozen=True)
class TypicalFace:
    """A face position relative to the image size: box ``(x, y, w, h)`` and 5 landmarks, in [0, 1]."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...] | None

    def detection(self, shape: tuple[int, ...]):
        """This face placed in an image of ``shape`` as a :class:`Detection` (score 0)."""
        h, w = shape[:2]
        x, y, bw, bh = self.box
        box = Box(round(x * w), round(y * h), max(1, round(bw * w)), max(1, round(bh * h)), "face").clip(w, h)
        lm = None if self.landmarks is None else np.asarray(self.landmarks, float) * np.array([w, h], float)
        return Detection(box, 0.0, lm)

    def key(self) -> str:
        lm = "" if self.landmarks is None else ",".join(f"{a:.4f}:{b:.4f}" for a, b in self.landmarks)
        return ",".join(f"{v:.4f}" for v in self.box) + "|" + lm


def typical_face(
    detector: str, images: ImageSet, select: str = "largest", limit: int = 500, grid: float = 0.01
) -> TypicalFace | None:
    """Median relative box and landmarks of the main face in (up to ``limit`` of) ``images``.

    Values are rounded to ``grid`` (1% of the image size) so that estimates from different samples
    of the same kind of images coincide and share memoised embeddings.
    """
    sample = images if len(images) <= limit else images.subset(np.linspace(0, len(images) - 1, limit).astype(int))
    dets = make_detector(detector).detect(sample)
    boxes, marks = [], []
    for i, d in enumerate(dets):
        face = main_face(d, sample[i].shape, select)
        if face is None:
            continue
        h, w = sample[i].shape[:2]
        boxes.append((face.box.x / w, face.box.y / h, face.box.w / w, face.box.h / h))
        if face.landmarks is not None:
            marks.append(np.asarray(face.landmarks, float) / np.array([w, h], float))
    if not boxes:
        return None
    def snap(v: np.ndarray) -> np.ndarray:
        return np.round(v / grid) * grid

    box = tuple(float(v) for v in snap(np.median(np.asarray(boxes), axis=0)))
    lms = (
        tuple(tuple(float(c) for c in p) for p in snap(np.median(np.stack(marks), axis=0)))
        if len(marks) == len(boxes)
        else None
    )
    return TypicalFace(box, lms)  # type: ignore[arg-type]


@dataclass
class Embedded:
    """Embeddings of an image set and which rows came from the fallback crop or are missing (NaN)."""

    vectors: np.ndarray
    fallback: np.ndarray
    missing: np.ndarray


def embed(embedder, images: ImageSet, fallback: TypicalFace | None = None, desc: str = "embed") -> Embedded:
    """``embedder.embed(images)``; rows without a face are embedded at ``fallback`` when given.

    Fallback embeddings are memoised per (embedder, fallback position, image content).
    """
    vecs = np.asarray(embedder.embed(images), dtype=np.float32)
    missing = ~np.all(np.isfinite(vecs), axis=1)
    used = np.zeros(len(images), dtype=bool)
    if fallback is not None and missing.any() and isinstance(embedder, DetectingEmbedder):
        rows = np.flatnonzero(missing)
        memo = Memo(f"{embedder.model_id()}:fallback:{fallback.key()}")
        for start in progress(range(0, len(rows), 32), desc=f"{desc} (fallback crop)"):
            chunk = [int(i) for i in rows[start : start + 32]]
            values = memo.get_or_compute(
                [images.hash(i) for i in chunk],
                lambda todo, c=chunk: _fallback_batch(embedder, images, [c[j] for j in todo], fallback),
            )
            vecs[chunk] = np.stack(values)
        used[rows] = np.all(np.isfinite(vecs[rows]), axis=1)
        missing = ~np.all(np.isfinite(vecs), axis=1)
    return Embedded(vecs, used, missing)


def _fallback_batch(embedder, images: ImageSet, rows: list[int], face: TypicalFace) -> list[np.ndarray]:
    crops = [embedder.crop(images[i], face.detection(images[i].shape)) for i in rows]
    return list(l2_normalise(np.asarray(embedder.embed_crops(crops), dtype=np.float32)))


def embed_at_faces(embedder, images: ImageSet, faces: list) -> np.ndarray:
    """Embed each image at a given face (a ``Detection``, or None for a NaN row), memoised per image and face.

    Needs a detecting embedder (one with ``crop`` / ``embed_crops``).
    """
    out = np.full((len(images), embedder.dim), np.nan, dtype=np.float32)
    todo = [i for i, f in enumerate(faces) if f is not None]
    if not todo:
        return out
    memo = Memo(f"{embedder.model_id()}:at_face")
    keys = [f"{images.hash(i)}:{faces[i].box.x},{faces[i].box.y},{faces[i].box.w},{faces[i].box.h}" for i in todo]

    def compute(idx: list[int]) -> list[np.ndarray]:
        crops = [embedder.crop(images[todo[j]], faces[todo[j]]) for j in idx]
        return list(l2_normalise(np.asarray(embedder.embed_crops(crops), dtype=np.float32)))

    values = []
    for start in range(0, len(todo), 32):
        values += memo.get_or_compute(keys[start : start + 32], lambda idx, s=start: compute([s + j for j in idx]))
    out[todo] = np.stack(values)
    return out
