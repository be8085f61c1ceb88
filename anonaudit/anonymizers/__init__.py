"""Anonymization methods ("targets"): classical baselines, face-region variants, the papers' trained
methods and external releases. Every class registered on ``ANONYMIZERS`` under this package is
exported here by its class name, imported on first use (``from anonaudit.anonymizers import Pixelate``)."""

from ..components import lazy_export, registered_classes
from .base import Anonymizer

_EXPORTS = registered_classes(__name__, "ANONYMIZERS")
__all__ = ["Anonymizer", *sorted(_EXPORTS)]  # noqa: PLE0604 - class names (strings) read from the sources


def __getattr__(name: str) -> type:
    return lazy_export(__name__, _EXPORTS, name)
