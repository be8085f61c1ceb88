"""Open-set identification (DIR at a FAR set on the auxiliary images) and the equal error rate of reid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anonaudit.anonymizers.classical import GaussianBlur, Mask
from anonaudit.attacks.reid import (
    Pairs,
    ReIdentification,
    eer_estimate,
    equal_error_rate,
    open_set_threshold,
)
from anonaudit.data.imageset import Release
from anonaudit.errors import ConfigError
from tests.face_data import synthetic_identities


def _pairs(genuine: list[float], impostor: list[float]) -> Pairs:
    scores = np.array(genuine + impostor, dtype=float)
    flags = np.array([True] * len(genuine) + [False] * len(impostor))
    return Pairs(scores, flags, np.arange(len(scores)))


def test_eer_equals_the_hand_computed_one():
    # Accepting scores >= 0.6 rejects one genuine of 4 (FRR 1/4) and accepts one impostor of 4
    # (0.7: FAR 1/4); no threshold makes both smaller, so the EER is 1/4.
    pairs = _pairs([0.9, 0.8, 0.6, 0.4], [0.7, 0.3, 0.2, 0.1])
    assert equal_error_rate(pairs) == pytest.approx(0.25)
    estimate = eer_estimate(pairs, n_boot=50)
    assert estimate.value == pytest.approx(0.75)
    assert estimate.ci_low <= 0.75 <= estimate.ci_high
    assert equal_error_rate(_pairs([0.5, 0.5], [0.5, 0.5])) == pytest.approx(0.5)  # no information


def test_eer_the_sample_cannot_resolve_is_nan_with_the_pairs_needed():
    separated = eer_estimate(_pairs([0.9, 0.8], [0.2, 0.1]))  # EER 0: no error of either kind
    assert math.isnan(separated.value) and separated.n == 0 and not separated.standard
    assert "needs >= 3" in separated.reason
    # EER 1/3 (FAR stays 1/3 while FRR rises from 1/5 to 2/5): 3 pairs of each kind resolve it
    thin = eer_estimate(_pairs([0.9, 0.8, 0.6, 0.4, 0.35], [0.7, 0.3, 0.2]))
    assert thin.value == pytest.approx(2 / 3)
    # EER 1/4 (FAR stays 1/4 while FRR rises from 0 to 1/3) needs 4 of each kind, has 3 genuine pairs
    few = eer_estimate(_pairs([0.9, 0.8, 0.4], [0.7, 0.3, 0.2, 0.1]))
    assert math.isnan(few.value) and "needs >= 4" in few.reason and "has 3" in few.reason


def test_open_set_threshold_admits_at_most_far_of_the_nonmated_searches():
    nonmated = np.array([0.9, 0.8, 0.8, 0.5, 0.4, 0.3, 0.3, 0.2, 0.1, 0.0])
    assert open_set_threshold(nonmated, 0.1) == pytest.approx(0.8)  # accepts > 0.8: only 0.9
    assert open_set_threshold(nonmated, 0.25) == pytest.approx(0.8)  # two allowed, but 0.8 is tied
    assert open_set_threshold(nonmated, 0.3) == pytest.approx(0.5)
    assert open_set_threshold(nonmated, 0.05) == pytest.approx(0.9)  # none allowed


@pytest.fixture(scope="module")
def gallery():
    return synthetic_identities(10, 3, size=32, noise=15.0, seed=4)


@pytest.fixture(scope="module")
def auxiliary():
    return synthetic_identities(40, 3, size=32, noise=15.0, seed=5, prefix="a")  # 120 >= 1 / 0.01


def _release(originals, anonymizer) -> Release:
    anon = anonymizer.anonymize(originals, show_progress=False)
    return Release(originals, anon, name=anonymizer.name, params=anonymizer.get_params(),
                   degradation=anonymizer.degradation(), anonymizer=anonymizer)


def _attack(**kw) -> ReIdentification:
    return ReIdentification(embedder="pixels", gallery="other_images", n_boot=50, **kw)


def test_open_set_rate_with_the_threshold_set_on_the_auxiliary_images(gallery, auxiliary):
    result = _attack().fit(auxiliary).run(_release(gallery, GaussianBlur(sigma=0.5)))
    dir_ = result.metric("dir@far=0.01")
    rank1 = result.metric("rank1")
    assert dir_.release.n == rank1.release.n
    assert dir_.release.value <= rank1.release.value  # ranked first and accepted
    assert dir_.release.value > 0.5, dir_.release  # these identities stand far apart from the others
    assert dir_.release.extra["nonmated"] == len(auxiliary)
    assert dir_.release.extra["nonmated_accepted"] <= 0.01
    assert dir_.baseline == pytest.approx(0.01 * rank1.baseline)
    assert dir_.original.value > 0.5
    assert any("threshold at FAR=0.01 set on 120 auxiliary images" in n for n in result.notes)
    assert "1-eer" in [m.metric for m in result.metrics]


def test_open_set_on_a_mask_accepts_nothing(gallery, auxiliary):
    dir_ = _attack().fit(auxiliary).run(_release(gallery, Mask())).metric("dir@far=0.01")
    assert dir_.release.value == 0.0
    assert dir_.release.ci_low <= dir_.baseline


def test_open_set_far_the_auxiliary_images_cannot_resolve(gallery, auxiliary):
    dir_ = _attack(open_set_far=0.001).fit(auxiliary).run(_release(gallery, GaussianBlur(sigma=0.5))).metric(
        "dir@far=0.001")
    assert math.isnan(dir_.release.value) and "needs >= 1000 non-mated searches, has 120" in dir_.release.reason
    unfitted = _attack().run(_release(gallery, GaussianBlur(sigma=0.5))).metric("dir@far=0.01")
    assert math.isnan(unfitted.release.value) and "not fitted" in unfitted.release.reason
    assert "dir@far=0.01" not in [m.metric for m in _attack(open_set_far=None).run(
        _release(gallery, GaussianBlur(sigma=0.5))).metrics]
    with pytest.raises(ConfigError, match="open_set_far"):
        ReIdentification(open_set_far=1.5)
