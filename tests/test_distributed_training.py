"""Data-parallel training (anonaudit.training.distributed) on CPU with Gloo and 2 processes.

One step on 2 processes, each with its own half of the batches, must give the gradients and the
weights of one single-process step on the concatenated batch.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from anonaudit.training import distributed  # noqa: E402

BATCH = 6


class TinyRegressor:
    """A trainable in the loop's protocol: a small conv net regressing one number per image."""

    name = "tiny_regressor"

    def __init__(self, batch_norm: bool = False):
        self.batch_norm = batch_norm

    def build(self, device) -> None:
        norm = [torch.nn.BatchNorm2d(4)] if self.batch_norm else []
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), *norm, torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 1),
        ).to(device)
        self.networks_ = {"net": net}
        self.optimizers_ = {"net": torch.optim.Adam(net.parameters(), lr=1e-2)}

    def training_batches(self, data, batch_size, generator):
        images, targets = data
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield images[idx], targets[idx]

    def train_step(self, batch, step):
        x, y = batch
        net = self.networks_["net"]
        loss = torch.nn.functional.mse_loss(net(x).squeeze(1), y)
        self.optimizers_["net"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers_["net"].step()
        return {"loss": float(loss.detach())}


def _data():
    g = torch.Generator().manual_seed(123)
    return torch.rand(4 * BATCH, 3, 8, 8, generator=g), torch.rand(4 * BATCH, generator=g)


def _snapshot(method) -> dict:
    net = method.networks_["net"]
    return {
        "grads": [p.grad.detach().clone() for p in net.parameters()],
        "params": [p.detach().clone() for p in net.parameters()],
        "buffers": [b.detach().clone() for b in net.buffers()],
    }


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = distributed.setup("cpu")
    assert ctx is not None and ctx.rank == rank and ctx.backend == "gloo"
    for batch_norm in (False, True):
        torch.manual_seed(rank)  # different initial weights: replicate() must install rank 0's everywhere
        method = TinyRegressor(batch_norm)
        method.build(torch.device("cpu"))
        distributed.replicate(method, ctx)
        batches = list(
            distributed.shard(method.training_batches(_data(), BATCH, torch.Generator().manual_seed(5)), ctx)
        )
        assert len(batches) == 2  # 4 batches over 2 processes
        method.train_step(batches[0], 0)
        torch.save(_snapshot(method), Path(out) / f"rank{rank}-bn{int(batch_norm)}.pt")
    distributed.teardown(ctx)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes importing torch: 20-60 s on 2 busy cores
def test_two_process_step_equals_one_step_on_the_concatenated_batch(tmp_path):
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}-bn0.pt", weights_only=True) for r in range(2)]

    torch.manual_seed(0)  # rank 0's initial weights
    single = TinyRegressor()
    single.build(torch.device("cpu"))
    before = [p.detach().clone() for p in single.networks_["net"].parameters()]
    first_two = list(single.training_batches(_data(), BATCH, torch.Generator().manual_seed(5)))[:2]
    x = torch.cat([b[0] for b in first_two])
    y = torch.cat([b[1] for b in first_two])
    single.train_step((x, y), 0)
    want = _snapshot(single)

    for got in ranks:
        for g, w in zip(got["grads"], want["grads"]):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-7)
        for p, w, b in zip(got["params"], want["params"], before):
            assert not torch.equal(p, b)  # the step moved every weight
            torch.testing.assert_close(p, w, rtol=1e-4, atol=1e-5)
    for g0, g1 in zip(ranks[0]["grads"], ranks[1]["grads"]):
        assert torch.equal(g0, g1)  # every process took the same step
    for p0, p1 in zip(ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(p0, p1)

    # With BatchNorm: the running statistics follow rank 0 (they differ per half before the broadcast).
    norm = [torch.load(tmp_path / f"rank{r}-bn1.pt", weights_only=True) for r in range(2)]
    for b0, b1 in zip(norm[0]["buffers"], norm[1]["buffers"]):
        assert torch.equal(b0, b1)
    for p0, p1 in zip(norm[0]["params"], norm[1]["params"]):
        assert torch.equal(p0, p1)


def test_shard_deals_batches_round_robin_and_drops_a_short_last_group():
    ctx = [distributed.Context(rank=r, world_size=3, local_rank=r, backend="gloo") for r in range(3)]
    assert [list(distributed.shard(range(8), c)) for c in ctx] == [[0, 3], [1, 4], [2, 5]]
    assert list(distributed.shard(range(4), None)) == [0, 1, 2, 3]


def test_single_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.setup("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "zero")
    from anonaudit.errors import ConfigError

    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        distributed.setup("cpu")


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # two torchrun processes training the tiny plate WGAN for 8 steps: 30-60 s on 2 busy cores
def test_torchrun_trains_with_two_processes_and_rank_0_writes(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "wgan"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "anonaudit", "train", str(REPO / "configs" / "train" / "plate-wgan-tiny.yaml"),
           "--set", "train.epochs=2", "--set", "train.batch_size=8", "--set", "train.checkpoint_every=3",
           "--set", "train.sample_every=0", "--output", str(out), "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1", ANONAUDIT_PROGRESS="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    # 64 plates in batches of 8: 8 batches per epoch, 2 per step (one per process), 2 epochs.
    assert manifest["processes"] == 2 and manifest["steps"] == 8 and manifest["epochs_completed"] == 2
    rows = [tuple(line.split(",")[::2]) for line in (out / "log.csv").read_text().splitlines()[1:]]  # (step, loss)
    assert sorted({int(step) for step, _ in rows}) == list(range(1, 9))
    assert len(rows) == len(set(rows))  # one log, rank 0's: each step's losses written once
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    assert payload["step"] == 8 and payload["final"] is True
