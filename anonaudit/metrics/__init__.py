"""Pure-math metric kernels (numpy only): Frechet distance, kernel MMD (KID), Inception Score,
region-restricted SSIM/PSNR and a reservoir sample. Evaluators in :mod:`anonaudit.evaluators` wrap them."""

from .frechet import FeatureStats, frechet_distance, frechet_distance_from_features
from .image import box_mask, psnr, ssim
from .inception_score import SplitInceptionScore, inception_score
from .mmd import kid, mmd2_unbiased, polynomial_kernel
from .reservoir import PairReservoir

__all__ = [
    "FeatureStats",
    "PairReservoir",
    "SplitInceptionScore",
    "box_mask",
    "frechet_distance",
    "frechet_distance_from_features",
    "inception_score",
    "kid",
    "mmd2_unbiased",
    "polynomial_kernel",
    "psnr",
    "ssim",
]
