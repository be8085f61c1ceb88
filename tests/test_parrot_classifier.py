"""The parrot classifier (McPherson et al. 2016) on planted-identity synthetic faces: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from anonaudit.attacks.parrot_classifier import ParrotClassifier, fold_of
from anonaudit.attacks.replay import attacker_anonymizer
from anonaudit.data.degradation import GaussianBlurOperator
from anonaudit.data.imageset import Release
from anonaudit.errors import ConfigError
from anonaudit.registry import ANONYMIZERS
from tests.face_data import synthetic_identities

N_PEOPLE = 8
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def people():
    return synthetic_identities(N_PEOPLE, 6, size=48, noise=12.0, seed=3)


def _release(originals, anonymizer, with_object: bool = True) -> Release:
    anon = anonymizer.anonymize(originals, show_progress=False)
    return Release(originals, anon, name=anonymizer.name, params=anonymizer.get_params(),
                   degradation=anonymizer.degradation(), anonymizer=anonymizer if with_object else None)


def _attack(**kw) -> ParrotClassifier:
    return ParrotClassifier(**{"steps": 60, "size": 24, "width": 8, "batch_size": 16, "lr": 5e-3, **kw})


def test_folds_deal_each_persons_photos_round_robin():
    ids = ["a"] * 5 + ["b"] * 2 + ["c"]
    folds = fold_of(ids, 2, seed=0)
    assert sorted(folds[:5]) == [0, 0, 0, 1, 1]
    assert sorted(folds[5:7]) == [0, 1]
    assert folds[7] == 0
    assert np.array_equal(folds, fold_of(ids, 2, seed=0))


@pytest.fixture(scope="module")
def blurred(people):
    return _attack().run(_release(people, ANONYMIZERS.create("gaussian_blur", sigma=1.0)))


def test_mild_blur_is_identified_far_above_chance(people, blurred):
    result = blurred
    rank1 = result.metric("rank1")
    assert rank1.baseline == pytest.approx(1 / N_PEOPLE)
    assert rank1.release.n == len(people)
    assert rank1.release.ci_low > 3 / N_PEOPLE, rank1.release  # well above chance, beyond the CI
    assert rank1.original.value >= 0.8
    assert result.metric("rank5").release.value >= rank1.release.value
    assert rank1.release.extra["training_steps"] == 2 * 2 * 60  # two folds, anonymized and clear
    assert rank1.release.extra["training_seconds"] > 0
    assert len(result.findings) == round(rank1.release.value * rank1.release.n)
    assert any("the target's own anonymizer" in n for n in result.notes)


def test_mask_is_at_chance(people):
    result = _attack(steps=40).run(_release(people, ANONYMIZERS.create("mask")))
    rank1 = result.metric("rank1")
    assert rank1.release.ci_low <= 1 / N_PEOPLE <= rank1.release.ci_high, rank1.release
    assert rank1.risk_estimate().ci_low <= 0.0 + 1e-9


def test_declared_operator_when_no_anonymizer_is_available(people):
    blur = ANONYMIZERS.create("gaussian_blur", sigma=1.0)
    anon = blur.anonymize(people, show_progress=False)
    release = Release(people, anon, name="", params={}, degradation=GaussianBlurOperator(sigma=1.0))
    replay, how = attacker_anonymizer(release)
    assert "declared operator" in how
    again = replay.anonymize(people)
    assert all(np.array_equal(again[i], anon[i]) for i in range(len(people)))
    bare = _attack(steps=5).run(Release(people, anon, name="", params={}))
    assert any("trained on the released files" in n for n in bare.notes)


def test_training_is_cached_and_seeded(people, tmp_path, monkeypatch):
    from anonaudit.memo import clear_memory

    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    release = _release(people, ANONYMIZERS.create("pixelate", block=4.0))
    first = _attack(steps=30).run(release)
    clear_memory()
    second = _attack(steps=30).run(release)
    assert np.array_equal(first.details["rank"], second.details["rank"])
    assert any("loaded from the cache" in n for n in second.notes)
    assert not any("loaded from the cache" in n for n in first.notes)


def test_bad_budget_is_a_config_error():
    with pytest.raises(ConfigError, match="parrot_classifier: training budget: steps"):
        ParrotClassifier(steps=0)
    with pytest.raises(ConfigError, match="max_seconds"):
        ParrotClassifier(max_seconds=0)
    with pytest.raises(ConfigError, match=r"^parrot_classifier: folds must be an integer >= 2, got 1$"):
        ParrotClassifier(folds=1)
    with pytest.raises(ConfigError, match=r"^parrot_classifier: threads must be an integer >= 1 or null, got 0$"):
        ParrotClassifier(threads=0)


def test_a_leaking_learned_attack_fails_the_policies(blurred):
    """The policies judge the learned attackers as re-identification and gender evidence."""
    import pandas as pd

    from anonaudit.results import Results, measurement_rows, row
    from anonaudit.verdicts import FAIL, certify, load_policy

    base = {"target": "t", "target_label": "blur", "component": "parrot_classifier"}
    rows = measurement_rows(blurred.metrics, base, "attack", 1.0)
    leak = {"target": "t", "target_label": "blur", "kind": "attack", "status": "ok", "n": 200}
    rows += [
        row(**leak, component="restore_then_gender", metric="accuracy", value=0.8, ci_low=0.74, ci_high=0.85,
            baseline=0.5),
        row(**leak, component="representation_gender", metric="accuracy", value=0.99, ci_low=0.97, ci_high=1.0,
            baseline=0.5),  # released feature vectors: judged by their own criteria, not this one
    ]
    for policy in ("strict", "research-sharing"):
        verdict = certify(Results(pd.DataFrame(rows)), load_policy(policy), kind="faces")
        by_id = {c.id: c for c in verdict.criteria["blur"]}
        assert by_id["reid-rank1"].status == FAIL and by_id["reid-rank1"].component == "parrot_classifier"
        assert by_id["gender-inference"].status == FAIL
        assert by_id["gender-inference"].component == "restore_then_gender"  # not the worse representation row
        assert verdict.targets["blur"] == FAIL
