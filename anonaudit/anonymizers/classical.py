"""Classical anonymizers: Gaussian blur, box blur, pixelation, solid mask and additive noise.

Each applies to the whole image (``region="image"``) or only inside the record's boxes
(``region="boxes"``: plate or face regions, optionally grown by ``margin``). Strength is in pixels,
or, with ``relative=True``, a fraction of the region's height: OCR and face models rescale their
input to a fixed size, so a 4-pixel blur on a 300-pixel crop is weaker than on a 40-pixel one.
For ``region="image"`` the reference height is the first box's height, else the image height.

Exact operations (the inversion attacks rely on them):
- Gaussian blur: ``scipy.ndimage.gaussian_filter`` per channel, ``truncate=4``, ``mode="reflect"``.
- Box blur: mean over a ``size x size`` window (``scipy.ndimage.uniform_filter``, ``mode="reflect"``).
- Pixelation: mean colour of each ``block x block`` cell anchored at the region's top-left corner.
- Noise: i.i.d. Gaussian noise of standard deviation ``std`` (0..255 scale), seeded per image key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ..data.degradation import BoxBlurOperator, GaussianBlurOperator, MaskOperator, NoiseOperator, PixelateOperator
from ..data.imageset import Box, Record
from ..errors import ConfigError
from ..params import check_range
from ..registry import ANONYMIZERS
from .base import Anonymizer

RegionOp = Callable[[np.ndarray, float], np.ndarray]


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an RGB uint8 image with standard deviation ``sigma`` pixels."""
    if sigma <= 0:
        return image.copy()
    out = ndimage.gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0), truncate=4.0, mode="reflect")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def box_blur(image: np.ndarray, size: float) -> np.ndarray:
    """Mean filter over a ``size x size`` window (size rounded to an integer >= 1)."""
    k = max(1, int(round(size)))
    if k == 1:
        return image.copy()
    out = ndimage.uniform_filter(image.astype(np.float32), size=(k, k, 1), mode="reflect")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def pixelate(image: np.ndarray, block: float) -> np.ndarray:
    """Replace each ``block x block`` cell by its mean colour (partial edge cells included)."""
    b = max(1, int(round(block)))
    if b == 1:
        return image.copy()
    h, w = image.shape[:2]
    ph, pw = -h % b, -w % b
    padded = np.pad(image.astype(np.float64), ((0, ph), (0, pw), (0, 0)), mode="constant")
    weights = np.pad(np.ones((h, w)), ((0, ph), (0, pw)), mode="constant")
    hb, wb = padded.shape[0] // b, padded.shape[1] // b
    sums = padded.reshape(hb, b, wb, b, 3).sum(axis=(1, 3))
    counts = weights.reshape(hb, b, wb, b).sum(axis=(1, 3))[..., None]
    means = np.round(sums / counts).astype(np.uint8)
    return np.repeat(np.repeat(means, b, axis=0), b, axis=1)[:h, :w]


def solid_mask(image: np.ndarray, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    out = np.empty_like(image)
    out[...] = np.asarray(color, dtype=np.uint8)
    return out


def add_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float32) + rng.normal(0.0, std, size=image.shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def apply_in_boxes(
    image: np.ndarray, boxes: tuple[Box, ...], op: Callable[[np.ndarray, Box], np.ndarray]
) -> np.ndarray:
    """Apply ``op(crop, box)`` inside each box (clipped to the image); the rest is unchanged."""
    out = image.copy()
    h, w = image.shape[:2]
    for box in boxes:
        b = box.clip(w, h)
        if b.area == 0:
            continue
        ys, xs = b.slices
        out[ys, xs] = op(out[ys, xs], b)
    return out


class RegionAnonymizer(Anonymizer):
    """Shared region/strength handling of the classical methods."""

    param_alternatives = {"region": ("boxes",)}

    def __init__(self, region: str = "image", relative: bool = False, margin: float = 0.0):
        self.region = region
        self.relative = relative
        self.margin = margin
        self._check_region()

    def _check_region(self) -> None:
        if self.region not in ("image", "boxes"):
            raise ConfigError(f"{self.name}: region must be 'image' or 'boxes', got {self.region!r}")
        check_range(self, "margin", self.margin, ge=0, finite=True)

    def strength(self) -> float:
        """The strength parameter (sigma, size, block, ...) as given by the user."""
        raise NotImplementedError

    def _where(self) -> dict:
        """Region fields of the declared degradation operator (see :meth:`degradation`)."""
        return {"region": self.region, "relative": bool(self.relative), "margin": float(self.margin)}

    def strength_px(self, reference_height: int) -> float:
        """Strength in pixels for a region of ``reference_height`` pixels."""
        s = float(self.strength())
        return s * reference_height if self.relative else s

    def apply(self, region: np.ndarray, strength_px: float, record: Record) -> np.ndarray:
        raise NotImplementedError

    def anonymize_image(self, image: np.ndarray, record: Record) -> np.ndarray:
        if self.region == "image":
            ref = record.boxes[0].h if record.boxes else image.shape[0]
            return self.apply(image, self.strength_px(ref), record)
        if not record.boxes:
            # Nothing marked to anonymize: the image is released as it is (audits report this).
            return image.copy()
        boxes = tuple(b.expand(self.margin) if self.margin else b for b in record.boxes)
        return apply_in_boxes(image, boxes, lambda crop, box: self.apply(crop, self.strength_px(box.h), record))


@ANONYMIZERS.register("gaussian_blur")
class GaussianBlur(RegionAnonymizer):
    """Gaussian blur with standard deviation ``sigma`` (pixels, or fraction of region height)."""

    label_params = ("sigma",)

    def __init__(self, sigma: float = 2.0, region: str = "image", relative: bool = False, margin: float = 0.0):
        check_range(self, "sigma", sigma, ge=0, finite=True)
        self.sigma = sigma
        super().__init__(region, relative, margin)

    def strength(self) -> float:
        return self.sigma

    def degradation(self) -> GaussianBlurOperator:
        return GaussianBlurOperator(sigma=float(self.sigma), **self._where())

    def apply(self, region, strength_px, record):
        return gaussian_blur(region, strength_px)


@ANONYMIZERS.register("box_blur")
class BoxBlur(RegionAnonymizer):
    """Mean filter of width ``size`` (pixels, or fraction of region height)."""

    label_params = ("size",)

    def __init__(self, size: float = 5.0, region: str = "image", relative: bool = False, margin: float = 0.0):
        check_range(self, "size", size, ge=0, finite=True)
        self.size = size
        super().__init__(region, relative, margin)

    def strength(self) -> float:
        return self.size

    def degradation(self) -> BoxBlurOperator:
        return BoxBlurOperator(size=float(self.size), **self._where())

    def apply(self, region, strength_px, record):
        return box_blur(region, strength_px)


@ANONYMIZERS.register("pixelate")
class Pixelate(RegionAnonymizer):
    """Mosaic of ``block x block`` cells (pixels, or fraction of region height)."""

    label_params = ("block",)

    def __init__(self, block: float = 8.0, region: str = "image", relative: bool = False, margin: float = 0.0):
        check_range(self, "block", block, ge=0, finite=True)
        self.block = block
        super().__init__(region, relative, margin)

    def strength(self) -> float:
        return self.block

    def degradation(self) -> PixelateOperator:
        return PixelateOperator(block=float(self.block), **self._where())

    def apply(self, region, strength_px, record):
        return pixelate(region, strength_px)


@ANONYMIZERS.register("mask")
class Mask(RegionAnonymizer):
    """Solid fill with ``color`` (RGB)."""

    def __init__(self, color: tuple[int, int, int] | list[int] = (0, 0, 0), region: str = "image", margin: float = 0.0):
        if len(color) != 3:
            raise ConfigError(f"mask: color must be three values (R, G, B), got {color!r}")
        for k, c in enumerate(color):
            check_range(self, f"color[{k}]", c, ge=0, le=255)
        self.color = tuple(int(c) for c in color)
        super().__init__(region, False, margin)

    def strength(self) -> float:
        return 0.0

    def get_params(self):
        return {"color": list(self.color), "region": self.region, "margin": self.margin}

    def degradation(self) -> MaskOperator:
        return MaskOperator(color=self.color, **self._where())

    def apply(self, region, strength_px, record):
        return solid_mask(region, self.color)


@ANONYMIZERS.register("noise")
class Noise(RegionAnonymizer):
    """Additive Gaussian noise of standard deviation ``std`` (0..255 scale); seeded per image key."""

    label_params = ("std",)

    def __init__(self, std: float = 25.0, region: str = "image", seed: int = 0, margin: float = 0.0):
        check_range(self, "std", std, ge=0, finite=True)
        self.std = std
        self.seed = seed
        super().__init__(region, False, margin)

    def strength(self) -> float:
        return self.std

    def degradation(self) -> NoiseOperator:
        return NoiseOperator(std=float(self.std), **self._where())

    def apply(self, region, strength_px, record):
        digest = hashlib.blake2b(f"{self.seed}:{record.key}".encode(), digest_size=8).digest()
        return add_noise(region, strength_px, np.random.default_rng(int.from_bytes(digest, "little")))
