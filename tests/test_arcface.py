"""ArcFace: IResNet architecture, the additive angular margin head (hand-computed logits), configs,
and real CPU training (loss falls, identities separate, checkpoints resume bit-for-bit)."""

from __future__ import annotations

import collections
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import anonaudit.models.faces  # noqa: F401  (registers embedders)
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError, DataError
from anonaudit.models.faces.arcface import IRESNET_LAYERS, build_iresnet
from anonaudit.models.faces.arcface_train import (
    ArcFaceTrainConfig,
    ArcMarginHead,
    train_arcface,
)
from anonaudit.registry import EMBEDDERS

ROOT = Path(__file__).resolve().parents[1]
LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(tmp_path: Path, **changes) -> ArcFaceTrainConfig:
    cfg = ArcFaceTrainConfig.from_yaml(ROOT / "configs" / "arcface-train-cpu.yaml")
    return dataclasses.replace(cfg, checkpoint_dir=str(tmp_path / "ckpt"), **changes)


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


# -- configs -------------------------------------------------------------------------------------------
def test_gpu_config_has_the_paper_hyperparameters():
    cfg = ArcFaceTrainConfig.from_yaml(ROOT / "configs" / "arcface-train-gpu.yaml")
    assert (cfg.arch, cfg.input_size, cfg.embedding_dim) == ("iresnet50", 112, 512)
    assert (cfg.scale, cfg.margin, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size) == (
        64.0,
        0.5,
        0.1,
        0.9,
        5e-4,
        512,
    )
    assert cfg.lr_milestones == pytest.approx([100 / 180, 160 / 180], abs=1e-3)


def test_unknown_or_invalid_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean.*margin"):
        ArcFaceTrainConfig.from_dict({"margn": 0.5})
    with pytest.raises(ConfigError, match="lr_milestones"):
        ArcFaceTrainConfig.from_dict({"lr_milestones": [100]})
    with pytest.raises(DataError, match="identity"):
        train_arcface(
            ImageSet.from_arrays([np.zeros((56, 56, 3), np.uint8)] * 2, keys=["a", "b"]),
            tiny_config(tmp_path, align="none"),
        )


# -- training ------------------------------------------------------------------------------------------
@pytest.mark.shared_data("lfw")
def test_training_lowers_the_loss_and_separates_lfw_identities(tmp_path):
    from anonaudit.data.face_loaders import load_lfw

    lfw = load_lfw(LFW)
    counts = collections.Counter(lfw.identities)
    ids = set(sorted(k for k, v in counts.items() if v == 4)[:16])
    # deep-funneled LFW faces sit in the centre: the central crop stands in for an aligned face
    train = lfw.subset([i for i, p in enumerate(lfw.identities) if p in ids]).map(lambda im, r: im[60:190, 60:190])
    emb = train_arcface(train, tiny_config(tmp_path, align="none"))
    assert emb.name == "arcface_trained"
    assert len(emb.history) == 10 and emb.history[-1] < 0.75 * emb.history[0]
    before = EMBEDDERS.create("arcface_trained", checkpoint=str(tmp_path / "ckpt" / "last.pt"), detector="none")
    vectors = before.embed(train)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same, diff = similarity_gap(vectors, train.identities)
    assert same > diff + 0.05


def test_untrained_network_does_not_separate_identities(tmp_path):
    """Control for the test above: with zero epochs' worth of learning (lr 0) the gap is absent."""
    data = synthetic_identities()
    emb = train_arcface(data, tiny_config(tmp_path, align="none", epochs=1, lr=1e-12))
    trained = train_arcface(data, tiny_config(tmp_path / "b", align="none", epochs=6))
    same0, diff0 = similarity_gap(emb.embed(data), data.identities)
    same1, diff1 = similarity_gap(trained.embed(data), data.identities)
    assert same1 - diff1 > (same0 - diff0) + 0.1


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    data = synthetic_identities(n_ids=4, per_id=4)
    straight = train_arcface(data, tiny_config(tmp_path / "a", align="none", epochs=4, lr_milestones=[]))
    train_arcface(data, tiny_config(tmp_path / "b", align="none", epochs=2, lr_milestones=[]))
    resumed = train_arcface(data, tiny_config(tmp_path / "b", align="none", epochs=4, lr_milestones=[]))
    assert len(resumed.history) == 4
    np.testing.assert_allclose(resumed.history, straight.history, rtol=1e-5)
    np.testing.assert_allclose(resumed.embed(data), straight.embed(data), atol=1e-5)
    with pytest.raises(ConfigError, match="config changed"):
        train_arcface(data, tiny_config(tmp_path / "b", align="none", epochs=5, lr_milestones=[], embedding_dim=64))


@pytest.mark.shared_data("lfw")
def test_training_with_mtcnn_alignment_embeds_detected_faces(tmp_path):
    from anonaudit.data.io import read_image

    files = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
             "AJ_Cook/AJ_Cook_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0001.jpg"]
    images = [read_image(LFW / "images" / f) for f in files] + [np.full((250, 250, 3), 70, np.uint8)]
    data = ImageSet.from_arrays(
        images, keys=files + ["blank"], identities=[f.split("/")[0] for f in files] + ["nobody"]
    )
    emb = train_arcface(data, tiny_config(tmp_path, epochs=1, batch_size=4))
    import torch as _torch

    info = _torch.load(tmp_path / "ckpt" / "model.pt", weights_only=True)["info"]
    assert (info["n_aligned"], info["no_face"]) == (4, 1)  # the blank image has no face to align
    out = emb.embed(data)
    assert np.all(np.isfinite(out[:4])) and np.all(np.isnan(out[4]))
