"""Frechet distance, KID and Inception Score math against references (scipy sqrtm, closed forms,
torchmetrics on identical features, explicit loops)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anonaudit.errors import DataError, MismatchError
from anonaudit.evaluators import functional as F
from anonaudit.metrics import (
    FeatureStats,
    PairReservoir,
    SplitInceptionScore,
    frechet_distance,
    frechet_distance_from_features,
    inception_score,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
)


def _random_cov(rng: np.random.Generator, d: int, n: int | None = None) -> np.ndarray:
    a = rng.standard_normal((n or 3 * d, d)) @ rng.standard_normal((d, d)) / np.sqrt(d)
    return np.cov(a, rowvar=False)


def _sqrtm_reference(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("d", [2, 16, 64, 256])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_sqrtm_reference(d, seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.5
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    ref = _sqrtm_reference(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_closed_form_for_commuting_singular_covariances():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T with zeros (singular): FD = |mu1-mu2|^2 + sum (sqrt a - sqrt b)^2
    rng = np.random.default_rng(3)
    d = 40
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a, b = rng.uniform(0, 4, d), rng.uniform(0, 4, d)
    a[:10] = 0.0
    b[5:15] = 0.0
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    # zero eigenvalues come out as +-eps*|S|, whose square roots (~1e-8 each) bound the accuracy
    assert got == pytest.approx(expected, rel=1e-7)


def test_identity_and_equal_covariances():
    rng = np.random.default_rng(4)
    d = 32
    mu, s = rng.standard_normal(d), _random_cov(rng, d)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9 * np.trace(s))
    shift = rng.standard_normal(d)
    assert frechet_distance(mu, s, mu + shift, s) == pytest.approx(float(shift @ shift), rel=1e-7)
    x = rng.standard_normal((20, d))  # fewer samples than dimensions: singular covariance
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance_from_features(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 12), n1=st.integers(2, 30), n2=st.integers(2, 30))
def test_symmetric_and_non_negative(seed, d, n1, n2):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n1, d)) * rng.uniform(0.1, 3), rng.standard_normal((n2, d)) + rng.uniform(-1, 1)
    mx, sx, my, sy = (
        x.mean(0),
        np.cov(x, rowvar=False, ddof=1).reshape(d, d),
        y.mean(0),
        np.cov(y, rowvar=False).reshape(d, d),
    )
    a, b = frechet_distance(mx, sx, my, sy), frechet_distance(my, sy, mx, sx)
    assert a >= 0 and b >= 0
    assert a == pytest.approx(b, rel=1e-7, abs=1e-9)
    assert frechet_distance_from_features(x, y) == pytest.approx(a, rel=1e-7, abs=1e-9)


def test_feature_path_small_n_equals_covariance_path():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((30, 100)), rng.standard_normal((25, 100)) * 1.5 + 0.2
    via_cov = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_distance_from_features(x, y) == pytest.approx(via_cov, rel=1e-8)


def test_weights_equal_repeated_rows():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((12, 20)), rng.standard_normal((12, 20)) + 0.5
    w = rng.multinomial(12, np.full(12, 1 / 12)).astype(float)
    rows = np.repeat(np.arange(12), w.astype(int))
    assert frechet_distance_from_features(x, y, w, w) == pytest.approx(
        frechet_distance_from_features(x[rows], y[rows]), rel=1e-9
    )


def test_feature_stats_stream_merge_and_offset_stability():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((500, 8)) * 1e-3 + 1e6  # naive sum-of-squares would cancel catastrophically
    st_all = FeatureStats()
    for s in range(0, 500, 37):
        st_all.update(x[s : s + 37])
    np.testing.assert_allclose(st_all.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st_all.cov, np.cov(x, rowvar=False), rtol=1e-6, atol=1e-14)
    a, b = FeatureStats(), FeatureStats()
    a.update(x[:200])
    b.update(x[200:] + 0.0)
    a.merge(b)
    assert a.n == 500
    np.testing.assert_allclose(a.cov, np.cov(x, rowvar=False), rtol=1e-6, atol=1e-14)
    with pytest.raises(MismatchError, match="dimension"):
        a.update(np.zeros((2, 3)))
    with pytest.raises(DataError, match="NaN"):
        a.update(np.full((2, 8), np.nan))


def test_bad_inputs_are_named():
    with pytest.raises(MismatchError, match="dimensions differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(MismatchError, match="do not fit"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(DataError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))
    one = FeatureStats()
    one.update(np.zeros((1, 2)))
    with pytest.raises(DataError, match="at least 2 samples, got 1"):
        _ = one.cov


class _Passthrough(torch.nn.Module):
    """A 'feature extractor' returning its input: feeds identical features to torchmetrics."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchmetrics memory/ddof notices
def test_fid_equals_torchmetrics_on_identical_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    rng = np.random.default_rng(8)
    d = 48
    x = rng.standard_normal((150, d)) @ rng.standard_normal((d, d)) * 0.3
    y = rng.standard_normal((120, d)) * 1.2 + 0.4
    tm = FrechetInceptionDistance(feature=_Passthrough(d))
    tm.update(torch.from_numpy(x), real=True)
    tm.update(torch.from_numpy(y), real=False)
    expected = float(tm.compute())
    assert F.fid_from_features(x, y) == pytest.approx(expected, rel=1e-6)
    assert F.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)) == pytest.approx(
        expected, rel=1e-6
    )


def _mmd2_loops(x, y):
    def k(a, b):
        return (a @ b / x.shape[1] + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchmetrics memory/ddof notices
def test_kid_full_set_matches_loops_and_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((25, 6)), rng.standard_normal((25, 6)) + 0.3
    r = kid(x, y, subsets=4, subset_size=25)
    assert r.mean == pytest.approx(_mmd2_loops(x, y), rel=1e-10)
    assert r.std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set
    tm = KernelInceptionDistance(feature=_Passthrough(6), subsets=3, subset_size=25)
    tm.update(torch.from_numpy(x), real=True)
    tm.update(torch.from_numpy(y), real=False)
    assert r.mean == pytest.approx(float(tm.compute()[0]), rel=1e-9)
    assert F.kid_from_features(x, y, subsets=2, subset_size=25)[0] == pytest.approx(r.mean, rel=1e-12)


def test_kid_subsets_are_subset_mmds_and_behave():
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((30, 5))
    r = kid(x, y, subsets=5, subset_size=10, seed=3)
    assert (
        r.values.shape == (5,) and r.mean == pytest.approx(r.values.mean()) and r.std == pytest.approx(r.values.std())
    )
    # A subset's weight vector gives that subset's MMD^2
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    ix, iy = np.arange(3, 13), np.arange(7, 17)
    wx, wy = np.zeros(40), np.zeros(30)
    wx[ix], wy[iy] = 1, 1
    assert mmd2_unbiased(kxx, kyy, kxy, wx, wy)[0] == pytest.approx(_mmd2_loops(x[ix], y[iy]), rel=1e-10)
    # Same distribution: near zero; shifted: clearly positive
    same = kid(rng.standard_normal((400, 5)), rng.standard_normal((400, 5)), subsets=20, subset_size=200)
    shifted = kid(rng.standard_normal((400, 5)), rng.standard_normal((400, 5)) + 1.0, subsets=20, subset_size=200)
    assert abs(same.mean) < 3 * same.std + 1e-3 and shifted.mean > 10 * abs(same.mean)
    with pytest.raises(DataError, match="subset_size"):
        kid(x, y, subset_size=31)


def test_bootstrap_weights_exclude_same_row_pairs():
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 3)) + 0.2
    idx = np.array([0, 0, 1, 3, 3, 3, 5, 7])
    w = np.bincount(idx, minlength=8).astype(float)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    def k(a, b):
        return (a @ b / 3 + 1.0) ** 3

    pos = range(len(idx))
    pairs = [(a, b) for a in pos for b in pos if idx[a] != idx[b]]
    xx = np.mean([k(x[idx[a]], x[idx[b]]) for a, b in pairs])
    yy = np.mean([k(y[idx[a]], y[idx[b]]) for a, b in pairs])
    xy = np.mean([k(x[idx[a]], y[idx[b]]) for a in pos for b in pos])
    assert mmd2_unbiased(kxx, kyy, kxy, w, w)[0] == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_inception_score_known_answers():
    n, c = 40, 10
    assert inception_score(np.zeros((n, c)), splits=4)[0] == pytest.approx(1.0)  # uniform predictions
    logits = np.full((n, c), -50.0)
    logits[np.arange(n), np.arange(n) % 8] = 50.0  # confident, 8 classes evenly spread in every split
    mean, std = inception_score(logits, splits=5)
    assert mean == pytest.approx(8.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    # Streaming in uneven batches equals one call
    rng = np.random.default_rng(12)
    z = rng.standard_normal((103, c)) * 3
    acc = SplitInceptionScore(10)
    for s in range(0, 103, 17):
        acc.update(z[s : s + 17])
    assert acc.compute()[0] == pytest.approx(inception_score(z, 10)[0], rel=1e-12)
    with pytest.raises(DataError, match="at least 10 images"):
        inception_score(z[:5], 10)


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchmetrics memory/ddof notices
def test_inception_score_equals_torchmetrics_single_split():
    from torchmetrics.image.inception import InceptionScore

    rng = np.random.default_rng(13)
    z = rng.standard_normal((60, 20)) * 2
    tm = InceptionScore(feature=_Passthrough(20), splits=1)
    tm.update(torch.from_numpy(z))
    assert inception_score(z, splits=1)[0] == pytest.approx(float(tm.compute()[0]), rel=1e-9)
    # Round-robin splits by hand
    scores = []
    for g in range(3):
        p = scipy.special.softmax(z[g::3], axis=1)
        py = p.mean(0)
        scores.append(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1))))
    assert F.inception_score_from_logits(z, 3) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-10)


def test_reservoir_is_uniform_and_bounded():
    counts = np.zeros(50)
    for seed in range(400):
        r = PairReservoir(10, seed=seed)
        for s in range(0, 50, 7):
            rows = np.arange(s, min(s + 7, 50))[:, None].astype(float)
            r.update(rows, -rows)
        a, b = r.arrays()
        assert a.shape == (10, 1) and np.all(a == -b) and not r.complete
        counts[a[:, 0].astype(int)] += 1
    # each row is kept with probability 10/50: 80 expected of 400, binomial sd ~8
    assert counts.min() > 45 and counts.max() < 115
