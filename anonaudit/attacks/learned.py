"""Shared by the learned face attackers (the parrot classifier, the restorers): their training budget
as a component parameter, torch's thread count while they train, and the hash of their training
images for the weight cache's key.

The training loop and the weight cache are :mod:`anonaudit.models.small_nets`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from ..data.imageset import ImageSet
from ..errors import ConfigError
from ..models.small_nets import Budget
from ..params import check_range


def images_digest(images: ImageSet) -> str:
    """One hash of the content of every image of ``images``, in order (part of a weight-cache key)."""
    h = hashlib.sha256()
    for i in range(len(images)):
        h.update(images.hash(i).encode())
    return h.hexdigest()


def budget(attack: str, steps: int, max_seconds: float | None, batch_size: int, lr: float) -> Budget:
    """The :class:`~anonaudit.models.small_nets.Budget`; a bad value is a ``ConfigError`` naming ``attack``."""
    try:
        return Budget(steps, None if max_seconds is None else float(max_seconds), batch_size, float(lr))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{attack}: {exc}") from None


def check_threads(attack: str, threads: int | None) -> None:
    """Raise ``ConfigError`` naming ``attack`` unless ``threads`` is None or a positive integer."""
    check_range(attack, "threads", threads, ge=1, integer=True, optional=True)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op threads set to ``threads`` (None: as they are), then restore
    them (small networks on a shared CPU train faster on one thread)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
