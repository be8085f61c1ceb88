"""The ``dp_audit`` attack and the policy criterion ``dp-claim``: a DP claim the one-run audit contradicts
FAILS, a consistent one PASSES, no claim is NOT TESTED, a method that learns nothing is NOT APPLICABLE;
end to end on MIKU's PCA mapper (which reconstructs its training images exactly: a strong signal)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from anonaudit.anonymizers.miku import Miku
from anonaudit.attacks.dp_audit import OneRunDPAudit, claim_measurements
from anonaudit.audit import Audit
from anonaudit.data.imageset import Release
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import ConfigError, DataError
from anonaudit.metrics.dp_audit import epsilon_lower_bound, one_run_audit, perfect_guess_bound
from anonaudit.registry import ATTACKS
from anonaudit.results import Results, measurement_rows, status_row
from anonaudit.verdicts import FAIL, NOT_TESTED, PASS, certify, load_policy
from anonaudit.verdicts.certify import NOT_APPLICABLE

BASE = {"target": "t", "target_label": "gan", "component": "dp_audit", "component_label": "dp_audit"}


def perfect_audit():
    """100 canaries guessed perfectly at k = 50: the bound is the closed form for 100 correct guesses."""
    included = np.arange(100) % 2 == 0
    return one_run_audit(included.astype(float), included, ks=(50,))


def dp_claim(rows: list[dict], policy: str = "strict"):
    verdict = certify(Results(pd.DataFrame(rows)), policy, kind="plates")
    (result,) = [c for c in verdict.criteria["gan"] if c.id == "dp-claim"]
    return result


def audit_rows(claim: float | None) -> list[dict]:
    return measurement_rows(claim_measurements(perfect_audit(), claim, {}), BASE, "attack", 0.0)


# -- the policy layer, on the rows the attack writes ----------------------------------------------------
@pytest.mark.parametrize("policy", ["strict", "research"])
def test_a_contradicted_claim_fails_a_consistent_one_passes(policy: str):
    bound = perfect_guess_bound(100)  # 4.0
    assert perfect_audit().epsilon_lower_bound == pytest.approx(bound)
    contradicted = dp_claim(audit_rows(1.0), policy)
    assert contradicted.status == FAIL and contradicted.bound_value == pytest.approx(bound - 1.0)
    assert "epsilon_lower_bound_minus_claimed: lower 95% bound" in contradicted.reason
    assert dp_claim(audit_rows(8.0), policy).status == PASS
    assert dp_claim(audit_rows(bound), policy).status == PASS  # a bound at the claim does not contradict it


def test_no_claim_is_not_tested_with_the_reason():
    rows = audit_rows(None)
    assert rows[0]["metric"] == "epsilon_lower_bound" and rows[0]["value"] == pytest.approx(perfect_guess_bound(100))
    assert rows[0]["ci_high"] == math.inf and rows[0]["risk_kind"].startswith("none")  # an epsilon, not a rate
    result = dp_claim(rows)
    assert result.status == NOT_TESTED and "claims no epsilon" in result.reason


def test_a_method_that_learns_nothing_is_not_applicable_and_an_absent_audit_not_tested():
    na = status_row({**BASE, "target_label": "gan"}, "attack", "not_applicable",
                    "blur learns nothing from data: it has no training set whose membership could leak")
    assert dp_claim([na]).status == NOT_APPLICABLE
    other = measurement_rows(claim_measurements(perfect_audit(), 1.0, {}), {**BASE, "component": "x"}, "attack", 0.0)
    assert dp_claim(other).status == NOT_TESTED  # no dp_audit was run


def test_the_criterion_is_in_both_builtin_policies():
    for name in ("strict", "research"):
        (c,) = [c for c in load_policy(name).criteria if c.id == "dp-claim"]
        assert (c.select, c.comparison, c.threshold.offset, c.bound) == (
            "dp_*/epsilon_lower_bound_minus_claimed", "<=", 0.0, "lower")


# -- the attack ---------------------------------------------------------------------------------------
class ClaimingMiku(Miku):
    """MIKU's PCA mapper with a DP claim it does nothing to meet (a planted bug: no noise at all)."""

    def __init__(self, size: int = 8, n_components: int = 64, dp_epsilon: float | None = 1.0,
                 dp_delta: float = 1e-5, seed: int = 0):
        super().__init__(mapper="pca", size=size, n_components=n_components, device="cpu", seed=seed)
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta


@pytest.fixture(scope="module")
def data():
    return synthetic_plates(96, seed=0)


@pytest.fixture(scope="module")
def plates(data):
    """16 training images and 80 evaluated ones (the canaries' pool)."""
    return data.subset(range(16)), data.subset(range(16, 96))


def release_of(target, training, evaluation) -> Release:
    target.fit(training)
    return Release(evaluation, evaluation, target.name, target.get_params(), anonymizer=target,
                   training_keys=target.training_keys_)


def test_the_audit_catches_a_claim_the_training_does_nothing_to_meet(plates):
    training, evaluation = plates
    result = ATTACKS.create("dp_audit", n_canaries=64).fit(training).run(
        release_of(ClaimingMiku(dp_epsilon=0.5), training, evaluation))
    metrics = {m.metric: m.release for m in result.metrics}
    bound = metrics["epsilon_lower_bound"]
    # PCA with more components than training images reconstructs every IN canary exactly: each guess is right
    guesses = bound.extra["guesses"]
    assert bound.extra["correct"] == guesses >= 30, result.notes
    assert bound.value == pytest.approx(epsilon_lower_bound(64, guesses, guesses, 1e-5, bound.extra["level_per_k"]))
    assert bound.value > 1.5  # three times the claim
    assert bound.extra["claimed_epsilon"] == 0.5 and bound.extra["delta"] == 1e-5 and bound.n == 64
    assert metrics["epsilon_lower_bound_minus_claimed"].value == pytest.approx(bound.value - 0.5)
    details = result.details
    assert len(details) == 64 and set(details["guess"]) == {-1, 0, 1}
    guessed = details[details["guess"] != 0]
    assert ((guessed["guess"] == 1) == guessed["included"]).all()
    # the same run through the policy layer
    rows = measurement_rows(result.metrics, BASE, "attack", 0.0, result.notes)
    assert dp_claim(rows).status == FAIL


class TwoPlateMiku(ClaimingMiku):
    """Counts every second image as two training examples (as a region GAN counts a scene with two plates)."""

    def dp_examples(self, data) -> int:
        return sum(1 + int(key[-1]) % 2 for key in data.keys)


def test_against_a_claim_canaries_are_one_example_each(plates):
    training, evaluation = plates
    result = ATTACKS.create("dp_audit", n_canaries=64).fit(training).run(
        release_of(TwoPlateMiku(dp_epsilon=0.5), training, evaluation))
    assert all(int(key[-1]) % 2 == 0 for key in result.details["key"])  # a group of two would test group privacy
    assert len(result.details) == 40 and "40 of 80 candidate canaries left out" in result.notes[-1]


def test_end_to_end_through_the_runner_without_a_claim(data, tmp_path):
    audit = Audit(data, [Miku(mapper="pca", size=8, n_components=64, device="cpu")],
                  [ATTACKS.create("dp_audit", n_canaries=64)], [], aux_fraction=0.2, on_error="raise")
    results = audit.run(tmp_path / "run", show_progress=False)
    table = Results.load(tmp_path / "run").table
    rows = table[table["component"] == "dp_audit"].set_index("metric")
    assert rows.loc["epsilon_lower_bound", "value"] > 1.0
    assert rows.loc["epsilon_lower_bound", "n"] == 64  # 64 canaries drawn from the ~77 evaluated images
    assert rows.loc["epsilon_lower_bound_minus_claimed", "n"] == 0
    verdict = certify(results, "strict", kind="plates")
    (c,) = [c for c in next(iter(verdict.criteria.values())) if c.id == "dp-claim"]
    assert c.status == NOT_TESTED and "claims no epsilon" in c.reason


def test_parameters_are_checked_and_needs_follow_the_signal():
    assert OneRunDPAudit().needs == ("anonymizer", "training_keys", "retrain")
    assert OneRunDPAudit(signal="critic").needs == ("anonymizer", "training_keys", "retrain", "critic")
    for bad, match in [({"n_canaries": 4}, "n_canaries must be an integer >= 8"), ({"signal": "loss"}, "signal"),
                       ({"k": [0]}, "k must be"), ({"confidence": 1.0}, "confidence")]:
        with pytest.raises(ConfigError, match=match):
            OneRunDPAudit(**bad)


def test_a_target_without_its_training_images_is_named(plates):
    training, evaluation = plates
    release = release_of(Miku(mapper="pca", size=8, n_components=64, device="cpu"), training, evaluation)
    with pytest.raises(DataError, match="none of the target's 16 training images"):
        ATTACKS.create("dp_audit").run(release)


def test_a_dp_trained_target_is_audited_under_its_own_claim(plates, one_torch_thread):
    """MIKU's autoencoder trained by DP-SGD at epsilon = 1: the audit retrains it with the same claim (the
    retrained run spends at most 1 by Opacus's accountant), tests at the claimed delta, and the bound
    does not contradict the claim."""
    pytest.importorskip("opacus")
    from anonaudit.training.config import TrainConfig

    training, evaluation = plates
    target = Miku(mapper="autoencoder", size=16, latent=8, device="cpu", dp_epsilon=1.0)
    target.train_with(training, TrainConfig(steps=6, batch_size=8, device="cpu", checkpoint_every=0, sample_every=0,
                                            n_samples=0))
    release = Release(evaluation, evaluation, target.name, target.get_params(), anonymizer=target,
                      training_keys=target.training_keys_)
    result = ATTACKS.create("dp_audit", n_canaries=64).fit(training).run(release)
    bound = {m.metric: m.release for m in result.metrics}["epsilon_lower_bound"]
    assert bound.extra["claimed_epsilon"] == 1.0 and bound.extra["delta"] == 1e-5
    assert bound.extra["signal"] == "reconstruction" and 0.9 < bound.extra["epsilon_spent_by_the_audited_run"] <= 1.0
    assert bound.value <= 1.0
    assert dp_claim(measurement_rows(result.metrics, BASE, "attack", 0.0)).status == PASS
