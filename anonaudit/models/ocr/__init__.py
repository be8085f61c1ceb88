"""OCR engines behind one interface (registered in ``OCR_ENGINES``): RapidOCR, Tesseract, EasyOCR."""

from __future__ import annotations

from ...registry import OCR_ENGINES
from .base import (
    PLATE_CHARS,
    PLATE_MARGIN,
    OCREngine,
    Reading,
    join_lines,
    plate_box,
    plate_crop,
)
from .easy import EasyOCREngine
from .rapid import RapidOCREngine, TextRegion, ctc_decode
from .tesseract import TesseractEngine, parse_hocr

__all__ = [
    "PLATE_CHARS",
    "PLATE_MARGIN",
    "EasyOCREngine",
    "OCREngine",
    "RapidOCREngine",
    "Reading",
    "TesseractEngine",
    "TextRegion",
    "check_engine",
    "create_engine",
    "ctc_decode",
    "join_lines",
    "parse_hocr",
    "plate_box",
    "plate_crop",
]


def create_engine(engine: str | OCREngine, **params) -> OCREngine:
    """An engine instance from a registered name (with ``params``) or an instance as it is."""
    if isinstance(engine, OCREngine):
        if params:
            raise ValueError("engine parameters given for an engine instance")
        return engine
    return OCR_ENGINES.create(engine, **params)


def check_engine(engine: str | OCREngine) -> None:
    """Fail early (at configuration time, before any image is read) on an unknown engine name:
    raises :class:`~anonaudit.errors.UnknownComponentError` with close matches suggested."""
    if isinstance(engine, OCREngine):
        return
    OCR_ENGINES.get(engine)
