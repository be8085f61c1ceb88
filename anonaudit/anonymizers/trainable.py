"""Base class of the trained anonymizers: lazy checkpoint loading and ``fit`` through the training loop.

The networks train through :func:`anonaudit.training.train` (the loop behind ``anonaudit train``);
the :class:`~anonaudit.training.base.Trainable` protocol says what a method implements for it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..models.faces.mtcnn import resolve_device
from ..params import check_range
from ..training.base import restore
from ..training.config import TrainConfig
from ..training.dp import DPPlan, PrivateOptimizer, check_dp_params, poisson_batches, steps_per_epoch
from ..training.loop import train as train_loop
from .base import Anonymizer

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

    from ..data.imageset import ImageSet

#: Default ``dp_delta`` of every DP-capable target (it must also be below 1/n for n training examples).
DP_DELTA = 1e-5
#: Default ``dp_max_grad_norm``: the L2 norm each example's gradient is clipped to.
DP_MAX_GRAD_NORM = 1.0


@dataclasses.dataclass(frozen=True)
class SharedParam:
    """A constructor parameter that several trainable targets take with one meaning (and, unless
    ``default`` is :data:`PER_METHOD`, one default), checked by :meth:`TrainableAnonymizer.check_shared`."""

    name: str
    default: Any
    meaning: str


#: Marks a shared parameter whose default is the method's own (the papers' learning rates differ).
PER_METHOD = object()

#: Parameters EVERY trainable target takes (in its explicit ``__init__`` signature, as
#: :class:`~anonaudit.params.ParamsMixin` reads it), with the same default and meaning.
TRAINABLE_PARAMS: tuple[SharedParam, ...] = (
    SharedParam("lr", PER_METHOD, "the learning rate of the method's optimizers (a number > 0; default: the paper's)"),
    SharedParam("seed", 0, "seed of the training loop and of the method's own random draws (an integer)"),
    SharedParam("checkpoint", None, "a checkpoint of `anonaudit train` to load instead of training (None: fit trains)"),
    SharedParam("device", "auto", "where the networks run: auto (CUDA when present), cpu or cuda[:N]"),
)
#: Parameters every DP-capable target (one that names its ``dp_network``) takes, and no other.
DP_PARAMS: tuple[SharedParam, ...] = (
    SharedParam("dp_epsilon", None, "train the dp_network with DP-SGD to (epsilon, delta)-DP (None: no DP)"),
    SharedParam("dp_delta", DP_DELTA, "the delta of the DP guarantee (below 1/n for n training examples)"),
    SharedParam("dp_max_grad_norm", DP_MAX_GRAD_NORM, "the L2 norm each example's gradient is clipped to"),
)


class TrainableAnonymizer(Anonymizer):
    """Base of trained anonymizers: lazy checkpoint loading and ``fit`` through the training loop.

    Subclasses implement the :class:`~anonaudit.training.base.Trainable` methods, declare
    ``arch_params`` (parameters that define the networks), ``tiny_train`` (the
    :class:`~anonaudit.training.config.TrainConfig` fields ``fit`` uses when no checkpoint is given)
    and ``test_params`` (a small CPU variant: the tiny configs' architecture, for quick fits in tests
    and demos), and take the parameters of :data:`TRAINABLE_PARAMS` in their ``__init__`` (stored and
    checked by :meth:`check_shared`). A target with a DP variant names in ``dp_network`` the network
    (and optimizer key) trained with DP-SGD when ``dp_epsilon`` is set, takes :data:`DP_PARAMS` too,
    builds that optimizer with :meth:`private_optimizer`, draws its batches with :meth:`batch_indices`
    and steps it with a one-example loss (:class:`~anonaudit.training.dp.PrivateOptimizer`).
    After ``fit``, ``training_keys_`` lists the keys of the images the networks were trained on and
    ``train_config_`` how (:meth:`training_recipe`); :meth:`retrained` trains a fresh copy the same
    way (the white-box capabilities ``training_keys`` and ``retrain``, :mod:`.whitebox`); ``privacy_``
    is the DP record (:meth:`privacy`: the plan and the epsilon spent), None without DP.
    """

    trainable = True
    provides: tuple[str, ...] = ("training_keys", "retrain")
    arch_params: tuple[str, ...] = ()
    tiny_train: dict[str, Any] = {"epochs": 2, "batch_size": 16}
    param_alternatives = {"device": ("cpu",)}
    #: The network trained with DP-SGD when ``dp_epsilon`` is set; None: the method has no DP variant.
    dp_network: str | None = None

    checkpoint: str | None
    device: str
    seed: int
    dp_epsilon: float | None = None
    dp_delta: float = DP_DELTA
    dp_max_grad_norm: float = DP_MAX_GRAD_NORM

    # -- the shared parameters -----------------------------------------------------------------
    def check_shared(self, **values: Any) -> None:
        """Check the shared parameters (:data:`TRAINABLE_PARAMS`, and :data:`DP_PARAMS` for a target
        with a ``dp_network``) and store them as attributes; called by each ``__init__`` with its values."""
        expected = [p.name for p in TRAINABLE_PARAMS + (DP_PARAMS if self.dp_network else ())]
        if sorted(values) != sorted(expected):
            raise TypeError(f"{type(self).__name__}.check_shared takes {expected}, got {sorted(values)}")
        check_range(self, "lr", values["lr"], gt=0)
        check_range(self, "seed", values["seed"], integer=True)
        device = values["device"]
        if not isinstance(device, str) or not (device in ("auto", "cpu") or device.startswith("cuda")):
            raise ConfigError(f"{self.name}: device must be auto, cpu or cuda[:N], got {device!r}")
        if values["checkpoint"] is not None and not isinstance(values["checkpoint"], (str, Path)):
            raise ConfigError(f"{self.name}: checkpoint must be a path or None, got {values['checkpoint']!r}")
        if self.dp_network:
            check_dp_params(self.name, values["dp_epsilon"], values["dp_delta"], values["dp_max_grad_norm"])
        for name, value in values.items():
            setattr(self, name, value)

    def always_shown(self) -> tuple[str, ...]:
        """``label_params``, and with DP the guarantee claimed: ``face_dcgan(dp_epsilon=8, dp_delta=1e-05, ...)``."""
        dp = ("dp_epsilon", "dp_delta") if self.dp_epsilon is not None else ()
        return (*super().always_shown(), *dp)

    # -- DP-SGD --------------------------------------------------------------------------------
    @property
    def private(self) -> bool:
        """Whether this instance trains its ``dp_network`` with DP-SGD (``dp_epsilon`` set)."""
        return self.dp_network is not None and self.dp_epsilon is not None

    def dp_examples(self, data: ImageSet) -> int:
        """How many training examples ``data`` gives (the privacy unit): one per image by default."""
        return len(data)

    def plan_training(self, data: ImageSet, config: TrainConfig) -> None:
        """The training loop's hook before ``build``: with ``dp_epsilon``, plan DP-SGD for the whole
        run (Poisson rate ``batch_size / n``, the run's steps, the noise Opacus' accountant gives)."""
        self.dp_plan_ = None
        if not self.private:
            return
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(f"{self.label()}: DP-SGD trains in one process (torchrun with WORLD_SIZE > 1 is not "
                              "supported: the replicas' batches would not be one Poisson sample)")
        n = self.dp_examples(data)
        steps = config.steps or int(config.epochs or 0) * steps_per_epoch(n, config.batch_size)
        self.dp_plan_ = DPPlan.make(float(self.dp_epsilon), float(self.dp_delta), float(self.dp_max_grad_norm), n,
                                    config.batch_size, steps)

    def private_optimizer(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Any:
        """``optimizer`` as built, or with DP a :class:`PrivateOptimizer` around it (planned when the
        training loop planned the run; unplanned, it only carries a checkpoint's privacy record)."""
        if not self.private:
            return optimizer
        return PrivateOptimizer(network, optimizer, getattr(self, "dp_plan_", None))

    def batch_indices(self, n: int, batch_size: int, generator: torch.Generator,
                      full_only: bool = True) -> Iterator[torch.Tensor]:
        """One epoch of index batches into ``n`` examples drawn from ``generator``: with DP, Poisson
        samples (:func:`~anonaudit.training.dp.poisson_batches`); else a random order cut into batches
        of ``min(batch_size, n)`` (``full_only``: a last, smaller batch is dropped)."""
        import torch

        if self.private:
            yield from poisson_batches(n, batch_size, generator)
            return
        bs = min(int(batch_size), n)
        order = torch.randperm(n, generator=generator)
        for s in range(0, n - bs + 1 if full_only else n, bs):
            yield order[s : s + bs]

    def privacy(self) -> dict[str, Any] | None:
        """The DP record of the trained ``dp_network`` (plan, epsilon spent, steps), None without DP."""
        if not self.private or getattr(self, "optimizers_", None) is None:
            return None
        return self.optimizers_[self.dp_network].record()

    def training_record(self) -> dict[str, Any]:
        """What the training loop adds to ``manifest.json``: ``privacy`` (:meth:`privacy`) with DP."""
        record = self.privacy()
        return {"privacy": record} if record is not None else {}

    def fit(self, train: ImageSet | None = None) -> TrainableAnonymizer:
        """Load ``checkpoint`` when given (``train`` is then unused), else train on ``train`` with
        the tiny CPU settings ``tiny_train`` through the same loop as ``anonaudit train``."""
        if self.checkpoint:
            payload = restore(self, self.checkpoint, resolve_device(self.device))
            self.training_keys_ = list(payload.get("data_keys", []))
            fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"epochs", "steps", "device"}
            saved = {k: v for k, v in (payload.get("train") or {}).items() if k in fields}
            self.train_config_ = TrainConfig(**{**saved, "steps": int(payload["step"]), "device": self.device})
            self.privacy_ = self.privacy()
            return self
        if train is None or len(train) == 0:
            raise ConfigError(f"{self.label()}: needs training images or a 'checkpoint'")
        return self.train_with(
            train, TrainConfig(**{"device": self.device, "seed": self.seed, **self.tiny_train})
        )

    def train_with(self, train: ImageSet, config: TrainConfig) -> TrainableAnonymizer:
        """Train on ``train`` through the training loop with the settings ``config`` (``fit`` uses
        ``tiny_train``); records the training keys and the recipe in steps (:meth:`training_recipe`)."""
        with tempfile.TemporaryDirectory(prefix=f"anonaudit-{self.name}-") as tmp:
            train_loop(self, train, config, Path(tmp), resume=False, quiet=True)
            steps = int(json.loads((Path(tmp) / "manifest.json").read_text())["steps"])
        self.training_keys_ = list(train.keys)
        self.train_config_ = dataclasses.replace(config, epochs=None, steps=steps)
        self.privacy_ = self.privacy()
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
