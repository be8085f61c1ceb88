"""Pixel and perceptual fidelity between each original and its anonymized version: SSIM, PSNR, LPIPS.

Each evaluator scores every image pair with the per-pair kernels of
:mod:`anonaudit.evaluators.functional` and reports the mean with a percentile-bootstrap 95% CI
over images (``Estimate.n`` = images scored). The boxes of ``region="boxes"`` / ``"outside_boxes"``
are the original's annotated boxes (plates, faces) or, for an original without any, the boxes the
anonymizer recorded on its output (e.g. the faces its detector found; counted in the details as
``boxes_from_release``). Images whose region is undefined or empty (no boxes on either side, or
crops smaller than the SSIM window) are dropped and counted as ``no_region``: an image the
anonymizer left untouched says nothing about how well it preserves the background. Original and
anonymized image must have the same size; a pair that does not raises :class:`MismatchError`
naming its key and both sizes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from ..data.imageset import Release
from ..errors import ConfigError, DataError
from ..measurement import Measurement
from ..metrics import image as image_metrics
from ..metrics.image import check_pair_sizes
from ..parallel import thread_map
from ..progress import progress
from ..registry import EVALUATORS
from ..stats import Estimate, mean_estimate, proportion
from .base import Evaluator


class ProgressEvaluator(Evaluator):
    """An evaluator whose one-call form shows a progress bar over batches (``ANONAUDIT_PROGRESS=0`` hides it)."""

    def __call__(self, release: Release, batch_size: int = 64) -> Measurement | list[Measurement]:
        self.reset()
        total = math.ceil(len(release) / batch_size)
        for batch in progress(release.batches(batch_size), desc=f"metric {self.name}", total=total, disable=total < 2):
            self.update(batch)
        return self.compute()


class _RegionEvaluator(ProgressEvaluator):
    """Per-pair scores over a region of the image (boxes: see the module doc)."""

    metric = ""
    higher_is_better = True

    param_alternatives = {"region": ("boxes",)}

    def __init__(self, region: str = "image"):
        if region not in image_metrics.REGIONS:
            raise ConfigError(f"{type(self).__name__}: region must be one of {image_metrics.REGIONS}, got {region!r}")
        self.region = region
        self._scores: list[float]
        self.add_state("_scores", [], merge="cat")
        self.add_state("_no_region", 0, merge="sum")
        self.add_state("_boxes_from_release", 0, merge="sum")
        super().__init__()

    @property
    def metric_name(self) -> str:
        """``metric`` for the whole image, ``<metric>_<region>`` otherwise."""
        return self.metric if self.region == "image" else f"{self.metric}_{self.region}"

    def score(self, original: np.ndarray, anonymized: np.ndarray, boxes) -> float:
        raise NotImplementedError

    def update(self, release: Release) -> None:
        pairs = []
        for i in range(len(release)):
            original, anonymized = release.pair(i)
            check_pair_sizes(release.keys[i], original, anonymized)
            boxes = release.originals.records[i].boxes
            if not boxes and self.region != "image":
                boxes = release.anonymized.records[i].boxes
                if not boxes:
                    self._no_region += 1
                    continue
                self._boxes_from_release += 1
            pairs.append((original, anonymized, boxes))
        for s in thread_map(lambda pair: self.score(*pair), pairs):  # the kernels release the GIL
            if math.isnan(s):
                self._no_region += 1
            else:
                self._scores.append(s)

    def details(self) -> dict:
        """Counts shown next to the value: the region, pairs without one, boxes taken from the release."""
        out = {"region": self.region, "no_region": self._no_region}
        if self._boxes_from_release:
            out["boxes_from_release"] = self._boxes_from_release
        return out


_WHERE = {
    "image": "whole image",
    "boxes": "mean over box crops",
    "outside_boxes": "SSIM map averaged outside the boxes",
}


@EVALUATORS.register("ssim")
class SSIM(_RegionEvaluator):
    """Structural similarity as Wang et al. (2004) define it: 11x11 Gaussian window, sigma 1.5.

    Population covariance, K1=0.01, K2=0.03, ``data_range=255``, no downsampling, per channel and
    averaged over the valid region of the SSIM map (the value pytorch-msssim computes). ``region``:
    ``"image"``, ``"boxes"`` (mean of SSIM over box crops of at least 11x11) or ``"outside_boxes"``
    (SSIM map of the whole image averaged over the background; see :mod:`anonaudit.metrics.image`).
    """

    metric = "ssim"
    folder_audit = {"plates": {}, "faces": {}}
    window = "gaussian11"
    window_text = "11x11 Gaussian window, sigma 1.5"

    def score(self, original, anonymized, boxes) -> float:
        return image_metrics.ssim(original, anonymized, self.region, boxes, window=self.window)

    def estimate(self) -> Estimate:
        method = (f"SSIM ({self.window_text}, data_range=255), {_WHERE[self.region]}; "
                  "mean over images, bootstrap 95% CI")
        return dataclasses.replace(mean_estimate(self._scores, method=method), extra=self.details())

    def compute(self) -> Measurement:
        return self.measurement(self.estimate(), self.metric_name)


@EVALUATORS.register("ssim_uniform7")
class SSIMUniform7(SSIM):
    """SSIM with scikit-image's default window (7x7 uniform, sample covariance): not the standard SSIM.

    Kept for comparison with numbers computed by ``skimage.metrics.structural_similarity`` with its
    defaults; reported with ``standard=False``.
    """

    metric = "ssim_uniform7"
    window = "uniform7"
    window_text = "7x7 uniform window, sample covariance"

    def estimate(self) -> Estimate:
        reason = ("7x7 uniform window with sample covariance (scikit-image's default), not Wang et al.'s 11x11 "
                  "Gaussian window (sigma 1.5): not comparable with published SSIM values")
        return dataclasses.replace(super().estimate(), standard=False, reason=reason)


@EVALUATORS.register("psnr")
class PSNR(_RegionEvaluator):
    """Peak signal-to-noise ratio in dB (``data_range=255``, MSE over all channels of the region).

    Pixel-identical pairs have an infinite PSNR: they are not averaged in. ``compute()`` returns two
    measurements: ``psnr`` (``psnr_<region>``), the mean over the non-identical pairs (``inf`` when
    every pair is identical), and ``psnr_identical_pairs`` (``psnr_<region>_identical_pairs``), the
    share of scored pairs that are identical, with a Wilson 95% CI.
    """

    metric = "psnr"
    folder_audit = {"plates": {}, "faces": {}}

    def score(self, original, anonymized, boxes) -> float:
        return image_metrics.psnr(original, anonymized, self.region, boxes)

    def compute(self) -> list[Measurement]:
        scores = np.asarray(self._scores, np.float64)
        identical = np.isinf(scores)
        finite = scores[~identical]
        k = int(identical.sum())
        where = "" if self.region == "image" else f", {self.region}"
        method = (f"PSNR (data_range=255{where}); mean over the {finite.size} non-identical pairs "
                  f"({k} identical pairs, of infinite PSNR, not averaged in), bootstrap 95% CI")
        if finite.size == 0 and k:
            est = Estimate(
                math.inf, math.inf, math.inf, k, f"PSNR (data_range=255{where}): all {k} pairs identical, infinite"
            )
        else:
            est = mean_estimate(finite, method=method)
        est = dataclasses.replace(est, extra={**self.details(), "identical_pairs": k})
        share = proportion(
            identical, f"share of the scored pairs that are pixel-identical{where} (infinite PSNR), Wilson 95% CI"
        )
        return [self.measurement(est, self.metric_name), self.measurement(share, f"{self.metric_name}_identical_pairs")]


def default_device(device: str | None) -> str:
    """``device`` or CUDA when available, else CPU."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


#: smallest image side each LPIPS backbone accepts (pooling layers run out of pixels below it)
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}


@EVALUATORS.register("lpips")
class LPIPS(ProgressEvaluator):
    """Learned perceptual distance (LPIPS v0.1, Zhang et al. 2018) between original and anonymized.

    ``net="alex"`` (the paper's recommended metric) or ``"vgg"``; backbones from the model cache
    (``anonaudit models fetch lpips-alexnet`` / ``lpips-vgg``). Inputs are RGB scaled to [-1, 1] as
    the package expects; pairs of equal size are batched. Lower means more similar.
    """

    higher_is_better = False

    param_alternatives = {"net": ("vgg",), "device": ("cpu",)}

    def __init__(self, net: str = "alex", device: str | None = None):
        if net not in ("alex", "vgg"):
            raise ConfigError(f"LPIPS: net must be 'alex' or 'vgg', got {net!r}")
        self.net = net
        self.device = device
        self._scores: list[float]
        self.add_state("_scores", [], merge="cat")
        super().__init__()

    def update(self, release: Release) -> None:
        pairs = [release.pair(i) for i in range(len(release))]
        scores = lpips_distances([o for o, _ in pairs], [a for _, a in pairs], self.net, self.device, release.keys)
        self._scores.extend(scores.tolist())

    def compute(self) -> Measurement:
        est = mean_estimate(
            self._scores, method=f"LPIPS v0.1 ({self.net} backbone); mean over images, bootstrap 95% CI"
        )
        return self.measurement(est, f"lpips_{self.net}")


def lpips_distances(originals: Sequence[np.ndarray], anonymized: Sequence[np.ndarray], net: str = "alex",
                    device: str | None = None, keys: Sequence[str] | None = None) -> np.ndarray:
    """LPIPS v0.1 distance of each (original, anonymized) pair (``net``: ``"alex"`` or ``"vgg"``).

    Pairs must have equal sizes of at least the backbone's minimum side (errors name the pair by
    ``keys``, default its index); pairs of the same size are batched. Needs the cached backbone.
    """
    import torch

    from ..models.lpips_net import load_lpips

    if len(originals) != len(anonymized):
        raise ValueError(f"lpips_distances: {len(originals)} originals but {len(anonymized)} anonymized images")
    keys = list(keys) if keys is not None else [str(i) for i in range(len(originals))]
    dev = default_device(device)
    model, _ = load_lpips(net, dev)
    by_shape: dict[tuple, list[int]] = {}
    for i, (o, a) in enumerate(zip(originals, anonymized)):
        check_pair_sizes(keys[i], o, a)
        if min(o.shape[:2]) < LPIPS_MIN_SIDE[net]:
            raise DataError(f"{keys[i]}: {o.shape[1]}x{o.shape[0]} is too small for LPIPS-{net} "
                            f"(its backbone needs at least {LPIPS_MIN_SIDE[net]} px on each side)")
        by_shape.setdefault(o.shape, []).append(i)
    scores = np.empty(len(originals))
    with torch.no_grad():
        for idx in by_shape.values():
            x0 = _to_lpips_input([originals[i] for i in idx]).to(dev)
            x1 = _to_lpips_input([anonymized[i] for i in idx]).to(dev)
            scores[idx] = model(x0, x1).flatten().double().cpu().numpy()
    return scores


def _to_lpips_input(images: list[np.ndarray]):
    import torch

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0
