"""Estimates with uncertainty: Wilson intervals, proportions, bootstrap CIs, means and relative risk,
checked against closed forms computed here, reference implementations and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from anonaudit.attacks.base import AttackMetric, AttackResult
from anonaudit.results import measurement_rows
from anonaudit.stats import (
    Z95,
    Estimate,
    bootstrap_ci,
    mean_estimate,
    proportion,
    relative_risk,
    wilson_interval,
)


def wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval written from its textbook formula (independent of the module's algebra)."""
    p = k / n
    centre = (2 * n * p + z**2) / (2 * (n + z**2))
    half = z * math.sqrt(z**2 + 4 * n * p * (1 - p)) / (2 * (n + z**2))
    return centre - half, centre + half


# -- Estimate -----------------------------------------------------------------------------------------
def test_estimate_str_dict_and_equality():
    e = Estimate(0.8, 0.49, 0.943, 10, "proportion", extra={"a": 1})
    assert str(e) == "0.8 [0.49, 0.943] (n=10)"
    assert str(Estimate(2.5, n=3)) == "2.5 (n=3)"  # no CI shown when there is none
    d = e.as_dict()
    assert d["value"] == 0.8 and d["n"] == 10 and d["standard"] is True and d["extra"] == {"a": 1}
    assert e == Estimate(0.8, 0.49, 0.943, 10, "proportion", extra={"b": 2})  # extra is not compared
    with pytest.raises(AttributeError):
        e.value = 1.0  # type: ignore[misc]  # frozen


# -- Wilson interval ------------------------------------------------------------------------------------
def test_z95_is_the_normal_quantile():
    assert pytest.approx(1.959963984540054, abs=1e-12) == Z95


def test_wilson_8_of_10_known_values():
    lo, hi = wilson_interval(8, 10)
    # The textbook Wilson 95% interval for 8/10: 0.4902 to 0.9433.
    assert lo == pytest.approx(0.49016, abs=5e-5)
    assert hi == pytest.approx(0.94332, abs=5e-5)
    assert (lo, hi) == pytest.approx(wilson_closed_form(8, 10), abs=1e-12)


@pytest.mark.parametrize("k, n", [(1, 2), (3, 7), (50, 100), (1, 1000), (999, 1000), (17, 23)])
def test_wilson_matches_closed_form(k: int, n: int):
    assert wilson_interval(k, n) == pytest.approx(wilson_closed_form(k, n), abs=1e-12)


@pytest.mark.parametrize("k, n", [(0, 10), (8, 10), (10, 10), (3, 7), (0, 1), (1, 1), (42, 97)])
def test_wilson_matches_statsmodels(k: int, n: int):
    sm = pytest.importorskip("statsmodels.stats.proportion")
    ref = sm.proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson_interval(k, n) == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("n", [1, 5, 10, 250])
def test_wilson_edges_zero_and_all_successes(n: int):
    z2 = Z95**2
    lo, hi = wilson_interval(0, n)
    assert lo == 0.0  # exactly, not -1e-17
    assert hi == pytest.approx(z2 / (n + z2), rel=1e-12)
    lo, hi = wilson_interval(n, n)
    assert hi == 1.0
    assert lo == pytest.approx(n / (n + z2), rel=1e-12)


@pytest.mark.parametrize("n", [0, -3])
def test_wilson_without_trials_is_nan(n: int):
    lo, hi = wilson_interval(0, n)
    assert math.isnan(lo) and math.isnan(hi)


def test_wilson_other_z_and_contains_p():
    # 90% interval (z = 1.645) is narrower than the 95% one and still contains p.
    z90 = float(st.norm.ppf(0.95))
    lo90, hi90 = wilson_interval(30, 80, z=z90)
    lo95, hi95 = wilson_interval(30, 80)
    assert lo95 < lo90 < 30 / 80 < hi90 < hi95
    assert (lo90, hi90) == pytest.approx(wilson_closed_form(30, 80, z90), abs=1e-12)
    for n in (1, 2, 3, 17, 100):
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0


# -- proportion -----------------------------------------------------------------------------------------
def test_proportion_of_booleans():
    e = proportion([True] * 8 + [False] * 2)
    assert e.value == 0.8 and e.n == 10
    assert (e.ci_low, e.ci_high) == pytest.approx(wilson_closed_form(8, 10), abs=1e-12)
    assert e.method == "proportion, Wilson 95% CI"
    assert proportion(np.array([1, 0, 0, 0]), method="mine").method == "mine"  # ints become booleans
    assert proportion(np.array([1, 0, 0, 0])).value == 0.25


def test_proportion_of_nothing_is_nan_with_n_zero():
    e = proportion([])
    assert e.n == 0 and math.isnan(e.value) and math.isnan(e.ci_low) and math.isnan(e.ci_high)


# -- bootstrap CI -------------------------------------------------------------------------------------------
SAMPLE = np.array([2.0, 4.0, 4.0, 5.0, 7.0, 9.0, 3.0, 6.0, 8.0, 1.0, 5.5, 4.5])


def test_bootstrap_contains_the_mean_and_is_seeded():
    lo, hi = bootstrap_ci(SAMPLE, seed=3)
    assert lo < SAMPLE.mean() < hi
    assert (lo, hi) == bootstrap_ci(SAMPLE, seed=3)  # same seed: same interval, bit for bit
    assert (lo, hi) != bootstrap_ci(SAMPLE, seed=4)
    # Bounds are sample means of resamples, hence inside the data range.
    assert SAMPLE.min() <= lo and hi <= SAMPLE.max()


def test_bootstrap_is_the_percentile_method():
    """Reference: the percentile bootstrap written out here with the same resampling indices."""
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(SAMPLE), size=(500, len(SAMPLE)))
    ref = np.percentile(SAMPLE[idx].mean(axis=1), [2.5, 97.5])
    assert bootstrap_ci(SAMPLE, n_resamples=500, seed=7) == pytest.approx(tuple(ref), abs=1e-12)
    # The generic (any statistic) path gives the same answer as the vectorised mean path.
    generic = bootstrap_ci(SAMPLE, statistic=lambda v: float(np.mean(v)), n_resamples=500, seed=7)
    assert generic == pytest.approx(tuple(ref), abs=1e-12)


def test_bootstrap_other_statistics_and_2d_values():
    lo, hi = bootstrap_ci(SAMPLE, statistic=np.median, seed=0)
    assert lo <= np.median(SAMPLE) <= hi
    pairs = np.stack([SAMPLE, 2 * SAMPLE], axis=1)  # resampled by rows
    lo2, hi2 = bootstrap_ci(pairs, statistic=lambda v: float(v[:, 1].mean()), seed=0)
    lo1, hi1 = bootstrap_ci(SAMPLE, statistic=lambda v: float(v.mean()), seed=0)
    assert (lo2, hi2) == pytest.approx((2 * lo1, 2 * hi1))


def test_bootstrap_agrees_with_t_interval_on_a_large_normal_sample():
    x = np.random.default_rng(0).normal(10.0, 2.0, 2000)
    lo, hi = bootstrap_ci(x, n_resamples=2000, seed=1)
    t_lo, t_hi = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    assert lo == pytest.approx(t_lo, abs=0.02) and hi == pytest.approx(t_hi, abs=0.02)
    assert (hi - lo) == pytest.approx(t_hi - t_lo, rel=0.1)


@pytest.mark.parametrize("values", [[], [3.0]])
def test_bootstrap_needs_two_values(values):
    lo, hi = bootstrap_ci(np.array(values))
    assert math.isnan(lo) and math.isnan(hi)


def test_bootstrap_of_constant_values_is_a_point():
    assert bootstrap_ci(np.full(20, 0.25)) == (0.25, 0.25)


# -- mean_estimate ------------------------------------------------------------------------------------------
def test_mean_estimate_value_ci_and_nan_dropping():
    values = list(SAMPLE) + [float("nan"), float("nan")]
    e = mean_estimate(values, seed=5)
    assert e.value == pytest.approx(SAMPLE.mean()) and e.n == len(SAMPLE)
    assert (e.ci_low, e.ci_high) == bootstrap_ci(SAMPLE, seed=5)  # documented: percentile bootstrap
    assert e.ci_low < e.value < e.ci_high
    assert e.method == "mean, bootstrap 95% CI"
    assert mean_estimate(SAMPLE, method="ssim").method == "ssim"
    assert mean_estimate(SAMPLE, seed=5) == mean_estimate(SAMPLE, seed=5)


def test_mean_estimate_of_nothing():
    for values in ([], [float("nan")]):
        e = mean_estimate(values)
        assert e.n == 0 and math.isnan(e.value) and math.isnan(e.ci_low)
    one = mean_estimate([0.7])
    assert one.value == 0.7 and one.n == 1 and math.isnan(one.ci_low)  # no interval from one value


# -- relative risk ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("release, original, baseline, expected", [
    (0.1, 0.9, 0.1, 0.0),     # at chance: the release gives nothing
    (0.9, 0.9, 0.1, 1.0),     # as good as on the originals
    (0.5, 0.9, 0.1, 0.5),     # (0.5 - 0.1) / (0.9 - 0.1)
    (0.3, 0.8, 0.0, 0.375),   # zero baseline: release / original
    (0.75, 1.0, 0.5, 0.5),    # ROC AUC style baseline 0.5
    (0.05, 0.9, 0.1, 0.0),    # below chance: clipped to 0
    (0.95, 0.9, 0.1, 1.0625), # above the originals: shown, not clipped
    (0.5, 0.3, 0.3, 0.2 / 0.7),  # originals at chance: new leak, (release - baseline) / (1 - baseline)
    (0.5, 0.2, 0.3, 0.2 / 0.7),  # originals below chance: new leak too
    (0.1, 0.0, 0.0, 0.1),     # metadata: originals clean, 10% of released files leak
    (0.5, None, 0.1, 0.4 / 0.9),  # originals not measured: absolute risk
])
def test_relative_risk_hand_computed(release, original, baseline, expected):
    assert relative_risk(release, original, baseline) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("release, original, baseline", [
    (0.5, float("nan"), 0.1),
    (float("nan"), 0.9, 0.1),
    (0.5, 0.9, float("nan")),
])
def test_relative_risk_undefined_is_nan(release, original, baseline):
    assert math.isnan(relative_risk(release, original, baseline))


def test_attack_metric_risk_and_result_rows():
    """Attack metrics are 'higher = more successful attack'; their rows say lower is better for the
    release (``higher_is_better=False``) and carry the risk computed from release, original, baseline."""
    rel, orig = proportion([True] * 3 + [False] * 7), proportion([True] * 9 + [False])
    m = AttackMetric("acc", rel, orig, baseline=0.1)
    assert m.risk == pytest.approx((0.3 - 0.1) / (0.9 - 0.1))
    assert AttackMetric("acc", rel, None, 0.1).risk == pytest.approx(0.2 / 0.9)  # no originals: absolute risk
    flat = AttackMetric("acc", rel, proportion([True, False]), baseline=0.5)
    assert flat.risk == 0.0  # originals at chance, release below it: a new leak of nothing
    empty = AttackMetric("acc", proportion([]), orig, baseline=0.1)
    (r1, r2, r3) = measurement_rows(AttackResult("x", [m, flat, empty]).metrics, {"target": "t"}, "attack", seconds=1.0)
    assert r1["higher_is_better"] is False and r1["risk"] == pytest.approx(0.25) and r1["risk_kind"] == "relative"
    assert r1["risk_ci_low"] < 0.25 < r1["risk_ci_high"]
    assert r1["value"] == 0.3 and r1["original"] == 0.9 and r1["baseline"] == 0.1 and r1["n"] == 10
    assert r2["risk_kind"] == "new_leak"
    assert r3["risk"] is None and r3["risk_kind"].startswith("none: ")  # nan is stored as an empty cell
