"""Criteria that can be decided at the sample size (known answers).

- Membership: TPR at FPR x is measured only with at least ceil(1/x) non-members; the built-in strict
  policy's membership criteria never fail an attacker at chance on the default 64 + 64 candidates,
  pass one at chance on 20,000 + 20,000 and fail a planted leak.
- A rate judged on a CI bound that fails while its value meets the threshold states the smallest n at
  which the same value would pass, checked against hand-computed Wilson intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from anonaudit.attacks.membership import _stratified_ci, membership_metrics, tpr_at_fpr
from anonaudit.measurement import Measurement
from anonaudit.results import Results, measurement_rows, row
from anonaudit.stats import Z95, Estimate, wilson_bounds_at_rate, wilson_interval, wilson_n_needed
from anonaudit.verdicts import FAIL, NOT_TESTED, PASS, certify, load_policy, parse_policy
from anonaudit.verdicts.policy import Policy

STRICT = load_policy("strict")
MEMBERSHIP = Policy("strict membership", [c for c in STRICT.criteria if c.select.startswith("membership")])


def candidates(n_members: int, n_non: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (members first) and scores: standard normal, members shifted by ``shift`` (0 = no leak)."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_members, int), np.zeros(n_non, int)]
    return y, rng.normal(size=len(y)) + shift * y


def membership_verdict(y: np.ndarray, score: np.ndarray, seed: int = 0):
    """The strict policy's membership criteria on the rows the membership attacks write for these scores."""
    metrics = membership_metrics(y, score, n_boot=200, seed=seed)
    base = {
        "target": "t",
        "target_label": "gan",
        "component": "membership_critic",
        "component_label": "membership_critic",
    }
    rows = measurement_rows(metrics, base, "attack", 0.0)
    return certify(Results(pd.DataFrame(rows)), MEMBERSHIP, kind="plates")


def by_id(verdict) -> dict:
    return {c.id: c for c in verdict.criteria["gan"]}


def test_the_strict_membership_criteria_are_judged_on_what_the_sample_resolves():
    crit = {c.id: c for c in MEMBERSHIP.criteria}
    assert set(crit) == {"membership-tpr", "membership-auc"}
    assert crit["membership-tpr"].bound == "upper" and crit["membership-tpr"].threshold.offset == 0.01
    assert crit["membership-auc"].bound == "lower" and crit["membership-auc"].threshold.offset == 0.6
    research = {c.id: c for c in load_policy("research").criteria}
    assert research["membership-auc"].bound == "lower" and research["membership-auc"].threshold.offset == 0.65


SEEDS = range(20)


def test_a_random_attacker_on_64_plus_64_is_never_failed():
    """Scores that carry nothing about membership, 20 seeds. TPR at 0.1% FPR needs 1000 non-members:
    NOT TESTED, naming the sample size. The AUC criterion fails only when the bootstrap lower bound
    exceeds 0.6, i.e. an AUC near 0.7 or more: at 64 + 64 the chance AUC has sd 0.051, so that is a
    3.9-sd event (about 5e-5 per seed, 1e-3 over all 20): every seed must come out not FAIL.

    The old rule (TPR at an empirical FPR of 0, judged on its bootstrap upper bound <= 1%) failed
    most of these seeds: the defect this replaces."""
    statuses, old_fails = [], 0
    for seed in SEEDS:
        y, score = candidates(64, 64, 0.0, seed)
        v = membership_verdict(y, score, seed)
        crit = by_id(v)
        statuses.append(v.targets["gan"])
        assert crit["membership-tpr"].status == NOT_TESTED
        assert "needs >= 1000 non-members, has 64" in crit["membership-tpr"].reason
        assert crit["membership-auc"].status == PASS
        old_fails += _stratified_ci(y, score, lambda a, b: tpr_at_fpr(a, b, 0.001), 200, seed)[1] > 0.01
    assert FAIL not in statuses and set(statuses) == {NOT_TESTED}
    assert old_fails >= len(SEEDS) // 2, old_fails


def test_no_leak_on_20000_non_members_passes():
    y, score = candidates(20_000, 20_000, 0.0, seed=1)
    v = membership_verdict(y, score)
    crit = by_id(v)
    assert v.targets["gan"] == PASS, [c.reason for c in crit.values()]
    tpr = crit["membership-tpr"]
    assert tpr.metric == "tpr@fpr=0.001" and tpr.n == 40_000 and tpr.bound_value <= 0.01
    assert crit["membership-auc"].bound_value <= 0.6


def test_a_planted_leak_fails_at_any_sample_size():
    # members' scores shifted by one sd: AUC about 0.76, TPR at 0.1% FPR about 1.8%
    crit = by_id(membership_verdict(*candidates(20_000, 20_000, 1.0, seed=2)))
    assert crit["membership-tpr"].status == FAIL and crit["membership-tpr"].value > 0.01
    assert crit["membership-auc"].status == FAIL
    assert "value itself breaks the threshold: no sample size can pass" in crit["membership-tpr"].reason
    # a strong leak (shift 3 sd) on the default 64 + 64: shown by the AUC while the TPR is not resolved
    v = membership_verdict(*candidates(64, 64, 3.0, seed=3))
    crit = by_id(v)
    assert v.targets["gan"] == FAIL and crit["membership-auc"].status == FAIL
    assert crit["membership-tpr"].status == NOT_TESTED


def test_reported_tpr_rows_carry_the_fpr_achieved():
    y, score = candidates(1000, 1000, 0.0, seed=4)
    rows = measurement_rows(membership_metrics(y, score, n_boot=50), {"target": "t", "target_label": "a",
                            "component": "membership_dcr"}, "attack", 0.0)
    tpr = next(r for r in rows if r["metric"] == "tpr@fpr=0.001")
    assert tpr["standard"] is True and "fpr_achieved=0.001" in tpr["message"] and "non_members=1000" in tpr["message"]


# -- the sample size a failing CI bound needs ----------------------------------------------------------------
def rate_row(k: int, n: int, **kw) -> dict:
    lo, hi = wilson_interval(k, n)
    return row(target="t", target_label="a", kind="attack", component="ocr", metric="exact_match", value=k / n,
               ci_low=lo, ci_high=hi, n=n, baseline=0.0, status="ok", **kw)


def judged(rows: list[dict], criterion: dict):
    return certify(Results(pd.DataFrame(rows)), parse_policy({"name": "p", "criteria": [criterion]})).criteria["a"][0]


OCR = {"id": "ocr", "select": "*ocr/exact_match", "require": "<= 1%"}


def test_zero_of_120_plates_states_the_wilson_sample_size_by_hand():
    """0 of n read: Wilson's upper end is z^2 / (n + z^2), at most 1% from n >= 99 z^2 = 380.3, so 381."""
    assert Z95**2 / (380 + Z95**2) > 0.01 >= Z95**2 / (381 + Z95**2)
    assert wilson_interval(0, 381)[1] <= 0.01 < wilson_interval(0, 380)[1]
    c = judged([rate_row(0, 120)], OCR)
    assert c.status == FAIL and "would pass with n >= 381 (has 120; exact, Wilson 95% CI)" in c.reason
    assert "n >= 381" in judged([rate_row(0, 380)], OCR).reason and judged([rate_row(0, 381)], OCR).status == PASS


def test_a_non_zero_rate_and_a_lower_bound_by_hand():
    # 1 of 200 (0.5%): n >= z^2 * 0.01 * 0.99 / 0.005^2 = 1521.2, so 1522
    assert math.ceil(Z95**2 * 0.01 * 0.99 / 0.005**2) == 1522 == wilson_n_needed(0.005, 0.01)
    assert wilson_bounds_at_rate(0.005, 1522)[1] <= 0.01 < wilson_bounds_at_rate(0.005, 1521)[1]
    assert "n >= 1522 (has 200; exact" in judged([rate_row(1, 200)], OCR).reason
    # a rate that must be at least 80% (lower bound), 18 of 20 observed: n >= z^2 * 0.8 * 0.2 / 0.1^2 = 61.5, so 62
    c = judged([rate_row(18, 20)], {"id": "ocr", "select": "*ocr/exact_match", "require": ">= 80%"})
    assert c.status == FAIL and "n >= 62 (has 20; exact" in c.reason
    assert wilson_bounds_at_rate(0.9, 62)[0] >= 0.8 > wilson_bounds_at_rate(0.9, 61)[0]


def test_no_sample_size_when_the_value_breaks_or_sits_at_the_threshold():
    assert "no sample size can pass" in judged([rate_row(3, 100)], OCR).reason  # 3% > 1%
    at = judged([rate_row(1, 100)], OCR)  # exactly 1%: the CI stays on both sides of it
    assert at.status == FAIL and "no n can pass" in at.reason and wilson_n_needed(0.01, 0.01) == math.inf


def test_other_intervals_are_scaled_and_say_so():
    # a bootstrap interval [0, 0.02] around 0.5% at n=100: half-width 0.015 must shrink to 0.005, n x 9
    boot = row(target="t", target_label="a", kind="attack", component="ocr", metric="exact_match", value=0.005,
               ci_low=0.0, ci_high=0.02, n=100, baseline=0.0, status="ok")
    assert "n >= 900 (has 100; approximate" in judged([boot], OCR).reason


def test_a_new_leak_risk_is_mapped_back_to_its_wilson_rate():
    """Risk = (rate - 0.1) / 0.9 at chance 0.1: risk <= 5% is rate <= 14.5%; 24 of 200 (12%) then needs
    n >= z^2 * 0.145 * 0.855 / 0.025^2."""
    e = Estimate(24 / 200, *wilson_interval(24, 200), 200, "proportion")
    rows = measurement_rows([Measurement("exact_match", e, Estimate(0.1, n=100), 0.1)],
                            {"target": "t", "target_label": "a", "component": "ocr"}, "attack", 0.0)
    assert rows[0]["risk_kind"] == "new_leak"
    need = math.ceil(Z95**2 * 0.145 * 0.855 / 0.025**2)
    assert need == 762 == wilson_n_needed(0.12, 0.145)
    assert wilson_bounds_at_rate(0.12, 762)[1] <= 0.145 < wilson_bounds_at_rate(0.12, 761)[1]
    c = judged(rows, {"id": "risk", "select": "ocr/exact_match", "require": "<= 5%", "on": "risk"})
    assert c.status == FAIL and "n >= 762 (has 200; exact" in c.reason
