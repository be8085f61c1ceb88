"""Import every built-in component module so the registries are filled."""

from __future__ import annotations

import importlib

BUILTIN_MODULES = (
    "anonaudit.anonymizers.classical",
    "anonaudit.anonymizers.external",
    "anonaudit.anonymizers.face_regions",
    "anonaudit.attacks.attribute",
    "anonaudit.attacks.detector_miss",
    "anonaudit.attacks.inversion",
    "anonaudit.attacks.metadata",
    "anonaudit.attacks.ocr",
    "anonaudit.attacks.reid",
    "anonaudit.datasets",
    "anonaudit.evaluators.distribution",
    "anonaudit.evaluators.face_detection",
    "anonaudit.evaluators.fidelity",
    "anonaudit.evaluators.identity",
    "anonaudit.evaluators.landmarks",
    "anonaudit.evaluators.plate_detection",
    "anonaudit.models.faces.dlib_models",
    "anonaudit.models.faces.embedders",
    "anonaudit.models.faces.mtcnn",
    "anonaudit.models.faces.pixels",
    "anonaudit.models.ocr.easy",
    "anonaudit.models.ocr.rapid",
    "anonaudit.models.ocr.tesseract",
)

_loaded = False


def load_builtin_components() -> None:
    """Register the built-in anonymizers, attacks, evaluators, embedders, engines and data sets."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    _loaded = True
