"""Attacks on anonymized releases; every result carries the originals' upper bound and a chance baseline."""

from .base import Attack, AttackMetric, AttackResult
from .inversion import DeblurThenOCR, DepixelateThenOCR
from .ocr import OCRReread

__all__ = ["Attack", "AttackMetric", "AttackResult", "DeblurThenOCR", "DepixelateThenOCR", "OCRReread"]
