"""Attacks on anonymized releases; every result carries the originals' upper bound and a chance baseline.
Every class registered on ``ATTACKS`` under this package is exported here by its class name, imported
on first use (``from anonaudit.attacks import OCRReread``)."""

from ..components import lazy_export, registered_classes
from .base import Attack, AttackMetric, AttackResult

_EXPORTS = registered_classes(__name__, "ATTACKS")
__all__ = ["Attack", "AttackMetric", "AttackResult", *sorted(_EXPORTS)]  # noqa: PLE0604 - class names (strings) read from the sources


def __getattr__(name: str) -> type:
    return lazy_export(__name__, _EXPORTS, name)
