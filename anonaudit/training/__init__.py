"""Training of the papers' anonymizers (and the ArcFace embedder) through one loop: ``anonaudit train``.

See ``docs/training.md``. ``train(method, data, config, output)`` runs any :class:`Trainable`;
:func:`create_trainable` builds one by name from ``ANONYMIZERS`` (trainable targets) or ``TRAINERS``
(other trainable models, registered in :mod:`anonaudit.registry` and found by its source scan).
"""

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..registry import TRAINERS
from .base import Trainable, create_trainable, restore
from .config import TrainConfig, TrainJob, load_train_config, parse_train_config
from .loop import train

__all__ = [
    "TRAINERS",
    "CheckpointError",
    "TrainConfig",
    "TrainJob",
    "Trainable",
    "create_trainable",
    "load_checkpoint",
    "load_train_config",
    "parse_train_config",
    "restore",
    "save_checkpoint",
    "train",
]
