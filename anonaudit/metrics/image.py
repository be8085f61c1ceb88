"""SSIM and PSNR of one image pair, over the whole image, inside boxes, or outside them.

Regions (boxes come from the original image's record):

- ``"image"``: the whole image. SSIM is scikit-image's ``structural_similarity`` (``channel_axis``,
  ``data_range=255``); PSNR is ``10 log10(255^2 / MSE)`` as ``peak_signal_noise_ratio``.
- ``"boxes"``: inside the plate/face boxes. SSIM is computed on each box crop and averaged over the
  boxes (crops smaller than the SSIM window are skipped); PSNR uses the MSE over the union of boxes.
- ``"outside_boxes"``: the background (background preservation). SSIM is the full-image SSIM map
  averaged over the pixels outside every box, excluding the ``(win_size - 1) / 2`` border that
  scikit-image also excludes from its mean (so with no boxes it equals the ``"image"`` value);
  PSNR uses the MSE over the pixels outside every box.

A region with no pixels (no boxes for ``"boxes"``, boxes covering everything for
``"outside_boxes"``) gives NaN, which evaluators count and drop.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from skimage.metrics import structural_similarity

from ..data.imageset import Box

REGIONS = ("image", "boxes", "outside_boxes")
DATA_RANGE = 255.0


def box_mask(shape: tuple[int, ...], boxes: Sequence[Box]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels inside any of ``boxes`` (clipped to the image)."""
    h, w = shape[:2]
    mask = np.zeros((h, w), bool)
    for b in boxes:
        c = b.clip(w, h)
        if c.area:
            mask[c.slices] = True
    return mask


def _ssim_kwargs(win_size: int, gaussian_weights: bool) -> dict:
    if gaussian_weights:  # Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, population covariance
        return {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    return {"win_size": win_size}


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    region: str = "image",
    boxes: Sequence[Box] = (),
    win_size: int = 7,
    gaussian_weights: bool = False,
) -> float:
    """SSIM of two equally sized RGB uint8 images over ``region`` (see module docstring)."""
    kw = _ssim_kwargs(win_size, gaussian_weights)
    if region == "image":
        return float(structural_similarity(a, b, channel_axis=-1, data_range=DATA_RANGE, **kw))
    if region == "boxes":
        h, w = a.shape[:2]
        need = 11 if gaussian_weights else win_size
        values = []
        for box in boxes:
            c = box.clip(w, h)
            if min(c.w, c.h) >= need:
                values.append(structural_similarity(a[c.slices], b[c.slices], channel_axis=-1, data_range=DATA_RANGE, **kw))
        return float(np.mean(values)) if values else float("nan")
    if region == "outside_boxes":
        _, smap = structural_similarity(a, b, channel_axis=-1, data_range=DATA_RANGE, full=True, **kw)
        pad = ((11 if gaussian_weights else win_size) - 1) // 2
        inside = np.zeros(a.shape[:2], bool)
        inside[pad : a.shape[0] - pad, pad : a.shape[1] - pad] = True
        mask = inside & ~box_mask(a.shape, boxes)
        return float(smap[mask].mean()) if mask.any() else float("nan")
    raise ValueError(f"region must be one of {REGIONS}, got {region!r}")


def psnr(a: np.ndarray, b: np.ndarray, region: str = "image", boxes: Sequence[Box] = ()) -> float:
    """PSNR in dB (``data_range=255``) over ``region``; ``inf`` for identical pixels, NaN for no pixels."""
    if region == "image":
        mask = np.ones(a.shape[:2], bool)
    elif region == "boxes":
        mask = box_mask(a.shape, boxes)
    elif region == "outside_boxes":
        mask = ~box_mask(a.shape, boxes)
    else:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    if not mask.any():
        return float("nan")
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(DATA_RANGE**2 / mse))
