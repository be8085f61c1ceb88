"""Utility metrics (streaming ``update/compute`` returning ``Measurement``s); their per-pair kernels are in
``evaluators.functional``. Every class registered on ``EVALUATORS`` under this package is exported here by
its class name, imported on first use (``from anonaudit.evaluators import SSIM``)."""

from ..components import lazy_export, registered_classes
from .base import Evaluator, PerImageEvaluator

_EXPORTS = registered_classes(__name__, "EVALUATORS")
__all__ = ["Evaluator", "PerImageEvaluator", *sorted(_EXPORTS)]  # noqa: PLE0604 - class names (strings) read from the sources


def __getattr__(name: str) -> type:
    return lazy_export(__name__, _EXPORTS, name)
