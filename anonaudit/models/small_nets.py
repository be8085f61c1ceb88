"""Small networks an attack trains for itself: the budgeted training loop and the on-disk cache.

A learning intruder (the parrot recogniser, the learned restorer) trains a small torch network on
pairs it makes from its own images. :func:`fit_network` runs that training under a
:class:`Budget` (steps, and optionally wall-clock seconds), seeded; on the CPU with a fixed number
of threads the same seed and a step budget give the same weights (a ``max_seconds`` budget that
stops training early depends on the machine's speed, and the steps done are reported).
:func:`cached_network` keeps the trained weights in the suite's model-output cache
(:mod:`anonaudit.memo`: the run's ``cache.sqlite`` or ``$ANONAUDIT_CACHE/features.sqlite``) under a
key the caller builds from everything the weights depend on (the target, the auxiliary set, the
seed, the budget, the architecture), so a rerun or a second attack with the same key loads them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..memo import Memo
from ..params import check_range

#: Bump when the training loop changes what it produces for the same key.
TRAINING_VERSION = "1"


@dataclass(frozen=True)
class Budget:
    """How much an attacker trains: at most ``steps`` optimiser steps and ``max_seconds`` seconds
    (``None``: no time limit) on batches of ``batch_size``, Adam at learning rate ``lr``."""

    steps: int = 1000
    max_seconds: float | None = None
    batch_size: int = 32
    lr: float = 2e-3

    def __post_init__(self) -> None:
        check_range("training budget", "steps", self.steps, ge=1, integer=True)
        check_range("training budget", "max_seconds", self.max_seconds, gt=0, optional=True)
        check_range("training budget", "batch_size", self.batch_size, ge=1, integer=True)
        check_range("training budget", "lr", self.lr, gt=0)


@dataclass(frozen=True)
class TrainingCost:
    """What a training run cost: ``steps`` done, wall-clock ``seconds``, the last ``loss`` (mean of the
    final 10 steps) and whether the weights were ``cached`` (loaded, not trained, in this process)."""

    steps: int
    seconds: float
    loss: float
    cached: bool = False

    def describe(self) -> str:
        how = "loaded from the cache (trained earlier" if self.cached else "trained"
        tail = ")" if self.cached else ""
        return f"{how} {self.steps} steps in {self.seconds:.1f} s, final loss {self.loss:.4g}{tail}"


def fit_network(
    net: Any,
    batch: Callable[[np.random.Generator, int], tuple[Any, ...]],
    loss: Callable[..., Any],
    budget: Budget,
    seed: int,
) -> TrainingCost:
    """Train ``net`` in place: per step ``loss(net, *batch(rng, batch_size))`` is minimised with Adam.

    ``batch`` draws one batch of tensors from the seeded generator ``rng``; torch's own randomness
    (initialisation happens before, in the caller) is seeded with ``seed`` too.
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=budget.lr, total_steps=budget.steps,
                                                   pct_start=0.15)
    net.train()
    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(budget.steps):
        value = loss(net, *batch(rng, budget.batch_size))
        optimiser.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimiser.step()
        schedule.step()
        losses.append(float(value.detach()))
        if budget.max_seconds is not None and time.perf_counter() - start >= budget.max_seconds:
            break
    net.eval()
    return TrainingCost(len(losses), time.perf_counter() - start, float(np.mean(losses[-10:])))


def flat_state(net: Any) -> np.ndarray:
    """Every parameter and buffer of ``net`` as one float32 vector (state-dict order)."""
    parts = [v.detach().cpu().reshape(-1).float().numpy() for v in net.state_dict().values()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def load_flat_state(net: Any, flat: np.ndarray) -> None:
    """Load a vector written by :func:`flat_state` into ``net`` (same architecture)."""
    import torch

    state, offset = net.state_dict(), 0
    for name, value in state.items():
        n = value.numel()
        if offset + n > flat.size:
            raise ValueError(f"cached weights hold {flat.size} values, fewer than the network needs")
        chunk = torch.from_numpy(np.ascontiguousarray(flat[offset:offset + n])).reshape(value.shape)
        state[name] = chunk.to(value.dtype)
        offset += n
    if offset != flat.size:
        raise ValueError(f"cached weights hold {flat.size} values, the network {offset}")
    net.load_state_dict(state)


def cache_key(**parts: Any) -> str:
    """A stable key for :func:`cached_network` from JSON-able parts (sorted by name, hashed)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def cached_network(
    kind: str, key: str | None, net: Any, train: Callable[[Any], TrainingCost]
) -> tuple[Any, TrainingCost]:
    """``net`` trained by ``train(net)``, or loaded from the suite's cache under ``(kind, key)``.

    ``kind`` names the architecture family (it is the cache's model id with the training version);
    ``key`` must change with everything the weights depend on (build it with :func:`cache_key`).
    ``key=None`` trains without caching. The training cost recorded with the weights is returned,
    marked ``cached`` when they were loaded.
    """
    if key is None:
        return net, train(net)
    memo = Memo(f"attacker-net:{kind}:v{TRAINING_VERSION}")
    trained: dict[str, TrainingCost] = {}

    def compute(todo: list[int]) -> list[Any]:
        trained["cost"] = train(net)
        values = [flat_state(net), asdict(trained["cost"])]
        return [values[i] for i in todo]

    weights, meta = memo.get_or_compute([f"{key}:weights", f"{key}:cost"], compute)
    if "cost" in trained:
        return net, trained["cost"]
    load_flat_state(net, np.asarray(weights))
    net.eval()
    return net, TrainingCost(int(meta["steps"]), float(meta["seconds"]), float(meta["loss"]), cached=True)
