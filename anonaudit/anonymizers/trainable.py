"""Base class of the trained anonymizers: lazy checkpoint loading and ``fit`` through the training loop.

The networks train through :func:`anonaudit.training.train` (the loop behind ``anonaudit train``);
the :class:`~anonaudit.training.base.Trainable` protocol says what a method implements for it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..models.faces.mtcnn import resolve_device
from ..training.base import restore
from ..training.config import TrainConfig
from ..training.loop import train as train_loop
from .base import Anonymizer

if TYPE_CHECKING:
    from ..data.imageset import ImageSet


class TrainableAnonymizer(Anonymizer):
    """Base of trained anonymizers: lazy checkpoint loading and ``fit`` through the training loop.

    Subclasses implement the :class:`~anonaudit.training.base.Trainable` methods, declare
    ``arch_params`` (parameters that define the networks), ``tiny_train`` (the
    :class:`~anonaudit.training.config.TrainConfig` fields ``fit`` uses when no checkpoint is given)
    and ``test_params`` (a small CPU variant: the tiny configs' architecture, for quick fits in tests
    and demos), and take ``checkpoint`` and ``device`` params.
    After ``fit``, ``training_keys_`` lists the keys of the images the networks were trained on.
    """

    trainable = True
    arch_params: tuple[str, ...] = ()
    tiny_train: dict[str, Any] = {"epochs": 2, "batch_size": 16}
    param_alternatives = {"device": ("cpu",)}

    checkpoint: str | None
    device: str

    def fit(self, train: ImageSet | None = None) -> TrainableAnonymizer:
        """Load ``checkpoint`` when given (``train`` is then unused), else train on ``train`` with
        the tiny CPU settings ``tiny_train`` through the same loop as ``anonaudit train``."""
        if self.checkpoint:
            payload = restore(self, self.checkpoint, resolve_device(self.device))
            self.training_keys_ = list(payload.get("data_keys", []))
            return self
        if train is None or len(train) == 0:
            raise ConfigError(f"{self.label()}: needs training images or a 'checkpoint'")
        config = TrainConfig(**{"device": self.device, "seed": getattr(self, "seed", 0), **self.tiny_train})
        with tempfile.TemporaryDirectory(prefix=f"anonaudit-{self.name}-") as tmp:
            train_loop(self, train, config, Path(tmp), resume=False, quiet=True)
        self.training_keys_ = list(train.keys)
        return self

    def ensure_fitted(self) -> None:
        """Load the checkpoint on first use; without one, ``fit`` must have been called."""
        if getattr(self, "networks_", None) is not None:
            return
        if self.checkpoint:
            self.fit()
            return
        raise ConfigError(
            f"{self.label()}: not trained; call fit(images) or give a 'checkpoint' from `anonaudit train`"
        )
