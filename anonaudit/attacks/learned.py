"""Shared by the learned attackers: a training budget and trained weights cached across runs.

**Budget.** A learned attacker trains for at most ``steps`` optimiser steps and at most
``max_seconds`` of wall-clock time, whichever ends first; the steps done and the seconds spent are
reported with its result (the cost of the attack is part of what it shows).

**Cache.** Training is seeded, so the same network trained on the same images with the same settings
gives the same weights (up to the time budget: a run cut by ``max_seconds`` may stop at another step
on another machine). The weights are kept in the run's model-output cache (:class:`~anonaudit.memo.Memo`,
``cache.sqlite``) under a key that hashes everything they depend on: the attack and its settings, the
target, the training images' content and the seed; a rerun or another attack unit with the same key
reuses them and reports the seconds the original training took.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.imageset import ImageSet
from ..errors import ConfigError
from ..memo import Memo


def check_budget(attack: str, steps: int, max_seconds: float) -> None:
    """Raise ``ConfigError`` naming ``attack`` unless ``steps`` >= 1 and ``max_seconds`` > 0."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"{attack}: steps must be a positive integer, got {steps!r}")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
        raise ConfigError(f"{attack}: max_seconds must be a positive number, got {max_seconds!r}")


@dataclass(frozen=True)
class Training:
    """What one training run cost: steps done, seconds, whether the time budget ended it, and
    whether the weights came from the cache (then ``seconds`` is the original training's)."""

    steps: int
    seconds: float
    stopped_by_time: bool
    cached: bool = False

    def describe(self) -> str:
        why = "time budget reached" if self.stopped_by_time else "step budget reached"
        return f"{self.steps} steps in {self.seconds:.1f} s ({why}{'; weights from the cache' if self.cached else ''})"


def run_budget(step: Callable[[int], None], steps: int, max_seconds: float) -> Training:
    """Call ``step(i)`` for ``i = 0, 1, ...`` until ``steps`` calls or ``max_seconds`` have passed."""
    start = time.perf_counter()
    done = 0
    while done < steps:
        if time.perf_counter() - start >= max_seconds:
            return Training(done, time.perf_counter() - start, True)
        step(done)
        done += 1
    return Training(done, time.perf_counter() - start, False)


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


def check_threads(attack: str, threads: int | None) -> None:
    """Raise ``ConfigError`` naming ``attack`` unless ``threads`` is None or a positive integer."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"{attack}: threads must be a positive integer or null, got {threads!r}")


def images_digest(images: ImageSet) -> str:
    """One hash of the content of every image of ``images`` (order included)."""
    h = hashlib.sha256()
    for i in range(len(images)):
        h.update(images.hash(i).encode())
    return h.hexdigest()


def _flatten(net) -> np.ndarray:
    return np.concatenate([t.detach().cpu().numpy().astype(np.float32).ravel() for t in net.state_dict().values()])


def _restore(net, flat: np.ndarray) -> None:
    import torch

    state, offset = net.state_dict(), 0
    for name, t in state.items():
        n = t.numel()
        state[name] = torch.from_numpy(np.asarray(flat[offset : offset + n])).reshape(t.shape).to(t.dtype)
        offset += n
    net.load_state_dict(state)


def cached_training(model_id: str, key: dict[str, Any], net, train: Callable[[], Training]) -> Training:
    """Load ``net``'s weights from the cache under ``key``, or ``train()`` it and store them.

    ``net`` must be built the same way (architecture, seed) for the same ``key``; ``key`` is any
    JSON-able description of what the weights depend on. The cached value is one float32 vector: the
    training's steps, seconds and time-stop flag, then every tensor of the state dict in order."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    fresh: list[Training] = []

    def compute(todo: list[int]) -> list[np.ndarray]:
        done = train()
        fresh.append(done)
        head = np.array([done.steps, done.seconds, float(done.stopped_by_time)], np.float32)
        return [np.concatenate([head, _flatten(net)])] * len(todo)

    value = Memo(f"{model_id}:weights").get_or_compute([digest], compute)[0]
    _restore(net, value[3:])
    if fresh:
        return fresh[0]
    return Training(int(value[0]), float(value[1]), bool(value[2]), cached=True)
