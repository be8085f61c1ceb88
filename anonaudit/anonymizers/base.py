"""The ``Anonymizer`` contract: ``fit(train) -> self``, ``anonymize(ImageSet) -> ImageSet``."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..data.imageset import ImageSet, Record
from ..params import ParamsMixin
from ..progress import progress


class Anonymizer(ParamsMixin):
    """Base class of every anonymization method ("target").

    Subclasses implement :meth:`anonymize_image` (per-image methods) or override :meth:`anonymize`
    (batched / generative methods). Trainable ones set ``trainable = True`` and implement ``fit``.
    """

    name = ""
    trainable = False

    def fit(self, train: ImageSet | None = None) -> "Anonymizer":
        """Learn from ``train`` (no-op for methods without parameters to learn)."""
        return self

    def anonymize_image(self, image: np.ndarray, record: Record) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement anonymize_image or anonymize")

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        """Anonymize every image; keys, labels and boxes carry over to the result."""
        out = [
            self.anonymize_image(images[i], images.record(i))
            for i in progress(range(len(images)), desc=f"anonymize {self.label()}", disable=not show_progress)
        ]
        return images.with_images(out, name=f"{images.name}:{self.label()}")

    def label(self) -> str:
        """Short human-readable name with parameters, e.g. ``gaussian_blur(sigma=2)``."""
        defaults = {
            k: p.default for k, p in inspect.signature(type(self).__init__).parameters.items() if k != "self"
        }
        shown = {k: v for k, v in self.get_params().items() if k not in defaults or _differs(v, defaults[k])}
        # The main strength parameter (first argument) is always shown, even at its default.
        first = next(iter(self.get_params()), None)
        if first is not None and first not in shown and self.get_params()[first] is not None and first != "region":
            shown = {first: self.get_params()[first], **shown}
        params = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.name}({params})" if params else self.name

    def save(self, path: str | Path) -> None:
        """Save name and parameters as JSON (trainable subclasses also save their weights)."""
        Path(path).write_text(json.dumps({"name": self.name, "params": self.get_params()}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "Anonymizer":
        from ..registry import ANONYMIZERS

        spec: dict[str, Any] = json.loads(Path(path).read_text())
        return ANONYMIZERS.create(spec["name"], **spec.get("params", {}))


def _differs(value: Any, default: Any) -> bool:
    if default is inspect.Parameter.empty:
        return True
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) != list(default)
    return value != default
