"""FID Inception-v3: loading through the verified model cache with a randomly initialised network of
the real architecture saved to a file, agreement with pytorch-fid's network, refusals, and the
FID / KID / IS evaluators end to end on those weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from anonaudit.data.imageset import ImageSet, Release
from anonaudit.errors import ModelUnavailableError, WeightIntegrityError
from anonaudit.evaluators import functional as F
from anonaudit.evaluators.distribution import FID, KID, InceptionScore, inception_outputs
from anonaudit.models import inception
from anonaudit.models.cache import model_path
from anonaudit.registry import EVALUATORS

FILENAME = "pt_inception-2015-12-05-6726825d.pth"


def _install(cache: Path, source: Path, record: bool = True) -> Path:
    dest = cache / "models" / "inception-fid" / FILENAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    if record:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        (cache / "models" / "verified.json").write_text(json.dumps({"inception-fid": digest}))
    return dest


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = inception.build_fid_inception()
    with torch.no_grad():  # spread the BN statistics so features differ clearly between images
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.05)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / FILENAME
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory, weights_file) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    _install(cache, weights_file)
    return cache


@pytest.fixture
def cache(module_cache, monkeypatch) -> Path:
    monkeypatch.setenv("ANONAUDIT_CACHE", str(module_cache))
    return module_cache


def _images(n: int, seed: int, size=(48, 64)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(n)]


def _release(a, b) -> Release:
    keys = [f"k{i}" for i in range(len(a))]
    return Release(ImageSet.from_arrays(a, keys), ImageSet.from_arrays(b, keys), name="t")


def test_loaded_network_matches_pytorch_fid(cache, weights_file, monkeypatch):
    pfi = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid not installed (reference only)")
    model, digest = inception.load_fid_inception("cpu")
    assert digest == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: state)  # the reference's own download hook
    ref = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    x = torch.rand(3, 3, 70, 90)
    with torch.no_grad():
        expected = ref(x)[0].flatten(1)
        pool3, logits = model(x)
    assert pool3.shape == (3, 2048) and logits.shape == (3, 1008)
    torch.testing.assert_close(pool3, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, pool3 @ state["fc.weight"].T)
    assert pool3.std(0).mean() > 0  # features are not degenerate across images


def test_preprocessing_is_pytorch_fid_resize_and_scale(cache):
    img = _images(1, 3, size=(37, 53))[0]
    t = inception.images_to_tensor([img])
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255,
        size=(299, 299),
        mode="bilinear",
        align_corners=False,
    )
    assert t.shape == (1, 3, 299, 299) and float(t.min()) >= 0 and float(t.max()) <= 1
    torch.testing.assert_close(t, expected)


def test_absent_weights_name_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    release = _release(_images(3, 0), _images(3, 1))
    for name in ("fid", "kid", "inception_score"):
        with pytest.raises(ModelUnavailableError, match="anonaudit models fetch inception-fid"):
            EVALUATORS.create(name)(release)


def test_corrupted_or_unregistered_copy_is_refused(tmp_path, monkeypatch, weights_file):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    dest = _install(tmp_path, weights_file)
    data = bytearray(dest.read_bytes())
    data[1000] ^= 0x01
    dest.write_bytes(bytes(data))
    with pytest.raises(WeightIntegrityError, match="refusing to load"):
        inception.load_fid_inception()
    with pytest.raises(WeightIntegrityError):
        FID()(_release(_images(3, 0), _images(3, 1)))
    # A file whose hash was never recorded must start with the published prefix 6726825d
    other = tmp_path / "other"
    _install(other, weights_file, record=False)
    monkeypatch.setenv("ANONAUDIT_CACHE", str(other))
    with pytest.raises(WeightIntegrityError, match="6726825d"):
        inception.load_fid_inception()
    assert model_path("inception-fid").is_file()


def test_fid_kid_is_evaluators_end_to_end(cache):
    a = _images(8, 10)
    dimmed = [(im.astype(np.uint16) // 2 + 60).astype(np.uint8) for im in a]
    same = _release(a, [im.copy() for im in a])
    changed = _release(a, dimmed)
    feats = inception_outputs(ImageSet.from_arrays(a))[:, :2048]
    feats_c = inception_outputs(ImageSet.from_arrays(dimmed))[:, :2048]

    fid_same = FID(n_bootstrap=5)(same, batch_size=3)[0].release
    assert fid_same.value == pytest.approx(0.0, abs=1e-6 * float(np.var(feats, 0).sum()) + 1e-12)
    fid = FID(n_bootstrap=8)
    measured = {m.metric: m for m in fid(changed, batch_size=3)}
    assert list(measured) == ["fid", "kid"] and not measured["fid"].higher_is_better
    est, fid_kid = measured["fid"].release, measured["kid"].release
    assert est.standard and est.n == 8
    assert est.value == pytest.approx(F.fid_from_features(feats, feats_c), rel=1e-6) and est.value > 0
    assert est.extra["bootstrap_resamples"] == 8 and np.isfinite(est.ci_low) and "biased" in est.extra["note"]
    assert fid_kid.value == pytest.approx(F.kid_from_features(feats, feats_c, subsets=100, subset_size=8)[0], rel=1e-9)
    assert fid_kid.ci_low <= fid_kid.ci_high and fid_kid.n == 8

    km = KID(subsets=20, subset_size=5, n_bootstrap=50)(changed)
    k = km.release
    assert km.metric == "kid" and k.n == 8 and k.extra["subset_size"] == 5 and k.ci_low <= k.ci_high
    assert k.value == pytest.approx(F.kid_from_features(feats, feats_c, subsets=20, subset_size=5, seed=0)[0], rel=1e-9)

    sm = InceptionScore(splits=2)(changed)
    score = sm.release
    logits = inception_outputs(ImageSet.from_arrays(dimmed))[:, 2048:]
    assert score.value == pytest.approx(F.inception_score_from_logits(logits, 2)[0], rel=1e-9)
    assert (
        score.value >= 1.0 - 1e-9 and score.n == 8 and score.ci_low <= score.value <= score.ci_high
    )  # IS >= 1 (rounding aside)
    original_logits = inception_outputs(ImageSet.from_arrays(a))[:, 2048:]
    assert sm.original.value == pytest.approx(F.inception_score_from_logits(original_logits, 2)[0], rel=1e-9)
    assert sm.metric == "inception_score" and sm.original.n == 8


def test_features_are_computed_once_per_image(cache):
    model, _ = inception.load_fid_inception("cpu")
    seen = []
    handle = model.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    try:
        imgs = _images(3, 20)
        release = _release(imgs, [im[::-1].copy() for im in imgs])
        FID(n_bootstrap=0)(release)
        first = sum(seen)
        KID(subsets=2, subset_size=3, n_bootstrap=0)(release)
        InceptionScore(splits=1)(release)
    finally:
        handle.remove()
    assert first == 6 and sum(seen) == 6


@pytest.mark.slow
def test_fid_equals_torchmetrics_with_the_same_network(cache):
    """torchmetrics' FrechetInceptionDistance given our network as its custom feature extractor."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    model, _ = inception.load_fid_inception("cpu")

    class Pool3(torch.nn.Module):
        num_features = 2048

        def forward(self, x):
            return model(x)[0]

    a, b = _images(4, 30), _images(4, 31)
    tm = FrechetInceptionDistance(feature=Pool3())
    tm.update(inception.images_to_tensor(a), real=True)
    tm.update(inception.images_to_tensor(b), real=False)
    assert FID(n_bootstrap=0)(_release(a, b))[0].release.value == pytest.approx(float(tm.compute()), rel=1e-4)
