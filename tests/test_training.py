"""The shared training loop: real steps lower a toy loss, checkpoints are atomic and resume bit for bit
(also from the middle of an epoch), bad checkpoints and configs are clear errors, and the CLI trains."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anonaudit.cli import main
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError
from anonaudit.params import ParamsMixin
from anonaudit.training import (
    TRAINERS,
    CheckpointError,
    Trainable,
    TrainConfig,
    load_checkpoint,
    load_train_config,
    save_checkpoint,
    train,
)
from anonaudit.training.loop import sample_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@TRAINERS.register("toy_mean")
class ToyMean(ParamsMixin):
    """Learns the mean image of its data by SGD with momentum on noisy batches: the noise comes from
    torch's global generator and the batch order from the loop's generator, so resuming exactly needs both."""

    def __init__(self, size: int = 4, lr: float = 0.2, noise: float = 0.1):
        self.size, self.lr, self.noise = size, lr, noise

    def build(self, device):
        self.networks_ = {"mean": torch.nn.Parameter(torch.zeros(3, self.size, self.size, device=device))}
        self.optimizers_ = {"sgd": torch.optim.SGD(list(self.networks_.values()), lr=self.lr, momentum=0.9)}

    def training_batches(self, data, batch_size, generator):
        images = [cv2.resize(data[i], (self.size, self.size), interpolation=cv2.INTER_AREA) for i in range(len(data))]
        x = torch.stack([torch.as_tensor(im).permute(2, 0, 1).float() / 255 for im in images])
        order = torch.randperm(len(data), generator=generator)
        for s in range(0, len(data) - batch_size + 1, batch_size):
            yield x[order[s : s + batch_size]]

    def train_step(self, batch, step):
        noisy = batch + self.noise * torch.randn_like(batch)
        loss = ((self.networks_["mean"] - noisy) ** 2).mean()
        self.optimizers_["sgd"].zero_grad()
        loss.backward()
        self.optimizers_["sgd"].step()
        return {"mse": float(loss.detach())}

    def sample_images(self, n):
        im = (self.networks_["mean"].detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        return np.repeat(im[None], n, axis=0)

    def state_dict(self):
        return {"mean": self.networks_["mean"].detach().clone(), "sgd": self.optimizers_["sgd"].state_dict()}

    def load_state_dict(self, state):
        with torch.no_grad():
            self.networks_["mean"].copy_(state["mean"])
        self.optimizers_["sgd"].load_state_dict(state["sgd"])


def toy_data(n: int = 12, size: int = 4) -> ImageSet:
    rng = np.random.default_rng(0)
    centre = rng.integers(60, 200, (size, size, 3))
    images = [np.clip(centre + rng.normal(0, 20, centre.shape), 0, 255).astype(np.uint8) for _ in range(n)]
    return ImageSet.from_arrays(images, name="toy")


def losses(folder: Path) -> list[float]:
    with (folder / "log.csv").open() as f:
        return [float(r["value"]) for r in csv.DictReader(f)]


def test_toy_method_satisfies_the_protocol():
    assert isinstance(ToyMean(), Trainable)


def test_training_lowers_the_loss_and_writes_checkpoint_samples_log_and_manifest(tmp_path):
    data = toy_data()
    method = TRAINERS.create("toy_mean")
    ckpt = train(
        method,
        data,
        TrainConfig(epochs=10, batch_size=4, device="cpu", checkpoint_every=5, sample_every=10),
        tmp_path,
        quiet=True,
    )
    assert ckpt == tmp_path / "checkpoint.pt"
    log = losses(tmp_path)
    assert len(log) == 30  # 10 epochs x 3 batches of 4
    assert np.mean(log[-3:]) < 0.2 * np.mean(log[:3])
    truth = np.mean([data[i] for i in range(len(data))], axis=0).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(method.networks_["mean"].detach().numpy(), truth, atol=0.08)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_000010.png",
        "step_000020.png",
        "step_000030.png",
    ]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["method"], manifest["steps"], manifest["epochs_completed"], manifest["device"]) == (
        "toy_mean",
        30,
        10,
        "cpu",
    )
    assert (
        manifest["seed"] == 0
        and "torch" in manifest["versions"]
        and manifest["params"] == {"size": 4, "lr": 0.2, "noise": 0.1}
    )
    payload = load_checkpoint(ckpt)
    assert payload["step"] == 30 and payload["final"] and payload["data_keys"] == data.keys
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporary files


@pytest.mark.parametrize(
    "stop_at", [2, 4]
)  # 3 batches per epoch: last checkpoint at an epoch's end (3) or mid-epoch (5)
def test_interrupted_run_resumes_to_the_same_state_and_steps(tmp_path, stop_at):
    data = toy_data()
    config = TrainConfig(steps=9, batch_size=4, device="cpu", checkpoint_every=1, sample_every=0)
    straight = ToyMean()
    train(straight, data, config, tmp_path / "a", quiet=True)

    class Interrupt(Exception):
        pass

    interrupted = ToyMean()
    step_fn = interrupted.train_step

    def failing(batch, step):
        if step == stop_at + 1:  # steps done so far: stop_at + 1, each checkpointed; fail inside the next one
            raise Interrupt
        return step_fn(batch, step)

    interrupted.train_step = failing
    with pytest.raises(Interrupt):
        train(interrupted, data, config, tmp_path / "b", quiet=True)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == stop_at + 1
    resumed = ToyMean()
    train(resumed, data, config, tmp_path / "b", quiet=True)
    assert torch.equal(resumed.networks_["mean"], straight.networks_["mean"])  # bitwise
    m1 = resumed.optimizers_["sgd"].state_dict()["state"][0]["momentum_buffer"]
    m2 = straight.optimizers_["sgd"].state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(m1, m2)
    assert losses(tmp_path / "b") == losses(tmp_path / "a")  # same steps, same losses, none logged twice


def test_raising_the_step_count_continues_a_finished_run(tmp_path):
    data = toy_data()
    straight = ToyMean()
    train(straight, data, TrainConfig(steps=8, batch_size=4, device="cpu", sample_every=0), tmp_path / "a", quiet=True)
    train(ToyMean(), data, TrainConfig(steps=5, batch_size=4, device="cpu", sample_every=0), tmp_path / "b", quiet=True)
    more = ToyMean()
    train(more, data, TrainConfig(steps=8, batch_size=4, device="cpu", sample_every=0), tmp_path / "b", quiet=True)
    assert torch.equal(more.networks_["mean"], straight.networks_["mean"])
    fresh = ToyMean()
    train(
        fresh,
        data,
        TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0),
        tmp_path / "b",
        resume=False,
        quiet=True,
    )
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 2 and len(losses(tmp_path / "b")) == 2


def test_missing_corrupt_and_foreign_checkpoints_are_clear_errors(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=r"nope\.pt: checkpoint not found"):
        load_checkpoint(missing)
    corrupt = tmp_path / "corrupt.pt"
    save_checkpoint(corrupt, {"format": "x", "w": torch.ones(1000)})
    corrupt.write_bytes(corrupt.read_bytes()[:300])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match=r"corrupt\.pt: corrupt or not a checkpoint"):
        load_checkpoint(corrupt)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pt: corrupt"):
        load_checkpoint(text)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match=r"list\.pt: corrupt checkpoint: expected a mapping"):
        load_checkpoint(listed)


def test_resuming_with_another_architecture_names_the_file_and_parameters(tmp_path):
    data = toy_data()
    train(ToyMean(), data, TrainConfig(steps=2, batch_size=4, device="cpu", sample_every=0), tmp_path, quiet=True)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: trained with \{'size': 4.*'size': 8"):
        train(ToyMean(size=8), toy_data(size=8), TrainConfig(steps=3, batch_size=4, device="cpu"), tmp_path, quiet=True)


def test_train_config_validation():
    with pytest.raises(ConfigError, match="exactly one of 'epochs' and 'steps'"):
        TrainConfig()
    with pytest.raises(ConfigError, match="exactly one"):
        TrainConfig(epochs=1, steps=1)
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(epochs=1, batch_size=0)
    with pytest.raises(ConfigError, match=r"did you mean.*batch_size"):
        TrainConfig.from_dict({"epochs": 1, "batchsize": 4})
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(epochs=1, device="tpu")


def test_sample_grid_tiles_images():
    ims = np.stack([np.full((2, 3, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = sample_grid(ims, columns=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 5, 0] == 20 and grid[4, 1, 0] == 30 and grid[4, 5, 0] == 0


def test_cli_trains_from_yaml_with_overrides_and_resumes(tmp_path, capsys):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(
        "method: {name: toy_mean, size: 4}\n"
        "data: {name: synthetic_plates, n: 8, seed: 0}\n"
        "train: {steps: 2, batch_size: 4, seed: 0, device: cpu, checkpoint_every: 1, sample_every: 0}\n"
        f"output: {tmp_path / 'run'}\n"
    )
    job = load_train_config(cfg, ["train.steps=3"])
    assert job.train.steps == 3 and job.method == {"name": "toy_mean", "size": 4}
    assert main(["train", str(cfg), "--quiet"]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    assert main(["train", str(cfg), "--quiet", "--set", "train.steps=4"]) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 4
    assert len(losses(tmp_path / "run")) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: {name: gaussian_blur}\ndata: {name: synthetic_plates, n: 4}\ntrain: {steps: 1}\n")
    assert main(["train", str(bad)]) == 2
    assert "not trainable" in capsys.readouterr().err
    bad.write_text("method: {name: toy_mean}\ndata: {name: synthetic_plates}\ntrain: {steps: 1}\nouptut: x\n")
    assert main(["train", str(bad)]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_arcface_trains_through_the_loop_and_its_checkpoint_embeds(tmp_path):
    from anonaudit.registry import EMBEDDERS
    from anonaudit.training import create_trainable, parse_train_config

    rng = np.random.default_rng(0)
    images, ids = [], []
    for k in range(4):
        base = rng.integers(0, 256, (56, 56, 3)).astype(float)
        for _ in range(4):
            images.append(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))
            ids.append(f"id{k}")
    data = ImageSet.from_arrays(images, identities=ids, name="synthetic-ids")
    job = parse_train_config(load_yaml(Path(__file__).resolve().parents[1] / "configs" / "train" / "arcface-tiny.yaml"))
    params = {k: v for k, v in job.method.items() if k != "name"}
    method = create_trainable("arcface", **{**params, "align": "none", "lr_steps": []})
    train(method, data, TrainConfig(steps=12, batch_size=8, device="cpu", sample_every=0), tmp_path, quiet=True)
    log = list(losses_named(tmp_path, "loss"))
    assert len(log) == 12 and np.mean(log[-2:]) < np.mean(log[:2])
    emb = EMBEDDERS.create("arcface_trained", checkpoint=str(tmp_path / "checkpoint.pt"), detector="none")
    vectors = emb.embed(data)
    assert vectors.shape == (16, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def load_yaml(path: Path):
    import yaml

    return yaml.safe_load(path.read_text())


def losses_named(folder: Path, name: str) -> list[float]:
    with (folder / "log.csv").open() as f:
        return [float(r["value"]) for r in csv.DictReader(f) if r["loss"] == name]
