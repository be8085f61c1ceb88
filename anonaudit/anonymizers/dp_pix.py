"""DP-Pix: pixelation with differential privacy (Liyue Fan, "Image Pixelization with Differential
Privacy", DBSec 2018).

The image (or each labelled box: plate or face regions, optionally grown by ``margin``) is cut into
``b x b`` cells anchored at the region's top-left corner, as :func:`~anonaudit.anonymizers.classical.pixelate`
does, and every cell's mean colour gets Laplace noise of scale ``255 m / (b^2 epsilon)``: ``m`` is the
neighbourhood, the number of pixel values two neighbouring images may differ in. Changing ``m`` values
by up to 255 moves the cell sums by at most ``255 m`` in total (L1), so the noisy means are
``epsilon``-differentially private for such neighbours (the Laplace mechanism; rounding and clipping to
``uint8`` afterwards is post-processing).

This suite's reading of what the paper leaves open:

- Colour: the paper works on grey images. Here each channel of each cell is one noisy mean and the
  neighbourhood counts pixel *values*: a pixel that differs in all three channels counts 3 towards ``m``.
- Partial cells at the right and bottom edges (``n < b^2`` pixels) get noise of scale
  ``255 m / (n epsilon)`` (the same noise on the cell sum), so the guarantee holds for every cell.
- ``region="boxes"``: only the boxes are protected; pixels outside them are released unchanged, so the
  guarantee covers neighbours that differ inside the boxes only (:meth:`DPPix.image_dp_claim` says where).

The noise is drawn from a generator seeded by ``seed`` and the image's key, so a release is
reproducible and does not depend on which other images are in the batch; a different ``seed`` gives
fresh noise (the ``dp_distinguish`` attack releases one image many times that way).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..data.degradation import PixelateOperator
from ..data.imageset import Box, Record
from ..params import check_range
from ..registry import ANONYMIZERS
from .classical import RegionAnonymizer


@dataclass(frozen=True)
class ImageDPClaim:
    """A per-image differential-privacy claim: releasing one image is ``(epsilon, delta)``-DP for any two
    images that differ in at most ``m`` pixel values, all inside ``regions`` (the protected boxes)."""

    epsilon: float
    delta: float
    m: int
    regions: tuple[Box, ...]


def laplace_pixelate(image: np.ndarray, b: int, m: int, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """``b x b`` cell means of an RGB ``uint8`` image, each channel's mean plus Laplace noise of scale
    ``255 m / (n epsilon)`` (``n``: the cell's pixel count, ``b^2`` for full cells), rounded and clipped."""
    h, w = image.shape[:2]
    ph, pw = -h % b, -w % b
    padded = np.pad(image.astype(np.float64), ((0, ph), (0, pw), (0, 0)), mode="constant")
    weights = np.pad(np.ones((h, w)), ((0, ph), (0, pw)), mode="constant")
    hb, wb = padded.shape[0] // b, padded.shape[1] // b
    sums = padded.reshape(hb, b, wb, b, 3).sum(axis=(1, 3))
    counts = weights.reshape(hb, b, wb, b).sum(axis=(1, 3))[..., None]
    noisy = (sums + rng.laplace(0.0, 255.0 * m / epsilon, size=sums.shape)) / counts
    means = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(means, b, axis=0), b, axis=1)[:h, :w]


@ANONYMIZERS.register("dp_pix")
class DPPix(RegionAnonymizer):
    """DP-Pix (Fan 2018): ``b x b`` pixelation with Laplace noise of scale ``255 m / (b^2 epsilon)`` per cell
    mean; ``epsilon``-DP for images differing in at most ``m`` pixel values (see the module docstring).

    ``b`` is in pixels, or with ``relative=True`` a fraction of the region's height (rounded to an integer
    >= 1 per region, as :class:`~anonaudit.anonymizers.classical.Pixelate` does); ``seed`` picks the noise.
    """

    label_params = ("epsilon", "b", "m")
    #: White-box capability (:mod:`~anonaudit.anonymizers.whitebox`): :meth:`image_dp_claim` and ``seed``.
    provides: tuple[str, ...] = ("image_dp",)

    def __init__(self, epsilon: float = 1.0, b: float = 16.0, m: int = 1, seed: int = 0, region: str = "image",
                 relative: bool = False, margin: float = 0.0):
        check_range(self, "epsilon", epsilon, gt=0, finite=True)
        check_range(self, "b", b, gt=0, finite=True)
        check_range(self, "m", m, ge=1, integer=True)
        check_range(self, "seed", seed, ge=0, integer=True)
        self.epsilon = epsilon
        self.b = b
        self.m = m
        self.seed = seed
        super().__init__(region, relative, margin)

    def strength(self) -> float:
        return self.b

    def degradation(self) -> PixelateOperator:
        """The declared operator is the mosaic; the noise on its cell means is not part of it."""
        return PixelateOperator(block=float(self.b), **self._where())

    def image_dp_claim(self, record: Record, shape: tuple[int, ...]) -> ImageDPClaim:
        """The guarantee for one image of ``shape`` with ``record``: ``epsilon``-DP (delta 0) for neighbours
        differing in at most ``m`` pixel values inside the protected regions (none: nothing is protected)."""
        regions = tuple(box for box, _ in self.degradation().regions(record, shape))
        return ImageDPClaim(float(self.epsilon), 0.0, int(self.m), regions)

    def _rng(self, key: str) -> np.random.Generator:
        digest = hashlib.blake2b(f"{self.seed}:{key}".encode(), digest_size=8).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))

    def anonymize_image(self, image: np.ndarray, record: Record) -> np.ndarray:
        rng = self._rng(record.key)  # one generator per image: boxes get independent noise
        out = image.copy()
        for box, block in self.degradation().regions(record, image.shape):
            ys, xs = box.slices
            b = max(1, int(round(block)))
            out[ys, xs] = laplace_pixelate(out[ys, xs], b, int(self.m), float(self.epsilon), rng)
        return out
