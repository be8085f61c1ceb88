"""One training loop for every :class:`~anonaudit.training.base.Trainable` method.

``train(method, data, config, output)`` seeds torch, picks the device (CUDA when present with
``device: auto``), runs ``epochs`` or ``steps`` optimisation steps, and writes into ``output``:

- ``checkpoint.pt``: atomic, every ``checkpoint_every`` steps and at the end; a rerun resumes from
  it and continues exactly as an uninterrupted run would (same state, same next batch and noise);
- ``samples/step_XXXXXX.png``: a grid of ``sample_images`` every ``sample_every`` steps and at the end;
- ``log.csv``: one row per step and loss (``step, epoch, loss, value``);
- ``manifest.json``: method, parameters, data, config, seed, versions, device, steps, seconds, and the
  ``environment`` determinism depends on (:mod:`anonaudit.environment`), also stored in the checkpoint.

Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE > 1``) each process trains one replica on its
share of the batches, gradients averaged before every optimizer step, and only rank 0 writes
(see :mod:`anonaudit.training.distributed`).
"""

from __future__ import annotations

import csv
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from ..data.imageset import ImageSet
from ..data.io import write_image
from ..environment import environment
from ..errors import ConfigError, DataError
from ..fileio import write_json_atomic
from ..models.faces.mtcnn import resolve_device
from ..progress import progress_enabled
from ..provenance import code_version
from . import distributed
from .base import check_identity, json_params, method_identity
from .config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
LOG_FIELDS = ("step", "epoch", "loss", "value")


def epoch_generator(seed: int, epoch: int):
    """The generator that orders epoch ``epoch``'s batches: a function of (seed, epoch) only, so a
    resumed run replays the interrupted epoch's order without saving generator states."""
    import torch

    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def sample_grid(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``(n, H, W, 3)`` uint8 images into one image, ``columns`` per row (default ~sqrt(n))."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"sample_images must return (n, H, W, 3) uint8, got {images.shape} {images.dtype}")
    n, h, w, _ = images.shape
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = im
    return grid


def _versions() -> dict[str, str]:
    import torch

    return {"anonaudit": code_version()["anonaudit"], "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _rng_state() -> dict[str, Any]:
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Log:
    """``log.csv`` in tidy form; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        rows: list[dict[str, str]] = []
        if keep_until is not None and path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= keep_until]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self._file = path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_FIELDS)

    def write(self, step: int, epoch: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            self._writer.writerow({"step": step, "epoch": epoch, "loss": name, "value": f"{float(value):.8g}"})

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _progress_line(step: int, epoch: int, losses: dict[str, float]) -> str:
    shown = " ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
    return f"epoch {epoch + 1} step {step}: {shown}"


def train(
    method: Any,
    data: ImageSet,
    config: TrainConfig,
    output: str | Path,
    resume: bool = True,
    quiet: bool = False,
) -> Path:
    """Train ``method`` on ``data`` as ``config`` says, writing into ``output``; returns the checkpoint path.

    With ``resume`` and an existing ``output/checkpoint.pt`` of the same method and architecture,
    training continues from it (raising ``epochs``/``steps`` continues a finished run); a checkpoint
    of another method or architecture is a :class:`CheckpointError` naming the file.
    """
    import torch

    if len(data) == 0:
        raise DataError(f"'{data.name}': no training images")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    ckpt_path = output / CHECKPOINT_NAME
    device = torch.device(resolve_device(config.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train: device {config.device!r} requested but CUDA is not available")
    ctx = distributed.setup(device)  # torchrun with WORLD_SIZE > 1: one replica per process
    device = distributed.device_of(ctx, device)
    main = ctx is None or ctx.is_main  # only rank 0 writes files
    env = environment(device=device.type)

    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(config.seed)
    if callable(getattr(method, "prepare", None)):  # optional: data-dependent sizes (e.g. ArcFace's classes)
        method.prepare(data)
    if callable(getattr(method, "plan_training", None)):  # optional: the whole run's plan (e.g. DP-SGD's noise)
        method.plan_training(data, config)
    method.build(device)
    step = epoch = batch_in_epoch = 0
    seconds_before = 0.0
    if resume and ckpt_path.exists():
        payload = load_checkpoint(ckpt_path, map_location=str(device))
        check_identity(payload, method, ckpt_path)
        method.load_state_dict(payload["state"])
        step, epoch, batch_in_epoch = int(payload["step"]), int(payload["epoch"]), int(payload["batch_in_epoch"])
        seconds_before = float(payload.get("seconds", 0.0))
        _set_rng_state(payload["rng"])
    distributed.replicate(method, ctx)
    if ctx is not None and not main:
        torch.manual_seed(distributed.rank_seed(config.seed, ctx.rank, step))  # its own noise
    log = _Log(output / "log.csv", keep_until=step if step else None) if main else distributed.NullLog()

    def save(final: bool = False) -> None:
        if not main:
            return
        log.flush()  # the log on disk covers at least the checkpoint's steps
        save_checkpoint(ckpt_path, {
            "format": CHECKPOINT_FORMAT,
            "method": method.name,
            "identity": method_identity(method),
            "params": json_params(method.get_params()),
            "train": config.as_dict(),
            "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "seconds": seconds_before + time.time() - t0,
            "final": final,
            "data_keys": list(data.keys),
            "state": method.state_dict(),
            "rng": _rng_state(),
            "environment": env,
        })

    def write_samples() -> None:
        if config.n_samples and main:
            rng = _rng_state()  # sampling must not change the training's random stream
            write_image(
                output / "samples" / f"step_{step:06d}.png", sample_grid(method.sample_images(config.n_samples))
            )
            _set_rng_state(rng)

    quiet = quiet or not main
    tty = sys.stderr.isatty() and progress_enabled() and not quiet
    bar = None
    if tty:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc=f"train {method.name}", dynamic_ncols=True)
    t0 = time.time()
    losses: dict[str, float] = {}
    try:
        while not _done(config, step, epoch):
            gen = epoch_generator(config.seed, epoch)
            taken = 0
            for batch in distributed.shard(method.training_batches(data, config.batch_size, gen), ctx):
                if taken < batch_in_epoch:  # replaying the interrupted epoch up to where the checkpoint was
                    taken += 1
                    continue
                losses = method.train_step(batch, step)
                step += 1
                taken = batch_in_epoch = taken + 1
                log.write(step, epoch, losses)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{float(v):.3g}" for k, v in losses.items()}, refresh=False)
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    save()
                if config.sample_every and step % config.sample_every == 0:
                    write_samples()
                if config.steps is not None and step >= config.steps:
                    break
            else:
                if taken == 0:
                    raise DataError(f"'{data.name}': {method.name} made no training batch from {len(data)} images "
                                    f"(batch_size {config.batch_size})")
                epoch, batch_in_epoch = epoch + 1, 0
                if not tty and not quiet:
                    print(_progress_line(step, epoch - 1, losses), file=sys.stderr, flush=True)
        save(final=True)
    finally:
        log.close()
        if bar is not None:
            bar.close()
    write_samples()
    if not main:
        distributed.teardown(ctx)
        return ckpt_path
    manifest = {
        "method": method.name,
        "params": json_params(method.get_params()),
        "data": {"name": data.name, "n": len(data)},
        "config": config.as_dict(),
        "seed": config.seed,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "versions": _versions(),
        "steps": step,
        "epochs_completed": epoch,
        "seconds": round(seconds_before + time.time() - t0, 3),
        "checkpoint": CHECKPOINT_NAME,
        "final_losses": {k: float(v) for k, v in losses.items()},
        "processes": 1 if ctx is None else ctx.world_size,
        "environment": env,
    }
    if callable(getattr(method, "training_record", None)):  # optional: e.g. the DP plan and the epsilon spent
        manifest.update(method.training_record())
    write_json_atomic(output / "manifest.json", manifest)
    distributed.teardown(ctx)
    return ckpt_path


def _done(config: TrainConfig, step: int, epoch: int) -> bool:
    if config.steps is not None:
        return step >= config.steps
    return epoch >= int(config.epochs or 0)


__all__ = ["CHECKPOINT_NAME", "CheckpointError", "epoch_generator", "sample_grid", "train"]
