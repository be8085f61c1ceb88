"""Test data for the face attack, anonymizer and evaluator tests: small LFW subsets and planted-signal
synthetic images, plus a deterministic test detector that finds white squares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anonaudit.data.imageset import Box, ImageSet
from anonaudit.models.faces.base import Detection, FaceDetector
from anonaudit.registry import DETECTORS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LFW = SHARED / "lfw"

needs_lfw = pytest.mark.shared_data("lfw/labels.csv")


def lfw_people(n_people: int, min_images: int = 2, skip: int = 0, with_gender: bool = True) -> ImageSet:
    """All images of ``n_people`` LFW identities with >= ``min_images`` photos (alphabetical order,
    after skipping ``skip`` such identities), read into memory."""
    from anonaudit.datasets import load_lfw

    full = load_lfw(LFW)
    counts: dict[str, int] = {}
    for r in full.records:
        if not with_gender or r.attributes.get("gender"):
            counts[r.identity] = counts.get(r.identity, 0) + 1
    people = [p for p in sorted(counts) if counts[p] >= min_images][skip : skip + n_people]
    chosen = set(people)
    idx = [
        i
        for i, r in enumerate(full.records)
        if r.identity in chosen and (not with_gender or r.attributes.get("gender"))
    ]
    return full.subset(idx, name="lfw-test").load()


def synthetic_identities(
    n_people: int, per_person: int, size: int = 64, noise: float = 20.0, seed: int = 0, prefix: str = "p"
) -> ImageSet:
    """Grey 'faces': a smooth random pattern per identity plus per-image noise and brightness shift."""
    import cv2

    rng = np.random.default_rng(seed)
    images, ids, keys = [], [], []
    for p in range(n_people):
        base = cv2.resize(rng.uniform(40, 215, (8, 8)), (size, size), interpolation=cv2.INTER_CUBIC)
        for k in range(per_person):
            img = base + rng.normal(0, noise, (size, size)) + rng.normal(0, 10)
            grey = np.clip(np.round(img), 0, 255).astype(np.uint8)
            images.append(np.repeat(grey[..., None], 3, axis=2))
            ids.append(f"{prefix}{p:03d}")
            keys.append(f"{prefix}{p:03d}/{k}")
    return ImageSet.from_arrays(images, keys, identities=ids, name=f"synthetic-{prefix}")


def tinted_people(
    n_people: int, per_person: int, male_share: float, seed: int, prefix: str, tint: float = 25.0
) -> ImageSet:
    """Planted gender leak: random RGB texture; 'male' images are tinted red, 'female' ones blue."""
    rng = np.random.default_rng(seed)
    images, ids, attrs, keys = [], [], [], []
    n_male = round(male_share * n_people)
    for p in range(n_people):
        gender = "male" if p < n_male else "female"
        for k in range(per_person):
            img = rng.normal(120, 40, (64, 64, 3))
            img[..., 0 if gender == "male" else 2] += tint
            images.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
            ids.append(f"{prefix}{p:03d}")
            attrs.append({"gender": gender})
            keys.append(f"{prefix}{p:03d}/{k}")
    return ImageSet.from_arrays(images, keys, identities=ids, attributes=attrs, name=f"tinted-{prefix}")


def square_image(size: int = 64, box: Box | None = None, background: int = 90, seed: int = 0) -> np.ndarray:
    """A textured image with a pure-white square 'face' at ``box`` (none when ``box`` is None)."""
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(background, 25, (size, size, 3)), 0, 250).astype(np.uint8)
    if box is not None:
        img[box.y : box.y + box.h, box.x : box.x + box.w] = 255
    return img


class WhiteSquareDetector(FaceDetector):
    """Finds the bounding box of pure-white pixels (test detector; deterministic, no model).

    Boxes whose shorter side is under ``min_side`` are missed, like a real detector's minimum size.
    """

    min_side = 0

    def detect_arrays(self, images):
        out = []
        for img in images:
            ys, xs = np.nonzero(np.all(img == 255, axis=2))
            if len(ys) == 0:
                out.append([])
                continue
            box = Box(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1), "face")
            out.append([Detection(box, 1.0, None)] if min(box.w, box.h) >= self.min_side else [])
        return out


class BigWhiteSquareDetector(WhiteSquareDetector):
    """The same, missing squares smaller than 20 px."""

    min_side = 20


for _name, _cls in (("test_white_square", WhiteSquareDetector), ("test_big_white_square", BigWhiteSquareDetector)):
    if _name not in DETECTORS:
        DETECTORS.register(_name)(_cls)
