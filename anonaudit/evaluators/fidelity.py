"""Pixel and perceptual fidelity between each original and its anonymized version: SSIM, PSNR, LPIPS.

Each evaluator scores every image pair and reports the mean with a percentile-bootstrap 95% CI
over images (``Estimate.n`` = images scored). The boxes of ``region="boxes"`` / ``"outside_boxes"``
are the original's annotated boxes (plates, faces) or, for an original without any, the boxes the
anonymizer recorded on its output (e.g. the faces its detector found; counted in
``Estimate.extra["boxes_from_release"]``). Images whose region is undefined or empty (no boxes on
either side, or crops smaller than the SSIM window) are dropped and counted in
``Estimate.extra["no_region"]``: an image the anonymizer left untouched says nothing about how
well it preserves the background. Original and anonymized image must have the same size; a pair
that does not raises :class:`MismatchError` naming its key and both sizes.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.imageset import Release
from ..errors import ConfigError, DataError, MismatchError
from ..metrics import image as image_metrics
from ..progress import progress
from ..registry import EVALUATORS
from ..stats import Estimate, mean_estimate
from .base import Evaluator


def check_pair_sizes(key: str, original: np.ndarray, anonymized: np.ndarray) -> None:
    """Raise :class:`MismatchError` when the two images of pair ``key`` differ in size."""
    if original.shape != anonymized.shape:
        (ho, wo), (ha, wa) = original.shape[:2], anonymized.shape[:2]
        raise MismatchError(f"{key}: original is {wo}x{ho} but the anonymized image is {wa}x{ha} (width x height); "
                            "fidelity metrics need pixel-aligned pairs")


class ProgressEvaluator(Evaluator):
    """An evaluator whose one-call form shows a progress bar over batches (``ANONAUDIT_PROGRESS=0`` hides it)."""

    def __call__(self, release: Release, batch_size: int = 64) -> Estimate:
        self.reset()
        total = math.ceil(len(release) / batch_size)
        for batch in progress(release.batches(batch_size), desc=f"metric {self.name}", total=total, disable=total < 2):
            self.update(batch)
        return self.compute()


def _metric_name(base: str, region: str) -> str:
    return base if region == "image" else f"{base}_{region}"


class _RegionEvaluator(ProgressEvaluator):
    """Per-pair scores over a region of the image (boxes: see the module doc)."""

    metric = ""

    def _check_region(self, region: str) -> None:
        if region not in image_metrics.REGIONS:
            raise ConfigError(f"{type(self).__name__}: region must be one of {image_metrics.REGIONS}, got {region!r}")

    def reset(self) -> None:
        self._scores: list[float] = []
        self._no_region = 0
        self._boxes_from_release = 0

    def score(self, original: np.ndarray, anonymized: np.ndarray, boxes) -> float:
        raise NotImplementedError

    def update(self, release: Release) -> None:
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
            s = self.score(original, anonymized, boxes)
            if math.isnan(s):
                self._no_region += 1
            else:
                self._scores.append(s)

    def describe(self) -> str:
        raise NotImplementedError

    def extra(self) -> dict:
        extra = {"metric_name": _metric_name(self.metric, self.region), "region": self.region, "no_region": self._no_region}
        if self._boxes_from_release:
            extra["boxes_from_release"] = self._boxes_from_release
        return extra

    def compute(self) -> Estimate:
        est = mean_estimate(self._scores, method=self.describe())
        return Estimate(est.value, est.ci_low, est.ci_high, est.n, est.method, extra=self.extra())


@EVALUATORS.register("ssim")
class SSIM(_RegionEvaluator):
    """Structural similarity (scikit-image ``structural_similarity``, ``data_range=255``, per channel).

    Default: scikit-image's defaults (7x7 uniform window, sample covariance, K1=0.01, K2=0.03);
    ``gaussian_weights=True`` uses Wang et al.'s 11x11 Gaussian window (sigma 1.5). ``region``:
    ``"image"``, ``"boxes"`` (mean of SSIM over box crops) or ``"outside_boxes"`` (SSIM map of the
    whole image averaged over the background; see :mod:`anonaudit.metrics.image`).
    """

    metric = "ssim"
    higher_is_better = True

    def __init__(self, region: str = "image", gaussian_weights: bool = False):
        self._check_region(region)
        self.region = region
        self.gaussian_weights = gaussian_weights
        super().__init__()

    def score(self, original, anonymized, boxes) -> float:
        return image_metrics.ssim(original, anonymized, self.region, boxes, gaussian_weights=self.gaussian_weights)

    def describe(self) -> str:
        window = "11x11 Gaussian window (sigma 1.5)" if self.gaussian_weights else "7x7 uniform window"
        where = {"image": "whole image", "boxes": "mean over box crops", "outside_boxes": "SSIM map averaged outside the boxes"}
        return f"SSIM (scikit-image, {window}, data_range=255), {where[self.region]}; mean over images, bootstrap 95% CI"


@EVALUATORS.register("psnr")
class PSNR(_RegionEvaluator):
    """Peak signal-to-noise ratio in dB (``data_range=255``, MSE over all channels of the region).

    Identical pixels give an infinite PSNR; such pairs are counted in ``extra["identical"]`` and
    enter the mean as ``max_db`` (default 100 dB, above what any non-identical 8-bit pair of up to
    ~3 megapixel regions reaches). ``max_db=None`` leaves them out of the mean instead.
    """

    metric = "psnr"
    higher_is_better = True

    def __init__(self, region: str = "image", max_db: float | None = 100.0):
        self._check_region(region)
        if max_db is not None and not max_db > 0:
            raise ConfigError(f"PSNR: max_db must be positive or None, got {max_db!r}")
        self.region = region
        self.max_db = max_db
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self._identical = 0

    def score(self, original, anonymized, boxes) -> float:
        value = image_metrics.psnr(original, anonymized, self.region, boxes)
        if math.isinf(value):
            self._identical += 1
            return float(self.max_db) if self.max_db is not None else float("nan")
        return value

    def extra(self) -> dict:
        out = super().extra()
        if self.max_db is None:
            out["no_region"] -= self._identical  # identical pairs are counted on their own
        out.update(identical=self._identical, max_db=self.max_db)
        return out

    def describe(self) -> str:
        cap = f"identical pairs counted as {self.max_db:g} dB" if self.max_db is not None else "identical pairs excluded"
        return f"PSNR (data_range=255, {self.region}), {cap}; mean over images, bootstrap 95% CI"


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

    def __init__(self, net: str = "alex", device: str | None = None):
        if net not in ("alex", "vgg"):
            raise ConfigError(f"LPIPS: net must be 'alex' or 'vgg', got {net!r}")
        self.net = net
        self.device = device
        super().__init__()

    def reset(self) -> None:
        self._scores: list[float] = []

    def update(self, release: Release) -> None:
        import torch

        from ..models.lpips_net import load_lpips

        dev = default_device(self.device)
        model, _ = load_lpips(self.net, dev)
        by_shape: dict[tuple, list[int]] = {}
        pairs = [release.pair(i) for i in range(len(release))]
        for i, (o, a) in enumerate(pairs):
            check_pair_sizes(release.keys[i], o, a)
            if min(o.shape[:2]) < LPIPS_MIN_SIDE[self.net]:
                raise DataError(f"{release.keys[i]}: {o.shape[1]}x{o.shape[0]} is too small for LPIPS-{self.net} "
                                f"(its backbone needs at least {LPIPS_MIN_SIDE[self.net]} px on each side)")
            by_shape.setdefault(o.shape, []).append(i)
        scores = np.empty(len(release))
        with torch.no_grad():
            for idx in by_shape.values():
                x0 = _to_lpips_input([pairs[i][0] for i in idx]).to(dev)
                x1 = _to_lpips_input([pairs[i][1] for i in idx]).to(dev)
                scores[idx] = model(x0, x1).flatten().double().cpu().numpy()
        self._scores.extend(scores.tolist())

    def compute(self) -> Estimate:
        est = mean_estimate(self._scores, method=f"LPIPS v0.1 ({self.net} backbone); mean over images, bootstrap 95% CI")
        return Estimate(est.value, est.ci_low, est.ci_high, est.n, est.method, extra={"metric_name": f"lpips_{self.net}"})


def _to_lpips_input(images: list[np.ndarray]):
    import torch

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0
