"""Base class of the trained anonymizers: lazy checkpoint loading and ``fit`` through the training loop.

The networks train through :func:`anonaudit.training.train` (the loop behind ``anonaudit train``);
the :class:`~anonaudit.training.base.Trainable` protocol says what a method implements for it.
"""

from __future__ import annotations

import dataclasses
import json
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
    After ``fit``, ``training_keys_`` lists the keys of the images the networks were trained on and
    ``train_config_`` how (:meth:`training_recipe`); :meth:`retrained` trains a fresh copy the same
    way (the white-box capabilities ``training_keys`` and ``retrain``, :mod:`.whitebox`).
    """

    trainable = True
    provides: tuple[str, ...] = ("training_keys", "retrain")
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
            fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"epochs", "steps", "device"}
            saved = {k: v for k, v in (payload.get("train") or {}).items() if k in fields}
            self.train_config_ = TrainConfig(**{**saved, "steps": int(payload["step"]), "device": self.device})
            return self
        if train is None or len(train) == 0:
            raise ConfigError(f"{self.label()}: needs training images or a 'checkpoint'")
        return self.train_with(
            train, TrainConfig(**{"device": self.device, "seed": getattr(self, "seed", 0), **self.tiny_train})
        )

    def train_with(self, train: ImageSet, config: TrainConfig) -> TrainableAnonymizer:
        """Train on ``train`` through the training loop with the settings ``config`` (``fit`` uses
        ``tiny_train``); records the training keys and the recipe in steps (:meth:`training_recipe`)."""
        with tempfile.TemporaryDirectory(prefix=f"anonaudit-{self.name}-") as tmp:
            train_loop(self, train, config, Path(tmp), resume=False, quiet=True)
            steps = int(json.loads((Path(tmp) / "manifest.json").read_text())["steps"])
        self.training_keys_ = list(train.keys)
        self.train_config_ = dataclasses.replace(config, epochs=None, steps=steps)
        return self

    def training_recipe(self) -> TrainConfig:
        """How the networks were trained, in optimisation steps: the loop settings of ``fit`` (or those
        stored in the checkpoint) with ``steps`` the number of steps taken, whatever ``epochs`` said."""
        if getattr(self, "train_config_", None) is None and self.checkpoint:
            self.fit()  # the checkpoint is loaded lazily: its payload holds the recipe
        recipe = getattr(self, "train_config_", None)
        if recipe is None:
            raise ConfigError(f"{self.label()}: not trained: call fit(images) or give a 'checkpoint' first")
        return recipe

    def retrained(self, images: ImageSet, seed: int) -> TrainableAnonymizer:
        """A fresh copy (same public parameters, ``seed`` in place of the seed, no checkpoint) trained on
        ``images`` with this one's :meth:`training_recipe`: the same number of optimisation steps, batch
        size and schedule however many images ``images`` holds (a shadow model for membership audits)."""
        params = {**self.get_params(), "checkpoint": None}
        if "seed" in params:
            params["seed"] = int(seed)
        shadow = type(self)(**params)
        recipe = dataclasses.replace(self.training_recipe(), seed=int(seed), checkpoint_every=0, sample_every=0,
                                     n_samples=0)
        return shadow.train_with(images, recipe)


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
