"""The :class:`Trainable` protocol, :func:`create_trainable` and checkpoint identity checks.

A method trains through :func:`anonaudit.training.train` when it implements :class:`Trainable`.
Where trainable methods live and register:

- a trainable *target* is an anonymizer: it subclasses
  :class:`~anonaudit.anonymizers.trainable.TrainableAnonymizer` in ``anonaudit/anonymizers/`` and
  registers in ``ANONYMIZERS`` beside the other anonymizers (its class sets ``trainable = True``);
- a trainable model that is not a target (the ArcFace embedder trainer, :mod:`.arcface`) registers
  in ``TRAINERS`` (:mod:`anonaudit.registry`, beside the other registries).

:func:`create_trainable` builds either by name, as ``anonaudit train`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint
from ..errors import ConfigError
from ..registry import ANONYMIZERS, TRAINERS

if TYPE_CHECKING:
    import torch

    from ..data.imageset import ImageSet

PROTOCOL_METHODS = ("build", "training_batches", "train_step", "sample_images", "state_dict", "load_state_dict")


@runtime_checkable
class Trainable(Protocol):
    """What the training loop needs from a method.

    Randomness inside :meth:`train_step` must come from torch's global generator (the loop seeds it
    and saves its state in checkpoints); :meth:`training_batches` must draw only from ``generator``.
    """

    name: str

    def build(self, device: torch.device) -> None:
        """Create the networks (``self.networks_``) and optimizers (``self.optimizers_``) on ``device``."""

    def training_batches(self, data: ImageSet, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
        """One epoch of preprocessed batches, in an order drawn from ``generator``."""

    def train_step(self, batch: Any, step: int) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the losses to log."""

    def sample_images(self, n: int) -> np.ndarray:
        """``(n, H, W, 3)`` uint8 samples for the sample grids."""

    def state_dict(self) -> dict[str, Any]:
        """Networks and optimizers (and anything else needed to resume) as tensors and plain values."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (after :meth:`build`)."""

    # Optional: ``prepare(self, data: ImageSet) -> None``, called by the loop before ``build`` when
    # the networks' sizes depend on the data (e.g. the number of identities of an ArcFace head);
    # ``plan_training(self, data: ImageSet, config: TrainConfig) -> None``, called before ``build``
    # with the whole run's settings (DP-SGD plans its noise for the run's steps); and
    # ``training_record(self) -> dict``, whose keys the loop adds to the manifest (the DP record).


def create_trainable(name: str, **params: Any) -> Any:
    """The trainable method ``name`` from :data:`TRAINERS`, else ``ANONYMIZERS``; others are refused."""
    registry = TRAINERS if name in TRAINERS else ANONYMIZERS
    try:
        method = registry.create(name, **params)
    except ConfigError as exc:
        trainable = sorted(TRAINERS.names() + [n for n in ANONYMIZERS.names() if ANONYMIZERS.get(n).trainable])
        raise ConfigError(f"method: {exc} (trainable methods: {', '.join(trainable)})") from None
    missing = [m for m in PROTOCOL_METHODS if not callable(getattr(method, m, None))]
    if missing or not getattr(method, "trainable", True):
        trainable = sorted(TRAINERS.names() + [n for n in ANONYMIZERS.names() if ANONYMIZERS.get(n).trainable])
        raise ConfigError(f"method '{name}' is not trainable (trainable methods: {', '.join(trainable)})")
    return method


def json_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as plain JSON values (paths become strings), as stored in checkpoints and manifests."""
    return json.loads(json.dumps(params, default=str))


def method_identity(method: Any) -> dict[str, Any]:
    """The parameters that define a method's networks: ``arch_params`` when declared, else all but
    ``checkpoint`` and ``device``. A checkpoint only loads into a method with the same values."""
    params = json_params(method.get_params())
    names = getattr(method, "arch_params", ()) or [k for k in params if k not in ("checkpoint", "device")]
    return {k: params[k] for k in names}


def check_identity(payload: dict[str, Any], method: Any, path: str | Path) -> None:
    """Raise :class:`CheckpointError` unless ``payload`` was written for ``method`` (name and arch params)."""
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            path,
            f"not an anonaudit training checkpoint (format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT!r})",
        )
    if payload.get("method") != method.name:
        raise CheckpointError(path, f"checkpoint of method '{payload.get('method')}', cannot load into '{method.name}'")
    saved = payload.get("identity", {})
    mine = method_identity(method)
    differ = {k: saved.get(k) for k in sorted(set(saved) | set(mine)) if saved.get(k) != mine.get(k)}
    if differ:
        mine_shown = {k: mine.get(k) for k in differ}
        raise CheckpointError(
            path,
            f"trained with {differ}, but the method has {mine_shown}: set these parameters to the checkpoint's values",
        )


def restore(method: Any, path: str | Path, device: torch.device | str) -> dict[str, Any]:
    """Build ``method`` on ``device`` and load the weights of the checkpoint at ``path``; returns the payload."""
    import torch

    payload = load_checkpoint(path, map_location=str(device))
    check_identity(payload, method, path)
    method.build(torch.device(device))
    try:
        method.load_state_dict(payload["state"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(path, f"weights do not fit the method ({type(exc).__name__}: {exc})") from None
    return payload
