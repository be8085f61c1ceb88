"""Training checkpoint files: ``save_checkpoint(path, payload)`` (atomic) and ``load_checkpoint(path)``.

The format is shared by the training loop (:mod:`anonaudit.training`), which writes it, and the
models that load trained weights (e.g. the ``arcface_trained`` embedder), so it lives below both.

A payload's ``environment`` (:func:`anonaudit.environment.environment` at training time) is compared
with the loading one's: each difference is an :class:`~anonaudit.environment.EnvironmentWarning`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .environment import environment, warn_differences
from .errors import FileProblemError
from .fileio import torch_load, torch_save_atomic

#: Written into every checkpoint of the training loop; other files are refused by name.
CHECKPOINT_FORMAT = "anonaudit-train-v1"


class CheckpointError(FileProblemError):
    """A checkpoint file is missing, unreadable, of another format or for another method."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with ``torch.save`` atomically (:func:`~anonaudit.fileio.torch_save_atomic`).

    An interruption leaves either the previous checkpoint or the new one, never half a file.
    """
    return torch_save_atomic(payload, path)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """The payload saved by :func:`save_checkpoint`, read with ``torch.load(weights_only=True)``.

    A payload recorded under another environment (versions, threads, deterministic flags, device
    ``map_location``, lock) warns once per difference. A missing file, a file ``torch`` cannot read
    (truncated, corrupt, not a checkpoint) or a payload that is not a mapping raises
    :class:`CheckpointError` naming the file and the problem.
    """
    path = Path(path)
    payload = torch_load(path, map_location, error=CheckpointError, what="checkpoint")
    if not isinstance(payload, dict):
        raise CheckpointError(path, f"corrupt checkpoint: expected a mapping, found {type(payload).__name__}")
    if "environment" in payload:
        warn_differences(payload["environment"], environment(device=map_location), f"checkpoint {path}")
    return payload
