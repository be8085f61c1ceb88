"""One-call functional twins of the utility evaluators and of their math.

``ssim(release)`` etc. stream the whole release through the evaluator and return its
:class:`Estimate`; the ``*_from_features`` functions compute the metric from feature arrays that
the caller already has (e.g. from another feature extractor, or for reference checks).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..data.imageset import Release
from ..metrics.frechet import frechet_distance as _frechet_distance
from ..metrics.frechet import frechet_distance_from_features
from ..metrics.inception_score import inception_score as _inception_score
from ..metrics.mmd import kid as _kid
from ..stats import Estimate
from .distribution import FID, KID, FrechetDistance, InceptionScore
from .fidelity import LPIPS, PSNR, SSIM


def ssim(release: Release, region: str = "image", gaussian_weights: bool = False, batch_size: int = 64) -> Estimate:
    """Mean SSIM of the release's pairs (see :class:`~anonaudit.evaluators.fidelity.SSIM`)."""
    return SSIM(region=region, gaussian_weights=gaussian_weights)(release, batch_size)


def psnr(release: Release, region: str = "image", max_db: float | None = 100.0, batch_size: int = 64) -> Estimate:
    """Mean PSNR in dB of the release's pairs (see :class:`~anonaudit.evaluators.fidelity.PSNR`)."""
    return PSNR(region=region, max_db=max_db)(release, batch_size)


def lpips(release: Release, net: str = "alex", device: str | None = None, batch_size: int = 64) -> Estimate:
    """Mean LPIPS of the release's pairs (needs the cached backbone)."""
    return LPIPS(net=net, device=device)(release, batch_size)


def fid(release: Release, device: str | None = None, batch_size: int = 64, **params) -> Estimate:
    """FID between originals and anonymized images (needs ``inception-fid`` weights)."""
    return FID(device=device, **params)(release, batch_size)


def kid(release: Release, device: str | None = None, batch_size: int = 64, **params) -> Estimate:
    """KID between originals and anonymized images (needs ``inception-fid`` weights)."""
    return KID(device=device, **params)(release, batch_size)


def inception_score(release: Release, splits: int = 10, device: str | None = None, batch_size: int = 64) -> Estimate:
    """Inception Score of the anonymized images (needs ``inception-fid`` weights)."""
    return InceptionScore(splits=splits, device=device)(release, batch_size)


def frechet_distance_release(release: Release, embedder: str | Callable = "pixels16", batch_size: int = 64, **params) -> Estimate:
    """Non-standard ``FD-<features>`` between originals and anonymized images."""
    return FrechetDistance(embedder=embedder, **params)(release, batch_size)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between two Gaussians (stable, eigen-decomposition based)."""
    return _frechet_distance(mu1, sigma1, mu2, sigma2)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Frechet distance between Gaussian fits of two ``(n, dim)`` feature arrays.

    This is FID only when the features are FID Inception-v3 pool3 features.
    """
    return frechet_distance_from_features(features1, features2)


def kid_from_features(features1: np.ndarray, features2: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """``(mean, std)`` of the unbiased polynomial-kernel MMD^2 over subsets (KID on Inception features)."""
    r = _kid(features1, features2, subsets=subsets, subset_size=subset_size, seed=seed)
    return r.mean, r.std


def inception_score_from_logits(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """``(mean, std)`` Inception Score over round-robin splits of ``(n, classes)`` logits."""
    return _inception_score(logits, splits)
