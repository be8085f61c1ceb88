"""Training configuration: :class:`TrainConfig` (loop settings) and :class:`TrainJob` (a whole YAML file).

A training YAML names the method (a registered trainable and its constructor parameters), the data
(the ``DATASETS`` registry), the loop settings and the output folder::

    method: {name: plate_wgan, image_size: 32}
    data:   {name: synthetic_plates, n: 64}
    train:  {epochs: 2, batch_size: 16, seed: 0, device: auto, checkpoint_every: 20, sample_every: 20}
    output: runs/train/plate-wgan-tiny
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import apply_overrides
from ..errors import ConfigError
from ..params import check_range
from ..registry import DATASETS
from .base import create_trainable

TOP_LEVEL_KEYS = ("method", "data", "train", "output")


@dataclass
class TrainConfig:
    """Settings of the training loop (the method's own hyper-parameters are its constructor params).

    Exactly one of ``epochs`` (passes over the data) and ``steps`` (optimisation steps) is set.
    ``checkpoint_every`` and ``sample_every`` count steps (0: only at the end).
    """

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 100
    sample_every: int = 100
    n_samples: int = 16

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ConfigError(
                f"train: set exactly one of 'epochs' and 'steps' (got epochs={self.epochs}, steps={self.steps})"
            )
        for name in ("epochs", "steps"):
            check_range("train", name, getattr(self, name), ge=1, integer=True, optional=True)
        check_range("train", "batch_size", self.batch_size, ge=1, integer=True)
        for name in ("checkpoint_every", "sample_every", "n_samples"):
            check_range("train", name, getattr(self, name), ge=0, integer=True)
        if self.device not in ("auto", "cpu") and not str(self.device).startswith("cuda"):
            raise ConfigError(f"train: 'device' must be auto, cpu or cuda[:N], got {self.device!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "train") -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of training options, got {data!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in names]
        if unknown:
            hints = {k: difflib.get_close_matches(k, names, n=1) for k in unknown}
            raise ConfigError(f"{where}: unknown training option(s) {unknown}; did you mean {hints}? (valid: {names})")
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainJob:
    """A parsed training YAML: ``method`` and ``data`` specs (``{name: ..., **params}``), the loop's
    :class:`TrainConfig` and the output folder."""

    method: dict[str, Any]
    data: dict[str, Any]
    train: TrainConfig
    output: Path
    source: Path | None = None

    def create_method(self):
        """The trainable method the ``method`` spec names (see :func:`~anonaudit.training.base.create_trainable`)."""
        params = {k: v for k, v in self.method.items() if k != "name"}
        return create_trainable(self.method["name"], **params)

    def load_data(self):
        """The training :class:`~anonaudit.data.imageset.ImageSet` from the ``DATASETS`` registry."""
        params = {k: v for k, v in self.data.items() if k != "name"}
        try:
            return DATASETS.create(self.data["name"], **params)
        except ConfigError as exc:
            raise ConfigError(f"{self._where('data')}: {exc}") from None

    def _where(self, key: str) -> str:
        return f"{self.source}: {key}" if self.source else key


def _component(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{where}: expected a name or a mapping with 'name', got {value!r}")
    return dict(value)


def parse_train_config(raw: Any, source: Path | None = None) -> TrainJob:
    """Validate a training mapping (see the module docstring) into a :class:`TrainJob`."""
    where = str(source) if source else "training config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        hints = {k: difflib.get_close_matches(k, TOP_LEVEL_KEYS, n=1) for k in unknown}
        raise ConfigError(f"{where}: unknown key(s) {unknown}; did you mean {hints}? (valid: {list(TOP_LEVEL_KEYS)})")
    for key in ("method", "data", "train"):
        if key not in raw:
            raise ConfigError(f"{where}: missing '{key}'")
    method = _component(raw["method"], f"{where}: method")
    data = _component(raw["data"], f"{where}: data")
    train = TrainConfig.from_dict(raw["train"] or {}, f"{where}: train")
    output = Path(raw.get("output") or Path("runs") / "train" / method["name"])
    return TrainJob(method=method, data=data, train=train, output=output, source=source)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainJob:
    """Read a training YAML safely, apply ``dotted.key=value`` overrides (as ``anonaudit run --set``)
    and validate it. Errors name the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read training config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if overrides:
        raw = apply_overrides(raw, overrides)
    return parse_train_config(raw, path)
