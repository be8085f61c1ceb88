"""Non-standard Frechet distances (FD-<features>): naming and standard=False, the streaming and
reservoir paths against a one-shot computation, embedder registry wiring, bootstrap CIs."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from anonaudit.data.imageset import ImageSet, Release
from anonaudit.data.io import read_image
from anonaudit.errors import ConfigError, DataError
from anonaudit.evaluators import functional as F
from anonaudit.evaluators.distribution import FrechetDistance, kid_with_ci, pixels16
from anonaudit.models.faces.base import FaceEmbedder
from anonaudit.registry import EMBEDDERS, EVALUATORS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
        out.append(cv2.resize(base, (48 + 4 * (i % 3), 32), interpolation=cv2.INTER_CUBIC))
    return out


def _release(a, b) -> Release:
    keys = [f"k{i:03d}" for i in range(len(a))]
    return Release(ImageSet.from_arrays(a, keys), ImageSet.from_arrays(b, keys), name="t")


def colour_stats(images: list[np.ndarray]) -> np.ndarray:
    """6-d test features: per-channel mean and std."""
    return np.stack([np.concatenate([im.reshape(-1, 3).mean(0), im.reshape(-1, 3).std(0)]) for im in images])


def test_fd_pixels16_is_named_and_flagged_non_standard():
    imgs = _images(10)
    m = FrechetDistance()(_release(imgs, [cv2.GaussianBlur(im, (0, 0), 2) for im in imgs]))
    est = m.release
    assert m.metric == "FD-pixels16" and est.standard is False and m.higher_is_better is False
    assert "not FID" in est.reason and "16x16" in est.method and est.n == 10
    same = FrechetDistance()(_release(imgs, [im.copy() for im in imgs])).release
    assert same.value == pytest.approx(0.0, abs=1e-9)
    assert EVALUATORS.create("frechet_distance").get_params()["embedder"] == "pixels16"


def test_pixels16_features():
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, 32:] = 255  # right half white
    f = pixels16([img])[0].reshape(16, 16, 3)
    assert f.shape == (16, 16, 3) and np.all(f[:, :8] == 0) and np.all(f[:, 8:] == 1.0)


@pytest.mark.parametrize("n,max_pairs", [(12, 2000), (40, 2000), (40, 7)])
def test_evaluator_equals_one_shot_computation(n, max_pairs):
    a = _images(n, 1)
    b = [np.clip(im.astype(int) * 0.8 + 20, 0, 255).astype(np.uint8) for im in a]
    fa, fb = colour_stats(a), colour_stats(b)
    ev = FrechetDistance(embedder=colour_stats, max_pairs=max_pairs, n_bootstrap=30)
    m = ev(_release(a, b), batch_size=5)  # n=12 > d=6: covariance path; reservoir < n: streamed stats path
    est = m.release
    assert est.value == pytest.approx(F.fid_from_features(fa, fb), rel=1e-8)
    assert m.metric == "FD-colour_stats" and est.n == n
    assert est.extra["bootstrap_pairs"] == min(n, max_pairs) and est.extra["bootstrap_resamples"] == 30
    assert est.ci_low < est.ci_high
    if max_pairs >= n:  # bootstrap over all pairs: the bias-corrected (basic) interval holds the estimate
        assert est.ci_low <= est.value <= est.ci_high
    assert ev(_release(a, b), batch_size=64).release.value == pytest.approx(est.value, rel=1e-10)


def test_fd_ci_holds_the_estimate_when_n_is_below_the_feature_dimension():
    """60 pairs of 768-d pixels16 features: every bootstrap resample's distance is inflated by more
    than the spread, so only the bias-shifted interval brackets the estimate."""
    a = _images(60, 3)
    b = [cv2.GaussianBlur(im, (0, 0), 1.5) for im in a]
    est = FrechetDistance(n_bootstrap=40)(_release(a, b)).release
    assert est.n == 60 and est.ci_low <= est.value <= est.ci_high
    assert "shifted by the bootstrap bias" in est.extra["bootstrap_ci"]


def test_fd_is_undefined_not_an_error_when_the_release_has_no_features():
    """Face-embedding features of a release in which no face is found any more (e.g. a mask)."""
    def nan_for_dark(images):
        return np.array([[np.nan] * 6 if im.mean() < 5 else colour_stats([im])[0] for im in images])

    a = _images(10, 2)
    est = FrechetDistance(embedder=nan_for_dark)(_release(a, [np.zeros_like(im) for im in a])).release
    assert math.isnan(est.value) and est.n == 0 and not est.standard
    assert est.extra["no_features_anonymized"] == 10 and est.method.startswith("undefined: 10 anonymized images")
    with pytest.raises(DataError, match="needs at least 2 image pairs"):  # no features on the originals: an error
        FrechetDistance(embedder=nan_for_dark)(_release([np.zeros_like(im) for im in a], a))


@pytest.mark.shared_data("plates_us/images")
def test_fd_grows_with_blur_on_real_plates():
    folder = SHARED / "plates_us" / "images"
    imgs = [read_image(p) for p in sorted(folder.glob("*.png"))[:40]]
    values = [
        FrechetDistance(n_bootstrap=0)(_release(imgs, [cv2.GaussianBlur(im, (0, 0), s) for im in imgs])).release.value
        for s in (0.5, 2.0, 6.0)
    ]
    assert 0 < values[0] < values[1] < values[2]


class _ToyFaceEmbedder(FaceEmbedder):
    """Colour statistics as an 'embedding'; images that are entirely dark have 'no face' (NaN)."""

    dim = 6

    def embed_arrays(self, images):
        out = colour_stats(images).astype(np.float32)
        out[[float(im.max()) < 10 for im in images]] = np.nan
        return out


if "test_toy_face" not in EMBEDDERS:
    EMBEDDERS.register("test_toy_face")(_ToyFaceEmbedder)


def test_embedder_from_registry_drops_pairs_without_features():
    a = _images(14, 2)
    b = [cv2.GaussianBlur(im, (0, 0), 1.5) for im in a]
    a[0] = np.zeros_like(a[0])  # no face on the original
    b[1] = np.zeros_like(b[1])  # face destroyed by the anonymizer
    m = FrechetDistance(embedder="test_toy_face", n_bootstrap=5)(_release(a, b), batch_size=4)
    est = m.release
    assert m.metric == "FD-test_toy_face" and not est.standard and "face-embedding" in est.method
    assert est.n == 12 and est.extra["no_features_original"] == 1 and est.extra["no_features_anonymized"] == 1
    keep = list(range(2, 14))
    expected = F.fid_from_features(colour_stats([a[i] for i in keep]), colour_stats([b[i] for i in keep]))
    assert est.value == pytest.approx(expected, rel=1e-5)  # float32 embeddings


def test_too_few_pairs_and_bad_parameters():
    dark = [np.zeros((20, 20, 3), np.uint8)] * 3
    with pytest.raises(DataError, match="at least 2 image pairs"):
        FrechetDistance(embedder="test_toy_face")(_release(dark, dark))
    with pytest.raises(ConfigError):
        FrechetDistance(max_pairs=1)
    with pytest.raises(ConfigError):
        FrechetDistance(embedder=3)
    with pytest.raises(DataError, match="features must be"):
        FrechetDistance(embedder=lambda ims: np.zeros(len(ims)))(_release(_images(3), _images(3)))


def test_kid_bootstrap_ci_is_deterministic_and_covers_truth():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((120, 8)), rng.standard_normal((120, 8)) + 0.5
    r1, lo1, hi1 = kid_with_ci(x, y, subsets=30, subset_size=60, n_bootstrap=100, seed=1)
    r2, lo2, hi2 = kid_with_ci(x, y, subsets=30, subset_size=60, n_bootstrap=100, seed=1)
    assert (r1.mean, lo1, hi1) == (r2.mean, lo2, hi2)
    big = kid_with_ci(rng.standard_normal((1500, 8)), rng.standard_normal((1500, 8)) + 0.5, 10, 1000, 0, 0)[0]
    assert lo1 < big.mean < hi1 and lo1 < r1.mean < hi1


@pytest.mark.shared_data("lfw/images")
def test_fd_dlib_on_real_faces():
    folder = SHARED / "lfw" / "images"
    pytest.importorskip("dlib", reason="dlib not installed")
    paths = sorted(folder.rglob("*.jpg"))[:10]
    imgs = [read_image(p) for p in paths]
    m = FrechetDistance(embedder="dlib", n_bootstrap=5)(
        _release(imgs, [cv2.GaussianBlur(im, (0, 0), 1) for im in imgs])
    )
    mild = m.release
    strong = FrechetDistance(embedder="dlib", n_bootstrap=5)(
        _release(imgs, [cv2.GaussianBlur(im, (0, 0), 3) for im in imgs])
    ).release
    assert m.metric == "FD-dlib" and not mild.standard and "not FID" in mild.reason
    assert 0 < mild.value < strong.value
    assert mild.n + mild.extra["no_features_original"] + mild.extra["no_features_anonymized"] == 10
