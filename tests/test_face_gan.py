"""Paper 002's face GANs: DCGAN and ProGAN architecture, fade-in identities, schedule, real training
on a toy distribution, exact resume, the background kept bit for bit outside the soft ellipse, and
BMP release files that carry no metadata (the metadata attack finds nothing, names included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from anonaudit.anonymizers.face_gan import ellipse_mask, write_release
from anonaudit.anonymizers.gan_networks import ProCritic, ProGenerator
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.errors import ConfigError
from anonaudit.registry import ANONYMIZERS, ATTACKS
from anonaudit.training import CheckpointError, TrainConfig, load_train_config, train

ROOT = Path(__file__).resolve().parents[1]
DCGAN_TINY = dict(image_size=16, latent_dim=16, g_channels=8, d_channels=8, device="cpu", release_format="memory")
PROGAN_TINY = dict(
    image_size=16, latent_dim=16, channels=8, max_channels=16, phase_steps=2, device="cpu", release_format="memory"
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def solid_faces(n: int = 32, colour=(200, 150, 120)) -> ImageSet:
    """A toy distribution: "faces" of one solid skin colour, the box the whole image."""
    rng = np.random.default_rng(0)
    images = [np.clip(np.array(colour) + rng.normal(0, 4, (20, 20, 3)), 0, 255).astype(np.uint8) for _ in range(n)]
    return ImageSet.from_arrays(images, boxes=[[Box(0, 0, 20, 20, "face")]] * n, name="solid-faces")


def portraits(n: int = 3) -> ImageSet:
    """Noise "portraits" with a labelled face box and identity names."""
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (64, 48, 3), dtype=np.uint8) for _ in range(n)]
    return ImageSet.from_arrays(
        images,
        keys=[f"Jane_Doe/Jane_Doe_{i:04d}.jpg" for i in range(n)],
        identities=["Jane_Doe"] * n,
        boxes=[[Box(10, 12, 28, 36, "face")]] * n,
        name="portraits",
    )


# -- architecture -----------------------------------------------------------------------------------------
def test_dcgan_defaults_follow_the_paper_and_dcgan():
    m = ANONYMIZERS.create("face_dcgan")
    assert (m.lr, tuple(m.betas), m.image_size, m.release_format) == (2e-4, (0.5, 0.999), 64, "bmp")
    m.build(torch.device("cpu"))
    d = m.networks_["discriminator"]
    assert any(isinstance(x, nn.BatchNorm2d) for x in d.modules()) and any(
        isinstance(x, nn.LeakyReLU) for x in d.modules()
    )
    assert not any(isinstance(x, (nn.MaxPool2d, nn.AvgPool2d)) for x in d.modules())  # strided convolutions, no pooling
    assert isinstance(list(m.networks_["generator"].net)[-1], nn.Tanh)
    x = m.networks_["generator"](torch.randn(2, 100))
    assert x.shape == (2, 3, 64, 64) and d(x).shape == (2,)
    for name in ("face-dcgan-paper", "face-progan-paper"):
        job = load_train_config(ROOT / "configs" / "train" / f"{name}.yaml")
        assert job.data["name"] == "celeba" and job.train.device == "cuda"
    assert load_train_config(ROOT / "configs" / "train" / "face-progan-paper.yaml").create_method().image_size == 128
    with pytest.raises(ConfigError, match="release_format"):
        ANONYMIZERS.create("face_dcgan", release_format="jpeg")
    with pytest.raises(ConfigError, match=r"^face_dcgan: margin must be a number >= 0, got -0.1$"):
        ANONYMIZERS.create("face_dcgan", margin=-0.1)


def test_progan_schedule():
    m = ANONYMIZERS.create("face_progan", image_size=32, phase_steps=10)
    assert [m.schedule(s) for s in (0, 9, 10, 15, 20, 30, 35, 40, 50, 55, 999)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (2, 0.0), (2, 0.5), (2, 1.0), (3, 0.0), (3, 0.5), (3, 1.0)]


def test_fade_in_starts_from_the_previous_resolution():
    torch.manual_seed(0)
    g, d = ProGenerator(16, 32, 8, 32), ProCritic(32, 8, 32)
    z = torch.randn(3, 16)
    for depth in (1, 2, 3):
        faded = g(z, depth, alpha=0.0)  # the new block has no weight yet: the older output, upsampled
        assert torch.allclose(faded, F.interpolate(g(z, depth - 1, 1.0), scale_factor=2, mode="nearest"), atol=1e-6)
        x = torch.randn(3, 3, 4 * 2**depth, 4 * 2**depth)
        assert torch.allclose(d(x, depth, alpha=0.0), d(F.avg_pool2d(x, 2), depth - 1, 1.0), atol=1e-5)
        assert g(z, depth, 1.0).shape == (3, 3, 4 * 2**depth, 4 * 2**depth)


# -- training -----------------------------------------------------------------------------------------------
def colour_error(method, colour) -> float:
    return float(np.abs(method.sample_images(16).astype(float) - np.array(colour)).mean())


@pytest.mark.parametrize(
    "name, params, steps",
    [
        ("face_dcgan", {**DCGAN_TINY, "lr": 1e-3}, 100),
        pytest.param(
            "face_progan", {**PROGAN_TINY, "phase_steps": 15}, 120, marks=pytest.mark.slow
        ),  # ~45 s: grows to 16x16 first
    ],
)
def test_training_moves_generated_faces_to_the_toy_distribution(tmp_path, name, params, steps):
    data = solid_faces()
    method = ANONYMIZERS.create(name, **params)
    train(method, data, TrainConfig(steps=1, batch_size=16, device="cpu", sample_every=0), tmp_path, quiet=True)
    before = colour_error(method, (200, 150, 120))
    train(method, data, TrainConfig(steps=steps, batch_size=16, device="cpu", sample_every=0), tmp_path, quiet=True)
    after = colour_error(method, (200, 150, 120))
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize("name, params", [("face_dcgan", DCGAN_TINY), ("face_progan", PROGAN_TINY)])
def test_resume_gives_the_same_state_and_next_steps_bitwise(tmp_path, name, params):
    data = solid_faces(16)
    straight = ANONYMIZERS.create(name, **params)
    train(straight, data, TrainConfig(steps=7, batch_size=8, device="cpu", sample_every=0), tmp_path / "a", quiet=True)
    train(
        ANONYMIZERS.create(name, **params),
        data,
        TrainConfig(steps=3, batch_size=8, device="cpu", sample_every=0),
        tmp_path / "b",
        quiet=True,
    )
    resumed = ANONYMIZERS.create(name, **params)  # across ProGAN's phases (2 steps each): depth and alpha resume too
    train(resumed, data, TrainConfig(steps=7, batch_size=8, device="cpu", sample_every=0), tmp_path / "b", quiet=True)
    a, b = straight.state_dict()["networks"], resumed.state_dict()["networks"]
    for net in a:
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    assert (tmp_path / "a" / "log.csv").read_text() == (tmp_path / "b" / "log.csv").read_text()


# -- anonymization ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("face-dcgan")
    method = ANONYMIZERS.create("face_dcgan", **DCGAN_TINY)
    train(method, solid_faces(16), TrainConfig(steps=3, batch_size=8, device="cpu", sample_every=0), folder, quiet=True)
    return method, folder / "checkpoint.pt"


def test_ellipse_mask_is_zero_outside_the_ellipse():
    m = ellipse_mask(36, 28, 0.15)
    assert m[0, 0] == 0 and m[0, -1] == 0 and m[-1, 0] == 0 and m[-1, -1] == 0
    assert m[18, 14] == 1 and 0 < m[18, 1] < 1
    ys, xs = np.mgrid[0:36, 0:28]
    outside = ((ys + 0.5 - 18) / 18) ** 2 + ((xs + 0.5 - 14) / 14) ** 2 >= 1
    assert np.all(m[outside] == 0) and np.all(m[~outside] > 0)


def test_background_outside_the_face_mask_is_bit_identical(trained):
    method, _ = trained
    data = portraits()
    out = method.anonymize(data, show_progress=False)
    box = data.record(0).boxes[0].expand(method.margin).clip(48, 64)
    for i in range(len(data)):
        changed = np.any(out[i] != data[i], axis=2)
        mask = np.zeros((64, 48), np.float32)
        mask[box.slices] = ellipse_mask(box.h, box.w, method.feather)
        assert not changed[mask == 0].any()  # background (and the box corners) untouched, bit for bit
        assert changed[mask == 1].mean() > 0.9
        assert out.record(i).attributes["anonymized_faces"] == 1 and out.record(i).boxes == (box,)
    assert method.missed_ == []


def test_bmp_release_files_carry_no_metadata_and_neutral_names(trained, tmp_path):
    method, _ = trained
    data = portraits()
    method.set_params(release_format="bmp", release_folder=str(tmp_path / "release"))
    try:
        out = method.anonymize(data, show_progress=False)
    finally:
        method.set_params(release_format="memory", release_folder=None)
    files = sorted((tmp_path / "release").iterdir())
    assert len(files) == 3 and all(f.suffix == ".bmp" for f in files)
    for f in files:
        raw = f.read_bytes()
        assert raw[:2] == b"BM" and len(raw) == 54 + 64 * ((48 * 3 + 3) // 4 * 4)  # header + pixel rows, nothing else
        assert "Jane" not in f.name and "Doe" not in f.name
        with Image.open(f) as im:
            assert (
                im.format == "BMP"
                and not im.getexif()
                and not ({"exif", "icc_profile", "xmp", "comment"} & set(im.info))
            )
    assert [out.record(i).path.parent for i in range(3)] == [tmp_path / "release"] * 3
    memory = method.anonymize(data, show_progress=False)
    assert all(np.array_equal(out[i], memory[i]) for i in range(3))  # BMP is lossless
    result = ATTACKS.create("metadata").run(Release(data, out))
    for metric in ("files_with_leak", "files_named_after_identity", "files_with_trailing_data"):
        m = result.metric(metric)
        assert m.release.n == 3 and m.release.value == 0.0, metric
    leaky = write_release(data, tmp_path / "named")  # the same writer keeps names neutral for any set
    assert not any("Jane" in p.name for p in (tmp_path / "named").iterdir()) and len(leaky) == 3


def test_checkpoint_loads_as_a_target_and_missing_is_a_clear_error(trained):
    method, path = trained
    data = portraits(2)
    target = ANONYMIZERS.create("face_dcgan", **DCGAN_TINY, checkpoint=str(path))
    got, expected = target.anonymize(data, show_progress=False), method.anonymize(data, show_progress=False)
    assert all(np.array_equal(got[i], expected[i]) for i in range(2))
    with pytest.raises(CheckpointError, match=r"nothing\.pt: checkpoint not found"):
        ANONYMIZERS.create("face_dcgan", **DCGAN_TINY, checkpoint=str(path.parent / "nothing.pt")).anonymize(data)
    with pytest.raises(CheckpointError, match="checkpoint of method 'face_dcgan', cannot load into 'face_progan'"):
        ANONYMIZERS.create("face_progan", **PROGAN_TINY, checkpoint=str(path)).anonymize(data)


@pytest.mark.shared_data("lfw")
def test_faces_are_found_by_the_detector_when_records_have_no_boxes(trained):
    from shared_data import SHARED_DATA

    from anonaudit.datasets import load_lfw

    method, _ = trained
    lfw = load_lfw(SHARED_DATA / "lfw", limit=2)
    out = method.anonymize(lfw, show_progress=False)
    for i in range(2):
        (box,) = out.record(i).boxes
        assert 60 < box.x + box.w / 2 < 190 and 60 < box.y + box.h / 2 < 190  # LFW's face sits in the centre
        changed = np.any(out[i] != lfw[i], axis=2)
        assert changed[box.slices].any() and not changed[:, : box.x].any() and not changed[: box.y].any()
