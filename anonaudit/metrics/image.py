"""SSIM and PSNR of one image pair, over the whole image, inside boxes, or outside them.

These are the per-pair kernels the fidelity evaluators call (and the public functional API:
``anonaudit.evaluators.functional`` re-exports them).

SSIM windows (``window``):

- ``"gaussian11"`` (the standard, Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, population
  covariance, K1=0.01, K2=0.03, ``data_range=255``, no downsampling; the value torchmetrics'
  ``structural_similarity_index_measure`` and pytorch-msssim compute.
- ``"uniform7"``: scikit-image's default, a 7x7 uniform window with sample covariance. Not the
  reference definition: values differ from published SSIMs.

SSIM is computed per channel (scikit-image ``structural_similarity``, ``channel_axis=-1``) and
averaged over channels; the map's border of ``(side - 1) / 2`` pixels, where the window would leave
the image, is excluded from every mean.

Regions (boxes come from the original image's record):

- ``"image"``: the whole image. PSNR is ``10 log10(255^2 / MSE)`` as ``peak_signal_noise_ratio``.
- ``"boxes"``: inside the plate/face boxes. SSIM is computed on each box crop and averaged over the
  boxes (crops smaller than the SSIM window are skipped); PSNR uses the MSE over the union of boxes.
- ``"outside_boxes"``: the background (background preservation). SSIM is the full-image SSIM map
  averaged over the pixels outside every box and outside the border above (so with no boxes it
  equals the ``"image"`` value); PSNR uses the MSE over the pixels outside every box.

A region with no pixels (no boxes for ``"boxes"``, boxes covering everything for
``"outside_boxes"``) or an image smaller than the SSIM window gives NaN, which evaluators count and
drop. PSNR of identical pixels is ``inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.metrics import structural_similarity

from ..data.imageset import Box
from ..errors import MismatchError

REGIONS = ("image", "boxes", "outside_boxes")
DATA_RANGE = 255.0


def check_pair_sizes(key: str, original: np.ndarray, anonymized: np.ndarray) -> None:
    """Raise :class:`MismatchError` when the two images of pair ``key`` differ in size."""
    if original.shape != anonymized.shape:
        (ho, wo), (ha, wa) = original.shape[:2], anonymized.shape[:2]
        raise MismatchError(f"{key}: original is {wo}x{ho} but the anonymized image is {wa}x{ha} (width x height); "
                            "fidelity metrics need pixel-aligned pairs")


def box_mask(shape: tuple[int, ...], boxes: Sequence[Box]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels inside any of ``boxes`` (clipped to the image)."""
    h, w = shape[:2]
    mask = np.zeros((h, w), bool)
    for b in boxes:
        c = b.clip(w, h)
        if c.area:
            mask[c.slices] = True
    return mask


#: SSIM window name -> (side in pixels, scikit-image keyword arguments)
SSIM_WINDOWS: dict[str, tuple[int, dict]] = {
    "gaussian11": (11, {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}),
    "uniform7": (7, {"win_size": 7}),
}


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    region: str = "image",
    boxes: Sequence[Box] = (),
    window: str = "gaussian11",
) -> float:
    """SSIM of two equally sized RGB uint8 images over ``region`` (see module docstring)."""
    if window not in SSIM_WINDOWS:
        raise ValueError(f"window must be one of {tuple(SSIM_WINDOWS)}, got {window!r}")
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    side, kw = SSIM_WINDOWS[window]
    if region in ("image", "outside_boxes") and min(a.shape[:2]) < side:
        return float("nan")
    if region == "image":
        return float(structural_similarity(a, b, channel_axis=-1, data_range=DATA_RANGE, **kw))
    if region == "boxes":
        h, w = a.shape[:2]
        values = []
        for box in boxes:
            c = box.clip(w, h)
            if min(c.w, c.h) >= side:
                values.append(
                    structural_similarity(a[c.slices], b[c.slices], channel_axis=-1, data_range=DATA_RANGE, **kw)
                )
        return float(np.mean(values)) if values else float("nan")
    _, smap = structural_similarity(a, b, channel_axis=-1, data_range=DATA_RANGE, full=True, **kw)  # outside_boxes
    pad = (side - 1) // 2
    inside = np.zeros(a.shape[:2], bool)
    inside[pad : a.shape[0] - pad, pad : a.shape[1] - pad] = True
    mask = inside & ~box_mask(a.shape, boxes)
    return float(smap[mask].mean()) if mask.any() else float("nan")


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
