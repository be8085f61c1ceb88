"""k-Same-Pixel (Newton, Sweeney and Malin, "Preserving Privacy by De-identifying Face Images", IEEE TKDE
2005): the classical k-anonymity baseline for face images, beside DIRECT and MIKU (paper 001).

The faces of a release (aligned, one size) are de-identified together. While faces remain: take the first
remaining face ``p`` (set order), the ``k`` remaining faces closest to ``p`` in pixel space (Euclidean
distance, ``p`` included), and release their pixel average for each of them; remove them. When fewer
than ``2k`` faces remain they form the last group together, so every group has ``k .. 2k-1`` members
(this suite's reading of how the algorithm ends: a remainder of fewer than ``k`` faces would not be
k-anonymous). Each released face is then shared by at least ``k`` inputs, and a recogniser that matches
a released face to one original can be right for at most one member of each group: the paper's bound of
``1/k`` on its recognition rate.

All faces are averaged at one working resolution (``size``; None: the first image's size, no resampling
for a set of one size); a group's average is resized back to a member's own size when sizes differ.
Fewer than ``k`` images cannot be k-anonymized: that is an error. After ``anonymize``, ``groups_`` lists
the keys of each group.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..data.imageset import ImageSet
from ..errors import DataError
from ..params import check_range
from ..registry import ANONYMIZERS
from .base import Anonymizer


def k_same_groups(vectors: np.ndarray, k: int) -> list[np.ndarray]:
    """The k-Same groups (arrays of row indices, in the order taken) of the ``(n, d)`` ``vectors``."""
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) < k:
        raise DataError(f"cannot k-anonymize {len(x)} image(s) with k={k}: at least k images are needed")
    remaining = np.arange(len(x))
    groups = []
    while len(remaining):
        if len(remaining) < 2 * k:
            group = remaining
        else:
            distance = np.linalg.norm(x[remaining] - x[remaining[0]], axis=1)
            distance[0] = -1.0  # p itself first, even beside an exact duplicate
            group = remaining[np.argsort(distance, kind="stable")[:k]]
        groups.append(group)
        remaining = np.setdiff1d(remaining, group, assume_unique=True)
    return groups


@ANONYMIZERS.register("k_same")
class KSame(Anonymizer):
    """k-Same-Pixel (Newton, Sweeney, Malin 2005): each face replaced by the pixel average of its group of
    ``k .. 2k-1`` faces, the ``k`` closest to a chosen face in pixel space (see the module docstring)."""

    label_params = ("k",)

    def __init__(self, k: int = 2, size: int | None = None):
        check_range(self, "k", k, ge=1, integer=True)
        check_range(self, "size", size, ge=8, integer=True, optional=True)
        self.k = k
        self.size = size

    def _working(self, images: ImageSet) -> np.ndarray:
        """``(n, H, W, 3)`` float64 pixels at the working resolution."""
        if not len(images):
            raise DataError(f"k_same: '{images.name}' has no images")
        h, w = (self.size, self.size) if self.size is not None else images[0].shape[:2]
        out = [im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
               for im in (images[i] for i in range(len(images)))]
        return np.stack(out).astype(np.float64)

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        pixels = self._working(images)
        groups = k_same_groups(pixels.reshape(len(pixels), -1), int(self.k))
        out: list[np.ndarray | None] = [None] * len(images)
        for group in groups:
            average = np.clip(np.round(pixels[group].mean(axis=0)), 0, 255).astype(np.uint8)
            for i in group:
                h, w = images[int(i)].shape[:2]
                out[int(i)] = average if average.shape[:2] == (h, w) else cv2.resize(
                    average, (w, h), interpolation=cv2.INTER_LINEAR)
        keys = images.keys
        self.groups_ = [[keys[int(i)] for i in g] for g in groups]
        return images.with_images(out, name=f"{images.name}:{self.label()}")
