"""Anonymization methods ("targets"): classical baselines, face-region variants and external releases."""

from .base import Anonymizer
from .classical import BoxBlur, GaussianBlur, Mask, Noise, Pixelate
from .external import ExternalRelease

__all__ = ["Anonymizer", "BoxBlur", "ExternalRelease", "GaussianBlur", "Mask", "Noise", "Pixelate"]
