"""The ``Anonymizer`` contract: ``fit(train) -> self``, ``anonymize(ImageSet) -> ImageSet``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..data.degradation import Degradation
from ..data.imageset import ImageSet, Record
from ..params import ParamsMixin
from ..progress import progress
from ..registry import ANONYMIZERS


class Anonymizer(ParamsMixin):
    """Base class of every anonymization method ("target").

    Subclasses implement :meth:`anonymize_image` (per-image methods) or override :meth:`anonymize`
    (batched / generative methods). Trainable ones set ``trainable = True`` and implement ``fit``.
    """

    name = ""
    trainable = False
    #: False for a ready-made release (``external``): it holds files for the names it was given and
    #: cannot anonymize other images, so an attacker cannot re-apply it to images of its own.
    applies_to_new_images = True
    #: The white-box capabilities this method provides (words of
    #: :data:`~anonaudit.anonymizers.whitebox.CAPABILITIES`, each with its public method): none by default.
    provides: tuple[str, ...] = ()

    def fit(self, train: ImageSet | None = None) -> Anonymizer:
        """Learn from ``train`` (no-op for methods without parameters to learn)."""
        return self

    def capabilities(self) -> tuple[str, ...]:
        """The white-box capabilities this instance provides (see :mod:`anonaudit.anonymizers.whitebox`):
        the declared ``provides``; a method whose capabilities depend on its parameters narrows them here."""
        return self.provides

    def degradation(self) -> Degradation | None:
        """The operator this method applies (kernel, block size, region), put on the audit's
        ``Release`` for the inversion attacks; ``None`` (the default: learned and external methods)
        when it cannot say, and the attacks then estimate one blind (see :mod:`anonaudit.data.degradation`)."""
        return None

    def anonymize_image(self, image: np.ndarray, record: Record) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement anonymize_image or anonymize")

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        """Anonymize every image; keys, labels and boxes carry over to the result."""
        out = [
            self.anonymize_image(images[i], images.record(i))
            for i in progress(range(len(images)), desc=f"anonymize {self.label()}", disable=not show_progress)
        ]
        return images.with_images(out, name=f"{images.name}:{self.label()}")

    def anonymize_with_auxiliary(
        self, images: ImageSet, auxiliary: ImageSet | None, show_progress: bool = True
    ) -> tuple[ImageSet, ImageSet | None]:
        """``images`` anonymized, and the intruder's ``auxiliary`` images as the release holds them.

        The default anonymizes ``images`` only and gives None: attacks that want anonymized
        auxiliary images re-apply the public method. A ready-made release that also holds the
        auxiliary people's files returns those (see :class:`~anonaudit.anonymizers.external.ExternalRelease`).
        """
        return self.anonymize(images, show_progress=show_progress), None

    def save(self, path: str | Path) -> None:
        """Save name and parameters as JSON (trainable subclasses also save their weights)."""
        Path(path).write_text(json.dumps({"name": self.name, "params": self.get_params()}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Anonymizer:
        spec: dict[str, Any] = json.loads(Path(path).read_text())
        return ANONYMIZERS.create(spec["name"], **spec.get("params", {}))

