"""Paper 001: Mondrian (Algorithm 1), DIRECT and MIKU with its mappers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_weights import save_tiny_stylegan

from anonaudit.anonymizers.miku import Direct, Miku
from anonaudit.anonymizers.mondrian import group_index, mondrian_groups, unify_by_mean
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import ConfigError, DataError, ModelUnavailableError
from anonaudit.registry import ANONYMIZERS


# -- Mondrian -------------------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 70), k=st.integers(1, 9), d=st.integers(1, 12),
    n_search=st.one_of(st.none(), st.integers(1, 12)), seed=st.integers(0, 2**31), data_seed=st.integers(0, 1000),
    ties=st.booleans(),
)
def test_mondrian_properties(n, k, d, n_search, seed, data_seed, ties):
    rng = np.random.default_rng(data_seed)
    x = rng.integers(0, 3, (n, d)).astype(float) if ties else rng.normal(size=(n, d))
    if n < k:
        with pytest.raises(DataError, match="at least K"):
            mondrian_groups(x, k, n_search, seed)
        return
    groups = mondrian_groups(x, k, n_search, seed)
    sizes = [len(g) for g in groups]
    assert all(k <= s <= 2 * k - 1 for s in sizes), sizes
    members = np.sort(np.concatenate(groups))
    np.testing.assert_array_equal(members, np.arange(n))  # a partition
    released = unify_by_mean(x, groups)
    # every released vector is shared by >= K rows (two groups may even share one mean)
    index = group_index(groups, n)
    for i in range(n):
        assert np.sum(np.all(released == released[i], axis=1)) >= k
        np.testing.assert_allclose(released[i], x[groups[index[i]]].mean(0))
    again = mondrian_groups(x, k, n_search, seed)
    assert [g.tolist() for g in again] == [g.tolist() for g in groups]  # deterministic under a seed


def test_mondrian_hand_computed_split():
    # dim 0 has the widest range (11 vs 5): sorted by it, the first half is rows {0, 2}, the last {1, 3}
    x = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 5.0], [11.0, 5.0]])
    groups = mondrian_groups(x, 2, None, 0)
    assert sorted(g.tolist() for g in groups) == [[0, 2], [1, 3]]
    np.testing.assert_allclose(unify_by_mean(x, groups), [[0.5, 2.5], [10.5, 2.5], [0.5, 2.5], [10.5, 2.5]])
    # with K=2 and 5 rows the odd row goes to the last half: sizes 2 and 3
    x5 = np.array([[0.0], [4.0], [1.0], [3.0], [2.0]])
    assert sorted(g.tolist() for g in mondrian_groups(x5, 2, None, 0)) == [[0, 2], [1, 3, 4]]


def test_mondrian_searches_only_n_s_dimensions():
    # dimension 1 has by far the widest range; searching one random dimension at a time, some seeds
    # split on dimension 0 instead (random selection, Step 2), searching all never does
    x = np.column_stack([np.arange(8.0), np.array([0, 100, 0, 100, 0, 100, 0, 100.0])])
    full = mondrian_groups(x, 4, None, 0)
    assert sorted(g.tolist() for g in full) == [[0, 2, 4, 6], [1, 3, 5, 7]]
    splits = {tuple(sorted(tuple(g.tolist()) for g in mondrian_groups(x, 4, 1, s))) for s in range(20)}
    assert ((0, 1, 2, 3), (4, 5, 6, 7)) in splits and ((0, 2, 4, 6), (1, 3, 5, 7)) in splits


def test_mondrian_rejects_bad_input():
    with pytest.raises(ConfigError):
        mondrian_groups(np.zeros((4, 2)), 0)
    with pytest.raises(DataError, match="NaN"):
        mondrian_groups(np.array([[np.nan], [1.0]]), 1)
    with pytest.raises(DataError, match="K=3"):
        mondrian_groups(np.zeros((2, 3)), 3)


# -- DIRECT / MIKU releases ----------------------------------------------------------------------------
def faces(n: int = 24, size: int = 32, seed: int = 0, prefix: str = "f") -> ImageSet:
    """Smooth random 'faces' with a bright/dark split so groups are meaningful."""
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        base = cv2.resize(rng.uniform(0, 255, (4, 4, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
        images.append(np.clip(base + (60 if i % 2 else -60), 0, 255).astype(np.uint8))
    return ImageSet.from_arrays(
        images, [f"{prefix}{i:03d}" for i in range(n)], identities=[f"{prefix}{i}" for i in range(n)]
    )


def assert_k_anonymous_in_image_space(images: ImageSet, out: ImageSet, groups: list[list[str]], k: int) -> None:
    assert sorted(key for g in groups for key in g) == sorted(images.keys)
    for g in groups:
        assert k <= len(g) <= 2 * k - 1
        first = out[out.index_of(g[0])]
        for key in g[1:]:
            np.testing.assert_array_equal(out[out.index_of(key)], first)  # identical released image
    hashes = [out.hash(i) for i in range(len(out))]
    assert min(hashes.count(h) for h in hashes) >= k  # each released image is shared by >= K inputs


@pytest.mark.parametrize("k", [2, 3, 5])
def test_direct_releases_each_group_mean_image(k):
    images = faces(23)
    anon = Direct(k=k)
    out = anon.anonymize(images, show_progress=False)
    assert_k_anonymous_in_image_space(images, out, anon.groups_, k)
    for g in anon.groups_:  # DIRECT: the pixel mean of the members, rounded to uint8
        mean = np.mean([images[images.index_of(key)].astype(float) for key in g], axis=0)
        assert np.abs(out[out.index_of(g[0])].astype(float) - mean).max() <= 0.5 + 1e-4
    assert anon.label() == f"direct(k={k})"


def test_direct_refuses_fewer_than_k_images():
    with pytest.raises(DataError, match="at least K"):
        Direct(k=4).anonymize(faces(3), show_progress=False)


def test_miku_pca_is_k_anonymous_and_labelled():
    train, images = faces(40, seed=1, prefix="t"), faces(20, seed=2)
    anon = ANONYMIZERS.create("miku", mapper="pca", k=4, size=16, n_components=8).fit(train)
    out = anon.anonymize(images, show_progress=False)
    assert_k_anonymous_in_image_space(images, out, anon.groups_, 4)
    assert out[0].shape == images[0].shape
    assert anon.label() == "miku(mapper=pca, k=4, size=16, n_components=8)"
    with pytest.raises(ConfigError, match="not fitted"):
        Miku(mapper="pca").anonymize(images, show_progress=False)


def test_miku_autoencoder_trains_through_the_loop_and_reloads(tmp_path: Path, one_torch_thread):
    from anonaudit.training import TrainConfig, train

    data = faces(32, size=16, seed=3, prefix="t")
    method = Miku(mapper="autoencoder", k=2, size=16, latent=16, lr=3e-3, device="cpu")
    ckpt = train(
        method,
        data,
        TrainConfig(epochs=30, batch_size=8, checkpoint_every=0, sample_every=0, n_samples=4),
        tmp_path,
        quiet=True,
    )
    import csv

    rows = [r for r in csv.DictReader((tmp_path / "log.csv").open()) if r["loss"] == "mse"]
    first, last = float(rows[0]["value"]), float(rows[-1]["value"])
    assert last < 0.5 * first  # the autoencoder learned to reconstruct
    images = faces(10, size=16, seed=4)
    loaded = Miku(mapper="autoencoder", k=2, size=16, latent=16, device="cpu", checkpoint=str(ckpt))
    out = loaded.anonymize(images, show_progress=False)  # loads the checkpoint lazily
    assert_k_anonymous_in_image_space(images, out, loaded.groups_, 2)
    again = Miku(mapper="autoencoder", k=2, size=16, latent=16, device="cpu", checkpoint=str(ckpt)).anonymize(
        images, show_progress=False
    )
    assert all(np.array_equal(out[i], again[i]) for i in range(len(out)))
    from anonaudit.training import CheckpointError

    with pytest.raises(CheckpointError, match="latent"):
        Miku(mapper="autoencoder", size=16, latent=32, device="cpu", checkpoint=str(ckpt)).fit()


def test_miku_stylegan_reports_missing_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="anonaudit models add stylegan2-ffhq-wplus"):
        Miku(mapper="stylegan", k=2, device="cpu").anonymize(faces(4), show_progress=False)


def _random_vgg(path: Path) -> None:
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}, path)


def test_miku_stylegan_inverts_and_releases_groups(tmp_path: Path, monkeypatch, one_torch_thread):
    """With (randomly initialised) weights in the cache the W+ mapper runs end to end: inversion lowers
    the loss from the mean latent, and the release is K-anonymous in image space."""
    from anonaudit.models import cache
    from anonaudit.models.stylegan_inversion import StyleGANMapper

    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "cache"))
    save_tiny_stylegan(tmp_path / "g.pt")
    _random_vgg(tmp_path / "vgg.pth")
    cache.add("stylegan2-ffhq-wplus", tmp_path / "g.pt")
    monkeypatch.setitem(cache.MODEL_SPECS, "lpips-vgg", cache.MODEL_SPECS["lpips-vgg"].__class__(
        **{**cache.MODEL_SPECS["lpips-vgg"].__dict__, "sha256": cache.sha256_file(tmp_path / "vgg.pth")}))
    cache.add("lpips-vgg", tmp_path / "vgg.pth")

    mapper = StyleGANMapper(steps=0, device="cpu")
    target = mapper.decode(np.random.default_rng(0).normal(size=(2, 32)) * 2)  # reachable images
    masks = np.ones((2, 16, 16), np.float32)
    start = ((mapper.decode(mapper.invert(target, masks)) - target) ** 2).mean()
    mapper.steps = 60
    end = ((mapper.decode(mapper.invert(target, masks)) - target) ** 2).mean()
    assert end < 0.5 * start

    anon = Miku(mapper="stylegan", k=2, inversion_steps=5, device="cpu")
    images = faces(6, size=40)
    out = anon.anonymize(images, show_progress=False)
    assert_k_anonymous_in_image_space(images, out, anon.groups_, 2)
    assert out[0].shape == (40, 40, 3) and anon.mapper_.unaligned_ == 6  # no dlib face in these images


def test_ffhq_quad_is_an_upright_square_for_a_frontal_face():
    from anonaudit.models.stylegan_inversion import ffhq_quad

    lm = np.zeros((68, 2))
    lm[36:42] = [40, 50]
    lm[42:48] = [60, 50]
    lm[48], lm[54] = [42, 80], [58, 80]
    quad = ffhq_quad(lm)
    side = np.linalg.norm(quad[1] - quad[0])
    np.testing.assert_allclose([np.linalg.norm(quad[i] - quad[(i + 1) % 4]) for i in range(4)], side)
    np.testing.assert_allclose(quad[0, 0], quad[1, 0])  # left edge vertical
    # centre: eye midpoint moved 10% towards the mouth; side: max(2 x eye distance, 1.8 x eye-mouth) x 2
    np.testing.assert_allclose(quad.mean(0), [50, 53])
    np.testing.assert_allclose(side, 2 * max(2 * 20, 1.8 * 30))


@pytest.mark.shared_data("lfw/labels.csv")
def test_direct_and_pca_miku_on_lfw_release_identical_images_per_group():
    """On real faces: each released image is shared by >= K people's photos (image space, not only vectors)."""
    from face_data import lfw_people

    images = lfw_people(12)  # 12 people, all their photos (2 to 4 each)
    aux = lfw_people(10, skip=12)
    for anon in (Direct(k=4), Miku(mapper="pca", k=4, n_components=16).fit(aux)):
        out = anon.anonymize(images, show_progress=False)
        assert_k_anonymous_in_image_space(images, out, anon.groups_, 4)
