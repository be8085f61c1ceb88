"""ArcFace: IResNet architecture, the additive angular margin head (hand-computed logits), configs,
and real CPU training through the one training loop (loss falls, identities separate, checkpoints
resume bit-for-bit and load as the ``arcface_trained`` embedder)."""

from __future__ import annotations

import collections
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import anonaudit.models.faces  # noqa: F401  (registers embedders)
from anonaudit.checkpoint import CheckpointError, load_checkpoint
from anonaudit.cli import main
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError, DataError
from anonaudit.models.faces.arcface import IRESNET_LAYERS, build_iresnet
from anonaudit.models.faces.arcface_train import ArcMarginHead
from anonaudit.registry import EMBEDDERS
from anonaudit.training import TrainConfig, create_trainable, load_train_config, train

ROOT = Path(__file__).resolve().parents[1]
LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
CPU_CONFIG = ROOT / "configs" / "arcface-train-cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_method(**changes):
    """The ArcFace trainer of ``configs/arcface-train-cpu.yaml`` with ``changes`` to its parameters."""
    job = load_train_config(CPU_CONFIG)
    params = {k: v for k, v in job.method.items() if k != "name"}
    return create_trainable(job.method["name"], **{**params, **changes})


def run(data: ImageSet, folder: Path, method=None, **loop) -> EMBEDDERS:
    """Train ``method`` (default: the tiny one, faces taken as aligned crops) on ``data`` into
    ``folder``; returns the ``arcface_trained`` embedder of the checkpoint."""
    method = method or tiny_method(align="none")
    config = TrainConfig(**{"batch_size": 32, "device": "cpu", "sample_every": 0, "checkpoint_every": 0, **loop})
    train(method, data, config, folder, quiet=True)
    return EMBEDDERS.create("arcface_trained", checkpoint=str(folder / "checkpoint.pt"), detector=method.align)


def epoch_losses(folder: Path) -> list[float]:
    """The mean training loss of every epoch, from the loop's ``log.csv``."""
    by_epoch: dict[int, list[float]] = collections.defaultdict(list)
    with (folder / "log.csv").open() as f:
        for row in csv.DictReader(f):
            if row["loss"] == "loss":
                by_epoch[int(row["epoch"])].append(float(row["value"]))
    return [float(np.mean(by_epoch[e])) for e in sorted(by_epoch)]


def synthetic_identities(n_ids: int = 6, per_id: int = 6, size: int = 56, seed: int = 0) -> ImageSet:
    """Each identity a fixed random pattern; its images add noise and a small shift."""
    rng = np.random.default_rng(seed)
    images, ids = [], []
    for k in range(n_ids):
        base = rng.integers(0, 256, (size, size, 3)).astype(float)
        for _ in range(per_id):
            shifted = np.roll(base, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
            images.append(np.clip(shifted + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))
            ids.append(f"id{k}")
    return ImageSet.from_arrays(images, identities=ids, name="synthetic")


def similarity_gap(emb: np.ndarray, ids: list) -> tuple[float, float]:
    y = np.asarray(ids)
    sim = emb @ emb.T
    same = (y[:, None] == y[None]) & ~np.eye(len(y), dtype=bool)
    return float(sim[same].mean()), float(sim[y[:, None] != y[None]].mean())


# -- architecture -------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["iresnet50", "iresnet100"])
def test_iresnet_has_insightface_layout(arch):
    sd = build_iresnet(arch).state_dict()
    blocks = {int(k.split(".")[1]) for k in sd if k.startswith("layer3.")}
    assert len(blocks) == IRESNET_LAYERS[arch][2]
    assert sd["fc.weight"].shape == (512, 512 * 7 * 7)  # insightface's fc_scale for 112x112 input
    assert sd["layer1.0.downsample.0.weight"].shape == (64, 64, 1, 1)
    assert {"conv1.weight", "bn1.running_var", "prelu.weight", "bn2.weight", "features.running_mean"} <= set(sd)
    assert "layer1.1.downsample.0.weight" not in sd


def test_iresnet_output_and_flatten_size_follow_the_input_size():
    for size, side in [(112, 7), (56, 4), (64, 4)]:
        model = build_iresnet(layers=[1, 1, 1, 1], widths=[8, 16, 32, 64], input_size=size, num_features=32).eval()
        assert model.fc.in_features == 64 * side * side
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 32)


# -- margin head ---------------------------------------------------------------------------------------
def test_arcface_head_logits_match_hand_computation():
    head = ArcMarginHead(2, 2, scale=64.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))  # class centres along x and y (any norm)
    theta = 0.3
    emb = torch.tensor([[math.cos(theta), math.sin(theta)]]) * 7.0
    logits = head(emb, torch.tensor([0]))[0]
    assert logits[0].item() == pytest.approx(64 * math.cos(theta + 0.5), abs=1e-4)
    assert logits[1].item() == pytest.approx(64 * math.sin(theta), abs=1e-4)
    # theta + m beyond pi: insightface's fallback cos(theta) - m sin(m) keeps the logit monotonic
    theta = 2.9
    emb = torch.tensor([[math.cos(theta), math.sin(theta)]])
    logits = head(emb, torch.tensor([0]))[0]
    assert logits[0].item() == pytest.approx(64 * (math.cos(theta) - 0.5 * math.sin(0.5)), abs=1e-4)


def test_zero_margin_head_is_a_scaled_cosine_softmax():
    head = ArcMarginHead(4, 3, scale=10.0, margin=0.0)
    emb = torch.randn(5, 4)
    labels = torch.tensor([0, 1, 2, 0, 1])
    expected = 10.0 * torch.nn.functional.normalize(emb) @ torch.nn.functional.normalize(head.weight).T
    torch.testing.assert_close(head(emb, labels), expected.detach(), atol=1e-5, rtol=1e-5)


# -- configs ------------------------------------------------------------------------------------------
def test_paper_config_has_the_paper_hyperparameters():
    job = load_train_config(ROOT / "configs" / "train" / "arcface-paper.yaml")
    method = job.create_method()
    assert (method.arch, method.input_size, method.embedding_dim) == ("iresnet50", 112, 512)
    assert (method.scale, method.margin, method.lr, method.momentum, method.weight_decay) == (64.0, 0.5, 0.1, 0.9, 5e-4)
    assert (job.train.batch_size, job.train.steps, method.lr_steps) == (512, 180_000, [100_000, 160_000])


def test_unknown_or_invalid_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unexpected keyword argument 'margn'.*trainable methods: .*arcface"):
        create_trainable("arcface", margn=0.5)
    with pytest.raises(ConfigError, match=r"arcface: margin must be a number in \[0, 1.570796327\), got 2"):
        create_trainable("arcface", margin=2)
    with pytest.raises(ConfigError, match=r"arcface: lr_steps\[0\] must be an integer >= 1, got 0.7"):
        create_trainable("arcface", lr_steps=[0.7])
    with pytest.raises(DataError, match="identity"):
        run(ImageSet.from_arrays([np.zeros((56, 56, 3), np.uint8)] * 2, keys=["a", "b"]), tmp_path, steps=1)


@pytest.mark.shared_data("lfw")
def test_anonaudit_train_with_the_cpu_config_writes_a_checkpoint_that_embeds(tmp_path, capsys):
    out = tmp_path / "run"
    sets = [f"data.root={LFW}", "data.limit=12", "method.align=none", "train.steps=2", "train.batch_size=4",
            f"output={out}"]
    code = main(["train", str(CPU_CONFIG), "-q", *[a for s in sets for a in ("--set", s)]])
    assert code == 0, capsys.readouterr().err
    emb = EMBEDDERS.create("arcface_trained", checkpoint=str(out / "checkpoint.pt"), detector="none")
    vectors = emb.embed(ImageSet.from_arrays([np.full((250, 250, 3), 90, np.uint8)]))
    assert vectors.shape == (1, 128) and emb.input_size == 56
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# -- training ------------------------------------------------------------------------------------------
@pytest.mark.shared_data("lfw")
def test_training_lowers_the_loss_and_separates_lfw_identities(tmp_path):
    from anonaudit.data.face_loaders import load_lfw

    lfw = load_lfw(LFW)
    counts = collections.Counter(lfw.identities)
    ids = set(sorted(k for k, v in counts.items() if v == 4)[:16])
    # deep-funneled LFW faces sit in the centre: the central crop stands in for an aligned face
    train_set = lfw.subset([i for i, p in enumerate(lfw.identities) if p in ids]).map(lambda im, r: im[60:190, 60:190])
    emb = run(train_set, tmp_path, tiny_method(align="none", lr_steps=[14]), epochs=10)
    history = epoch_losses(tmp_path)
    assert len(history) == 10 and history[-1] < 0.75 * history[0]
    vectors = emb.embed(train_set)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same, diff = similarity_gap(vectors, train_set.identities)
    assert same > diff + 0.05


def test_untrained_network_does_not_separate_identities(tmp_path):
    """Control for the test above: with no learning to speak of (lr 1e-12) the gap is absent."""
    data = synthetic_identities()
    emb = run(data, tmp_path / "a", tiny_method(align="none", lr=1e-12, lr_steps=[]), epochs=1)
    trained = run(data, tmp_path / "b", tiny_method(align="none", lr_steps=[]), epochs=6)
    same0, diff0 = similarity_gap(emb.embed(data), data.identities)
    same1, diff1 = similarity_gap(trained.embed(data), data.identities)
    assert same1 - diff1 > (same0 - diff0) + 0.1


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    data = synthetic_identities(n_ids=4, per_id=4)
    straight = run(data, tmp_path / "a", epochs=4, batch_size=8)
    run(data, tmp_path / "b", epochs=2, batch_size=8)
    resumed = run(data, tmp_path / "b", epochs=4, batch_size=8)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 8
    np.testing.assert_allclose(epoch_losses(tmp_path / "b"), epoch_losses(tmp_path / "a"), rtol=1e-5)
    np.testing.assert_allclose(resumed.embed(data), straight.embed(data), atol=1e-5)
    with pytest.raises(CheckpointError, match="embedding_dim"):
        run(data, tmp_path / "b", tiny_method(align="none", embedding_dim=64), epochs=5, batch_size=8)


@pytest.mark.shared_data("lfw")
def test_training_with_mtcnn_alignment_embeds_detected_faces(tmp_path):
    from anonaudit.data.io import read_image

    files = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
             "AJ_Cook/AJ_Cook_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0001.jpg"]
    images = [read_image(LFW / "images" / f) for f in files] + [np.full((250, 250, 3), 70, np.uint8)]
    data = ImageSet.from_arrays(
        images, keys=files + ["blank"], identities=[f.split("/")[0] for f in files] + ["nobody"]
    )
    emb = run(data, tmp_path, tiny_method(align="mtcnn"), epochs=1, batch_size=4)
    info = load_checkpoint(tmp_path / "checkpoint.pt")["state"]["info"]
    assert (info["n_aligned"], info["no_face"]) == (4, 1)  # the blank image has no face to align
    out = emb.embed(data)
    assert np.all(np.isfinite(out[:4])) and np.all(np.isnan(out[4]))
