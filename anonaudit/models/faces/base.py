"""Face-model interfaces shared by attacks and evaluators: detectors and embedders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data.imageset import Box, ImageSet
from ...memo import Memo
from ...params import ParamsMixin
from ...registry import DETECTORS

#: Order of the 5 landmarks every detector returns: left eye, right eye, nose, mouth left, mouth right
#: ("left"/"right" as seen in the image).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Detection:
    """One detected face: its box, confidence and 5 landmarks ``(5, 2)`` as ``(x, y)`` (or None)."""

    box: Box
    score: float
    landmarks: np.ndarray | None = None


class FaceDetector(ParamsMixin):
    """Finds faces. ``detect`` is batched and memoised per image content hash."""

    name = ""

    def model_id(self) -> str:
        return f"detector:{self.name}:{sorted(self.get_params().items())}"

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Detection]]:
        raise NotImplementedError

    def detect(self, images: ImageSet, batch_size: int = 32) -> list[list[Detection]]:
        """Detections for every image, sorted by score (highest first)."""
        memo = Memo(self.model_id())
        out: list[list[Detection]] = []
        for idx, _ in images.batches(batch_size):
            keys = [images.hash(i) for i in idx]
            raw = memo.get_or_compute(
                keys, lambda todo, idx=idx: [_encode(d) for d in self.detect_arrays([images[idx[j]] for j in todo])]
            )
            out.extend(_decode(r) for r in raw)
        return out


def make_detector(name: str, device: str = "cpu") -> FaceDetector:
    """A registered detector by name; MTCNN runs on ``device``."""
    if name == "mtcnn":
        return DETECTORS.create("mtcnn", device=device)
    return DETECTORS.create(name)


class FaceEmbedder(ParamsMixin):
    """Maps each image's main face to an L2-normalised vector; NaN rows where no face is found."""

    name = ""
    dim = 0

    def model_id(self) -> str:
        return f"embedder:{self.name}:{sorted(self.get_params().items())}"

    def embed_arrays(self, images: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, images: ImageSet, batch_size: int = 32) -> np.ndarray:
        """``(n, dim)`` float32 embeddings, each computed once per image content (memoised)."""
        memo = Memo(self.model_id())
        rows: list[np.ndarray] = []
        for idx, _ in images.batches(batch_size):
            keys = [images.hash(i) for i in idx]
            rows.extend(
                memo.get_or_compute(keys, lambda todo, idx=idx: list(self.embed_arrays([images[idx[j]] for j in todo])))
            )
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([np.asarray(r, np.float32) for r in rows])


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > 0, x / np.maximum(norms, 1e-12), np.nan).astype(np.float32)


def _encode(dets: list[Detection]) -> list:
    return [
        [
            d.box.x,
            d.box.y,
            d.box.w,
            d.box.h,
            float(d.score),
            None if d.landmarks is None else np.asarray(d.landmarks, float).tolist(),
        ]
        for d in dets
    ]


def _decode(raw: list) -> list[Detection]:
    return [
        Detection(Box(int(x), int(y), int(w), int(h), "face"), float(s), None if lm is None else np.asarray(lm, float))
        for x, y, w, h, s, lm in raw
    ]
