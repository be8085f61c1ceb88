"""Data-parallel training across processes: ``torchrun --nproc_per_node=N -m anonaudit train CONFIG``.

``torchrun`` starts N processes and sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; with ``WORLD_SIZE > 1`` the training loop calls :func:`setup` (process group: NCCL
on CUDA, one GPU per process by ``LOCAL_RANK``; Gloo on CPU) and then:

- :func:`replicate`: every network starts from rank 0's weights and buffers, and every optimizer
  averages its parameters' gradients over the processes right before each ``step()`` (an optimizer
  step pre-hook), so all replicas take the same step;
- :func:`shard`: all processes draw the same epoch order (same seed) and process ``i`` takes batches
  ``i, i + N, i + 2N, ...``, like a ``DistributedSampler`` over batches: one optimisation step
  covers N batches, and the averaged gradient is the gradient of the mean loss over their union;
- only rank 0 (:attr:`Context.is_main`) writes checkpoints, samples, the log and the manifest.

Why gradients are averaged at the optimizer rather than by wrapping networks in
``torch.nn.parallel.DistributedDataParallel``: a trainable method's ``train_step`` owns its
forward passes, backward passes and optimizer steps (a WGAN-GP critic runs three forwards and a
double backward for the gradient penalty per step, and the generator steps only every
``n_critic`` steps), while the DDP wrapper expects one forward per backward through it, does not
support gradients through ``torch.autograd.grad``, and renames every state-dict key. Averaging at
``step()`` is the same all-reduce of the same gradients, keeps each method's code and checkpoints
unchanged, and works for every method. Buffers (e.g. BatchNorm running statistics) follow rank 0
at every step, as DDP's ``broadcast_buffers`` does; BatchNorm normalises each process's batches
with their own statistics (as under DDP without ``SyncBatchNorm``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Context:
    """This process's place in a multi-process run."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files."""
        return self.rank == 0


def world_size() -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 when absent)."""
    raw = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"WORLD_SIZE must be a positive integer, got {raw!r}")
    return value


def setup(device: Any) -> Context | None:
    """Join the process group ``torchrun`` describes; None for a single-process run.

    ``device`` is the device type training asked for (``torch.device`` or ``"cpu"``/``"cuda"``):
    CUDA uses NCCL and this process's GPU (``LOCAL_RANK``), CPU uses Gloo.
    """
    import torch
    import torch.distributed as dist

    size = world_size()
    if size == 1:
        return None
    kind = torch.device(device).type
    backend = "nccl" if kind == "cuda" else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s) visible")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, backend=backend)


def device_of(ctx: Context | None, device: Any) -> Any:
    """The device this process trains on: its own GPU (``cuda:LOCAL_RANK``) under NCCL."""
    import torch

    device = torch.device(device)
    if ctx is not None and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def teardown(ctx: Context | None) -> None:
    """Leave the process group once every process has reached this point (no-op for a single-process
    run): a process that destroys the group while another still talks to it can abort the other's
    communication threads at exit."""
    import torch.distributed as dist

    if ctx is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A seed for rank ``rank``'s random stream from step ``step`` on (ranks draw different noise)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{rank}:{step}".encode()).digest()[:8], "little") % 2**63


def _networks(method: Any) -> list[Any]:
    nets = getattr(method, "networks_", None)
    if not isinstance(nets, dict) or not nets:
        raise ConfigError(
            f"{getattr(method, 'name', type(method).__name__)}: build() made no networks_ to train in parallel"
        )
    return list(nets.values())


def _optimizers(method: Any) -> list[Any]:
    opts = getattr(method, "optimizers_", None)
    if not isinstance(opts, dict) or not opts:
        raise ConfigError(
            f"{getattr(method, 'name', type(method).__name__)}: build() made no optimizers_ to train in parallel"
        )
    return list(opts.values())


def broadcast_state(method: Any, ctx: Context) -> None:
    """Copy rank 0's parameters and buffers into every process's networks."""
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        for net in _networks(method):
            for tensor in net.parameters():
                dist.broadcast(tensor.data, src=0)
    broadcast_buffers(method, ctx)


def broadcast_buffers(method: Any, ctx: Context) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) into every process's networks."""
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        for net in _networks(method):
            for tensor in net.buffers():
                dist.broadcast(tensor.data, src=0)


def average_gradients(optimizer: Any, ctx: Context) -> None:
    """Replace each gradient of ``optimizer``'s parameters by its mean over the processes (in place).

    Parameters without a gradient are left alone: every process runs the same ``train_step``, so
    the same parameters lack one everywhere."""
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    by_kind: dict[tuple, list] = {}
    for g in grads:
        by_kind.setdefault((g.device, g.dtype), []).append(g)
    for bucket in by_kind.values():
        flat = _flatten_dense_tensors(bucket)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= ctx.world_size
        for g, reduced in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
            g.copy_(reduced)


def replicate(method: Any, ctx: Context | None) -> list[Any]:
    """Make ``method`` (built, and loaded when resuming) train as one replica of ``ctx.world_size``:
    rank 0's weights everywhere, gradients averaged before every optimizer step. Returns the hook
    handles (``handle.remove()`` undoes it); nothing for a single-process run."""
    if ctx is None:
        return []
    broadcast_state(method, ctx)

    def before_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        average_gradients(optimizer, ctx)
        broadcast_buffers(method, ctx)

    return [opt.register_step_pre_hook(before_step) for opt in _optimizers(method)]


def shard(batches: Iterable[Any], ctx: Context | None) -> Iterator[Any]:
    """This process's share of an epoch's batches: batch ``i`` goes to rank ``i mod N``; a last
    group of fewer than N batches is dropped so every process takes the same number of steps."""
    if ctx is None:
        yield from batches
        return
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == ctx.world_size:
            yield group[ctx.rank]
            group = []


class NullLog:
    """The loss log of a process other than rank 0: it writes nothing (rank 0 keeps the log)."""

    def write(self, step: int, epoch: int, losses: dict[str, float]) -> None:
        """Discard one step's losses."""

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to close."""
