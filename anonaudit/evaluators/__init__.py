"""Utility metrics (streaming ``update/compute`` returning ``Measurement``s); their per-pair kernels are in
``evaluators.functional``."""

from .base import Evaluator, PerImageEvaluator
from .fidelity import PSNR, SSIM, SSIMUniform7

__all__ = ["PSNR", "SSIM", "Evaluator", "PerImageEvaluator", "SSIMUniform7"]
