"""Functional metrics: the kernels the evaluator classes call.

Per image pair: :func:`ssim` (Wang et al.'s 11x11 Gaussian window by default, ``window="uniform7"``
for scikit-image's default), :func:`psnr` (``inf`` for identical pixels), both over a ``region`` of
the image, and :func:`lpips` (per-pair distances of two image lists). The classes in
:mod:`~anonaudit.evaluators.fidelity` apply them to every pair of a release and add the mean, CI
and counts. From feature arrays the caller already has (e.g. of another feature extractor, or for
reference checks): :func:`frechet_distance`, :func:`fid_from_features`, :func:`kid_from_features`,
:func:`inception_score_from_logits`, the math :mod:`~anonaudit.evaluators.distribution` uses.
"""

from __future__ import annotations

import numpy as np

from ..metrics.frechet import frechet_distance, frechet_distance_from_features
from ..metrics.image import psnr, ssim
from ..metrics.inception_score import inception_score as _inception_score
from ..metrics.mmd import kid as _kid
from .fidelity import lpips_distances as lpips

__all__ = [
    "fid_from_features",
    "frechet_distance",
    "inception_score_from_logits",
    "kid_from_features",
    "lpips",
    "psnr",
    "ssim",
]


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
