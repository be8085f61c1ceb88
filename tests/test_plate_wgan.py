"""Paper 000's WGAN-GP plate anonymizer: architecture, the gradient penalty against hand computation,
real training on a toy distribution, exact resume, checkpoints as audit targets, and the
anonymization contract (only plate boxes change; several fakes per plate, the released one by seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from anonaudit.anonymizers.gan_networks import ConvCritic, ConvGenerator, gradient_penalty
from anonaudit.anonymizers.plates_wgan import feather_mask
from anonaudit.cli import main
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.errors import ConfigError
from anonaudit.registry import ANONYMIZERS
from anonaudit.training import CheckpointError, TrainConfig, load_checkpoint, load_train_config, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=16, latent_dim=16, g_channels=8, d_channels=8, device="cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def solid_plates(n: int = 32, colour=(220, 200, 40), size=(24, 48)) -> ImageSet:
    """A toy distribution: every plate the same solid colour with slight noise."""
    rng = np.random.default_rng(0)
    images = [np.clip(np.array(colour) + rng.normal(0, 4, size + (3,)), 0, 255).astype(np.uint8) for _ in range(n)]
    return ImageSet.from_arrays(images, name="solid")


# -- architecture ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 32, 256])
def test_generator_and_critic_shapes(size):
    g, d = ConvGenerator(100, size, 8, 64), ConvCritic(size, 8, 64, norm="instance")
    x = g(torch.randn(2, 100))
    assert x.shape == (2, 3, size, size) and x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (2,)


def test_architecture_follows_the_paper():
    g, d = ConvGenerator(100, 256, 64), ConvCritic(256, 64, norm="instance")
    gl, dl = list(g.net), list(d.net)
    ups = [m for m in gl if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 7  # 1 -> 4, then 4 -> 8 -> ... -> 256: six doublings
    assert all(
        isinstance(gl[gl.index(u) + 1], nn.BatchNorm2d) and isinstance(gl[gl.index(u) + 2], nn.ReLU) for u in ups[:-1]
    )
    assert isinstance(gl[-1], nn.Tanh)
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in dl) == 5 and not any(isinstance(m, nn.BatchNorm2d) for m in dl)
    assert all(m.negative_slope == 0.2 for m in dl if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, nn.Sigmoid) for m in dl)
    convs = [m for m in dl if isinstance(m, nn.Conv2d)]
    assert all(c.stride == (2, 2) for c in convs[:-1])
    w = [m.weight.detach() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert abs(float(torch.cat([p.flatten() for p in w]).std()) - 0.02) < 0.002  # N(0, 0.02) initialisation


def test_critic_steps_and_fakes_per_plate_are_declared_ranges():
    with pytest.raises(ConfigError, match=r"^plate_wgan: n_critic must be an integer >= 1, got 0$"):
        ANONYMIZERS.create("plate_wgan", n_critic=0)
    with pytest.raises(ConfigError, match=r"^plate_wgan: fakes_per_plate must be an integer >= 1, got 0$"):
        ANONYMIZERS.create("plate_wgan", fakes_per_plate=0)


def test_defaults_and_paper_config_are_the_papers():
    m = ANONYMIZERS.create("plate_wgan")
    assert (m.image_size, m.n_critic, m.gp_weight, m.lr, tuple(m.betas)) == (256, 5, 10.0, 1e-4, (0.0, 0.9))
    job = load_train_config(ROOT / "configs" / "train" / "plate-wgan-paper.yaml")
    assert job.train.epochs == 150 and job.data["name"] == "pascal_voc"
    method = job.create_method()
    assert (method.image_size, method.n_critic, method.gp_weight, method.lr, tuple(method.betas)) == (
        256,
        5,
        10.0,
        1e-4,
        (0.0, 0.9),
    )


# -- gradient penalty -----------------------------------------------------------------------------------
class Linear(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(1)


def test_gradient_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared():
    w = torch.zeros(3, 2, 2)
    w[0, 0, 0], w[1, 1, 1] = 3.0, 4.0  # |w| = 5: gradient w everywhere, so GP = 10 * (5 - 1)^2 = 160
    real, fake = torch.randn(6, 3, 2, 2), torch.randn(6, 3, 2, 2)
    assert float(gradient_penalty(Linear(w), real, fake, 10.0).detach()) == pytest.approx(160.0, rel=1e-6)
    w1 = torch.zeros(3, 2, 2)
    w1[2, 0, 1] = 1.0  # unit norm: no penalty
    assert float(gradient_penalty(Linear(w1), real, fake, 10.0).detach()) == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_at_the_interpolated_points():
    class HalfSquare(nn.Module):  # f(x) = |x|^2 / 2, gradient x_hat
        def forward(self, x):
            return 0.5 * (x.flatten(1) ** 2).sum(1)

    real = torch.tensor([[3.0, 0.0], [0.0, 2.0]]).reshape(2, 2, 1, 1)
    fake = torch.zeros(2, 2, 1, 1)
    alpha = torch.tensor([0.5, 1.0]).reshape(2, 1, 1, 1)
    # x_hat = (1.5, 0) and (0, 2): norms 1.5 and 2 -> lambda * mean(0.25, 1) = 10 * 0.625
    assert float(gradient_penalty(HalfSquare(), real, fake, 10.0, alpha=alpha).detach()) == pytest.approx(6.25)


def test_gradient_penalty_trains_the_critic():
    d = ConvCritic(16, 4, 16)
    gp = gradient_penalty(d, torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16))
    gp.backward()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert all(
        c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in convs
    )  # biases do not move a gradient


# -- training -------------------------------------------------------------------------------------------
def distance_to_colour(method, colour) -> float:
    samples = method.sample_images(16).astype(float)
    return float(np.abs(samples - np.array(colour)).mean())


def test_training_moves_generated_plates_to_the_toy_distribution(tmp_path):
    data = solid_plates()
    method = ANONYMIZERS.create("plate_wgan", **TINY, lr=1e-3, n_critic=2)
    train(method, data, TrainConfig(steps=1, batch_size=16, device="cpu", sample_every=0), tmp_path / "a", quiet=True)
    before = distance_to_colour(method, (220, 200, 40))
    train(method, data, TrainConfig(steps=120, batch_size=16, device="cpu", sample_every=0), tmp_path / "a", quiet=True)
    after = distance_to_colour(method, (220, 200, 40))
    assert after < 0.5 * before, (before, after)


def test_resume_gives_the_same_state_and_next_steps_bitwise(tmp_path):
    data = solid_plates(16)
    config = TrainConfig(steps=7, batch_size=8, device="cpu", checkpoint_every=1, sample_every=0)
    straight = ANONYMIZERS.create("plate_wgan", **TINY, n_critic=2)
    train(straight, data, config, tmp_path / "a", quiet=True)
    part = ANONYMIZERS.create("plate_wgan", **TINY, n_critic=2)
    train(
        part,
        data,
        TrainConfig(steps=3, batch_size=8, device="cpu", checkpoint_every=1, sample_every=0),
        tmp_path / "b",
        quiet=True,
    )
    resumed = ANONYMIZERS.create("plate_wgan", **TINY, n_critic=2)
    train(resumed, data, config, tmp_path / "b", quiet=True)
    a, b = straight.state_dict(), resumed.state_dict()
    for net in ("generator", "critic"):
        for k, v in a["networks"][net].items():
            assert torch.equal(v, b["networks"][net][k]), (net, k)
    assert (tmp_path / "a" / "log.csv").read_text() == (tmp_path / "b" / "log.csv").read_text()


# -- anonymization --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plate-wgan")
    method = ANONYMIZERS.create("plate_wgan", **TINY, fakes_per_plate=4)
    train(
        method, solid_plates(16), TrainConfig(steps=4, batch_size=8, device="cpu", sample_every=0), folder, quiet=True
    )
    return method, folder / "checkpoint.pt"


def scenes(n: int = 3) -> ImageSet:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (60, 90, 3), dtype=np.uint8) for _ in range(n)]
    boxes = [[Box(10, 20, 40, 12, "plate"), Box(60, 40, 25, 10, "plate")]] * n
    return ImageSet.from_arrays(images, keys=[f"car{i}" for i in range(n)], boxes=boxes, name="scenes")


def test_only_the_plate_boxes_change_and_candidates_are_kept(trained):
    method, _ = trained
    data = scenes()
    out = method.anonymize(data, show_progress=False)
    for i in range(len(data)):
        outside = np.ones((60, 90), bool)
        for b in data.record(i).boxes:
            outside[b.slices] = False
            assert (out[i][b.slices] != data[i][b.slices]).mean() > 0.5
        assert np.array_equal(out[i][outside], data[i][outside])  # bit-identical outside the plates
        cands, chosen = method.candidates_[f"car{i}"], method.released_[f"car{i}"]
        assert [c.shape for c in cands] == [(4, 12, 40, 3), (4, 10, 25, 3)]
        inner = out[i][22:30, 12:48]  # away from the feathered border: exactly the released candidate
        assert np.array_equal(inner, cands[0][chosen[0]][2:10, 2:38])
    again = method.anonymize(data, show_progress=False)
    assert all(np.array_equal(out[i], again[i]) for i in range(len(data)))
    picks = set()
    for seed in range(8):
        method.set_params(seed=seed)
        method.anonymize(data.subset([0]), show_progress=False)
        picks.add(method.released_["car0"][0])
    method.set_params(seed=0)
    assert len(picks) > 1  # the released candidate depends on the seed


def test_a_crop_without_boxes_is_replaced_whole(trained):
    method, _ = trained
    crop = solid_plates(1)
    out = method.anonymize(crop, show_progress=False)
    assert out[0].shape == crop[0].shape and (out[0] != crop[0]).mean() > 0.5


def test_feather_mask():
    m = feather_mask(10, 20, 0.2)  # ramp over 2 px: 1/3, 2/3, then 1
    assert m[5, 10] == 1 and m[0, 10] == pytest.approx(1 / 3) and m[1, 10] == pytest.approx(2 / 3) and m.min() > 0
    assert feather_mask(4, 4, 0.0).min() == 1


def test_checkpoint_loads_lazily_as_an_audit_target(trained):
    method, path = trained
    data = scenes(2)
    target = ANONYMIZERS.create("plate_wgan", **TINY, fakes_per_plate=4, checkpoint=str(path))
    expected = method.anonymize(data, show_progress=False)
    got = target.anonymize(data, show_progress=False)
    assert all(np.array_equal(expected[i], got[i]) for i in range(len(data)))
    assert target.training_keys_ == solid_plates(16).keys
    wrong = ANONYMIZERS.create("plate_wgan", **{**TINY, "image_size": 32}, checkpoint=str(path))
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: trained with \{'image_size': 16\}"):
        wrong.anonymize(data, show_progress=False)
    with pytest.raises(CheckpointError, match=r"missing\.pt: checkpoint not found"):
        ANONYMIZERS.create("plate_wgan", **TINY, checkpoint=str(path.parent / "missing.pt")).fit()


def test_fit_without_checkpoint_trains_tiny_through_the_loop():
    method = ANONYMIZERS.create("plate_wgan", **TINY)
    method.tiny_train = {"steps": 2, "batch_size": 8}
    method.fit(solid_plates(8))
    assert method.training_keys_ == solid_plates(8).keys
    assert method.anonymize(solid_plates(1), show_progress=False)[0].shape == (24, 48, 3)


def test_tiny_config_trains_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(ROOT / "configs" / "train" / "plate-wgan-tiny.yaml"), "--quiet", "--output", str(out),
                 "--set", "train.epochs=1", "--set", "data.n=16"]) == 0
    payload = load_checkpoint(out / "checkpoint.pt")
    assert payload["method"] == "plate_wgan" and payload["step"] == 1 and len(payload["data_keys"]) == 16
    assert (out / "manifest.json").is_file() and list((out / "samples").glob("step_*.png"))


# -- memorisation check -----------------------------------------------------------------------------------
def memorization_release(copy: bool):
    from anonaudit.datasets import synthetic_plates

    plates = synthetic_plates(n=24, seed=3)
    training, evaluation = plates.subset(range(12)), plates.subset(range(12, 24))
    if copy:  # a planted leak: the "generator" releases its training plates, resized into place
        import cv2

        fakes = [cv2.resize(training[i], evaluation[i].shape[1::-1], interpolation=cv2.INTER_AREA) for i in range(12)]
    else:
        fakes = [np.full_like(evaluation[i], 128) for i in range(12)]
    release = Release(evaluation, evaluation.with_images(fakes))
    release.training_keys = training.keys  # what the audit sets for a trained target
    return release, training


def test_memorization_finds_planted_copies_of_training_plates():
    from anonaudit.registry import ATTACKS

    release, training = memorization_release(copy=True)
    result = ATTACKS.create("plate_memorization").fit(training).run(release)
    near, ocr = result.metric("near_copy_of_training_plate"), result.metric("ocr_matches_training_plate")
    assert near.release.value == 1.0 and near.original.value == 1.0 and near.release.n == 12
    assert ocr.release.value >= 0.75 and ocr.baseline == 0.0  # unseen real plates never read as a training plate
    assert list(result.details["nearest_training_key"]) == training.keys


def test_memorization_of_a_release_with_no_copies_is_at_baseline():
    from anonaudit.registry import ATTACKS

    release, training = memorization_release(copy=False)
    result = ATTACKS.create("plate_memorization").fit(training).run(release)
    assert result.metric("near_copy_of_training_plate").release.value == 0.0
    assert result.metric("ocr_matches_training_plate").release.value == 0.0


def test_memorization_needs_the_training_keys():
    from anonaudit.errors import DataError
    from anonaudit.registry import ATTACKS

    release, training = memorization_release(copy=False)
    release.training_keys = None
    with pytest.raises(DataError, match="needs a trained target"):
        ATTACKS.create("plate_memorization").fit(training).run(release)


def test_plate_boxes_merge_text_on_one_line_and_keep_plate_shapes():
    from anonaudit.models.ocr.rapid import TextRegion, plate_boxes

    regions = [TextRegion(10, 20, 30, 10, 0.9), TextRegion(45, 21, 30, 10, 0.9),  # one line: 10..75 x 20..31
               TextRegion(200, 100, 8, 30, 0.9)]                                 # tall, narrow: not a plate
    (box,) = plate_boxes(regions, margin=0.0)
    assert (box.x, box.y, box.w, box.h) == (10, 20, 65, 11)
    assert plate_boxes([], margin=0.0) == []


def test_a_scene_without_boxes_has_its_plate_found_by_the_text_detector(trained):
    from anonaudit.datasets import synthetic_plates

    method, _ = trained
    plate = synthetic_plates(n=1, seed=3)
    crop = plate[0]
    scene = np.full((crop.shape[0] + 120, crop.shape[1] + 200, 3), 90, np.uint8)
    scene[60:60 + crop.shape[0], 100:100 + crop.shape[1]] = crop
    data = ImageSet.from_arrays([scene], keys=["street"], name="no-boxes")
    detected = method.set_params(plate_boxes="detect").anonymize(data, show_progress=False)[0]
    whole = method.set_params(plate_boxes="whole").anonymize(data, show_progress=False)[0]
    region = np.s_[60:60 + crop.shape[0], 100:100 + crop.shape[1]]
    assert (detected[region] != scene[region]).any(axis=2).mean() > 0.3  # the plate's text was replaced
    assert np.array_equal(detected[:40, :80], scene[:40, :80])          # far from the plate: untouched
    assert not np.array_equal(whole[:40, :80], scene[:40, :80])          # "whole" replaces the whole image
    with pytest.raises(ValueError, match="plate_boxes must be"):
        method.set_params(plate_boxes="guess")
