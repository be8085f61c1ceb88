"""``pixels``: an eigenface-style attacker's features, raw pixels of the face-centre crop.

No learned features: the crop is resized to ``size x size``, optionally turned grey (ITU-R BT.601
luma), standardised per image (zero mean, unit variance over all its values) and L2-normalised, so
the cosine of two embeddings is the normalised cross-correlation of the two crops. Combined with a
projection learned on auxiliary data (PCA/LDA) it is the classic eigenface/Fisherface attacker.

The crop is the main face found by ``detector`` (any registered face detector) or, with
``detector=None`` or where no face is found, the central ``crop`` fraction of the image (faces in
aligned sets such as LFW's deep-funneled images sit at the centre). A crop without any variation
(e.g. a solid mask) carries no information and gives a NaN row, like an embedder finding no face.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...data.imageset import Box, ImageSet
from ...params import check_range
from ...registry import EMBEDDERS
from .align import main_face
from .base import FaceEmbedder, make_detector

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def centre_box(shape: tuple[int, ...], fraction: float) -> Box:
    """The centred square box whose side is ``fraction`` of the image's shorter side."""
    h, w = shape[:2]
    side = max(1, round(fraction * min(h, w)))
    return Box((w - side) // 2, (h - side) // 2, side, side, "face")


def crop_resize(image: np.ndarray, box: Box, size: int) -> np.ndarray:
    """``image`` inside ``box`` (clipped), resized to ``size x size`` with area interpolation (float64)."""
    b = box.clip(image.shape[1], image.shape[0])
    if b.area == 0:
        raise ValueError(f"box {box} lies outside the {image.shape[1]}x{image.shape[0]} image")
    ys, xs = b.slices
    crop = np.ascontiguousarray(image[ys, xs])
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64)


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit norm; a constant vector (no information) becomes NaN."""
    x = x - x.mean()
    norm = np.linalg.norm(x)
    return x / norm if norm > 1e-9 else np.full_like(x, np.nan)


@EMBEDDERS.register("pixels")
class PixelEmbedder(FaceEmbedder):
    """Standardised pixels of the ``size x size`` face crop (grey, or RGB with ``grey=False``)."""

    def __init__(
        self, size: int = 32, crop: float = 0.5, grey: bool = True, detector: str | None = None, select: str = "largest"
    ):
        check_range("pixels embedder", "size", size, ge=2, integer=True)
        check_range("pixels embedder", "crop", crop, gt=0, le=1)
        self.size = size
        self.crop = crop
        self.grey = grey
        self.detector = detector
        self.select = select

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.size * self.size * (1 if self.grey else 3)

    def boxes(self, images: list[np.ndarray]) -> list[Box]:
        """The crop box of every image: its main detected face, else the centre box."""
        out = [centre_box(im.shape, float(self.crop)) for im in images]
        if self.detector is None:
            return out
        dets = make_detector(self.detector).detect(ImageSet.from_arrays(images))
        for i, (d, im) in enumerate(zip(dets, images)):
            face = main_face(d, im.shape, self.select)
            if face is not None:
                out[i] = face.box
        return out

    def features(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The embedding of ``image`` cropped at ``box`` (NaN when the crop is constant)."""
        crop = crop_resize(image, box, int(self.size))
        if self.grey:
            crop = crop @ LUMA
        return standardise(crop.ravel())

    def embed_arrays(self, images: list[np.ndarray]) -> np.ndarray:
        boxes = self.boxes(images)
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.features(im, b) for im, b in zip(images, boxes)]).astype(np.float32)
