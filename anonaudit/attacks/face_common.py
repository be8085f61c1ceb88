"""Shared by the face attacks and evaluators: embedders by spec, the attacker's fallback face crop,
re-applying a release's public anonymizer, and identity-disjointness checks.

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

from ..data.imageset import Box, ImageSet, Release
from ..errors import ConfigError, DataError
from ..memo import Memo
from ..progress import progress
from ..registry import ANONYMIZERS, EMBEDDERS


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
        from ..models.faces.base import Detection

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
    from ..models.faces.align import main_face
    from ..models.faces.embedders import make_detector

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
    from ..models.faces.embedders import DetectingEmbedder

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
    from ..models.faces.base import l2_normalise

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
        from ..models.faces.base import l2_normalise

        crops = [embedder.crop(images[todo[j]], faces[todo[j]]) for j in idx]
        return list(l2_normalise(np.asarray(embedder.embed_crops(crops), dtype=np.float32)))

    values = []
    for start in range(0, len(todo), 32):
        values += memo.get_or_compute(keys[start : start + 32], lambda idx, s=start: compute([s + j for j in idx]))
    out[todo] = np.stack(values)
    return out


def public_anonymizer(release: Release):
    """The release's anonymizer, re-created from its registry name and parameters (as an attacker
    who knows the public method would), or ``(None, reason)`` when that is impossible.

    A trained method is public when its checkpoint is (a ``checkpoint`` parameter: the attacker
    loads the same weights); one trained inside the audit without a checkpoint is not.
    """
    if not release.name or release.name not in ANONYMIZERS:
        return None, f"the release's method '{release.name}' is not a registered anonymizer"
    anonymizer = ANONYMIZERS.create(release.name, **release.params)
    if not anonymizer.applies_to_new_images:
        return (
            None,
            (f"'{release.name}' is a ready-made release: it holds files for given names and cannot anonymize "
            "other images"),
        )
    if anonymizer.trainable and not release.params.get("checkpoint"):
        return None, (f"'{release.name}' is trainable and has no checkpoint: re-applying it needs its trained model, "
                      "which the release does not carry")
    return anonymizer, ""


def anonymized_auxiliary(release: Release, auxiliary: ImageSet) -> tuple[ImageSet | None, str]:
    """The intruder's ``auxiliary`` images as the release's method anonymizes them (labels kept),
    and how they were obtained; ``(None, reason)`` when they cannot be.

    When the release holds the auxiliary people's own released files (``release.auxiliary``, an
    external release) those are used, for the auxiliary images that have one; otherwise the public
    method is re-applied (:func:`public_anonymizer`).
    """
    if release.auxiliary is not None:
        have = set(release.auxiliary.keys)
        held = [release.auxiliary.index_of(k) for k in auxiliary.keys if k in have]
        if not held:
            return None, "the release holds no file of the auxiliary images"
        return release.auxiliary.subset(
            held
        ), f"the release's own files of {len(held)} of the {len(auxiliary)} auxiliary images"
    anonymizer, why = public_anonymizer(release)
    if anonymizer is None:
        return None, why
    return anonymizer.anonymize(
        auxiliary, show_progress=False
    ), f"the auxiliary images anonymized by {anonymizer.label()}"


def check_disjoint(auxiliary: ImageSet, release: Release, attack: str) -> None:
    """Refuse auxiliary data that shares identities with the evaluation originals."""
    if not auxiliary.has_labels("identity") or not release.originals.has_labels("identity"):
        return
    shared = sorted(set(auxiliary.identities) & set(release.originals.identities))
    if shared:
        raise DataError(
            f"attack '{attack}': the auxiliary data shares {len(shared)} identities with the evaluation images "
            f"(e.g. {shared[:3]}); the intruder's data must be identity-disjoint (split with by='identity')"
        )
