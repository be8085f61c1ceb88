"""Utility metrics (streaming ``update/compute``), with functional twins in ``evaluators.functional``."""

from .base import Evaluator, PerImageEvaluator
from .fidelity import PSNR, SSIM

__all__ = ["Evaluator", "PerImageEvaluator", "PSNR", "SSIM"]
