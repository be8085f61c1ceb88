"""Linkage and singling out: pair linkability of surrogates, effective k of k-anonymity releases and
the anonymeter framing, on planted answers."""

from __future__ import annotations

import numpy as np
import pytest
from face_data import synthetic_identities

from anonaudit.anonymizers.classical import Mask
from anonaudit.anonymizers.miku import Direct
from anonaudit.attacks.linkage import AnonymeterLinkability, EffectiveK, Linkability, equivalence_classes
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.datasets import synthetic_plates
from anonaudit.errors import DataError


@pytest.fixture(scope="module")
def people():
    return synthetic_identities(12, 3, seed=0, prefix="p")


def surrogate_release(images: ImageSet, per_person: bool) -> Release:
    """Every face replaced by a random surrogate: one per person (linkable) or one per image (not)."""
    rng = np.random.default_rng(7)
    seeds = {p: i for i, p in enumerate(sorted(set(images.identities)))}
    out = []
    for i in range(len(images)):
        r = np.random.default_rng(seeds[images.identities[i]] if per_person else 1000 + i)
        out.append(
            r.integers(0, 256, images[i].shape, dtype=np.uint8)
            if per_person
            else rng.integers(0, 256, images[i].shape, dtype=np.uint8)
        )
    return Release(images, images.with_images(out), "surrogate", {})


def test_consistent_surrogates_are_linkable_and_fresh_ones_are_not(people):
    attack = Linkability(embedder={"name": "pixels", "crop": 1.0}, n_boot=100).fit(None)
    same = attack.run(Release(people, people, "unchanged", {}))
    assert same.metric("pair_roc_auc").release.value == pytest.approx(same.metric("pair_roc_auc").original.value)
    consistent = attack.run(surrogate_release(people, per_person=True)).metric("pair_roc_auc")
    assert consistent.release.value == 1.0 and consistent.risk >= 0.99  # nothing of the face left, still linkable
    fresh = attack.run(surrogate_release(people, per_person=False)).metric("pair_roc_auc")
    assert fresh.release.ci_low <= 0.5 <= fresh.release.ci_high
    masked = attack.run(Release(people, Mask().anonymize(people, show_progress=False), "mask", {})).metric(
        "pair_roc_auc"
    )
    assert masked.release.value == 0.5 and masked.risk == 0.0  # identical images: every pair ties


def test_equivalence_classes_by_hand():
    a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 9, np.uint8)
    images = ImageSet.from_arrays([a, b, a, b + 1, a])
    assert equivalence_classes(images).tolist() == [0, 1, 0, 2, 1 - 1]
    assert equivalence_classes(images, tolerance=1.5).tolist() == [0, 1, 0, 1, 0]  # b and b + 1 merge


def test_effective_k_of_direct_meets_its_claim_and_a_leaky_release_does_not():
    people = synthetic_identities(36, 1, seed=2, prefix="s")  # one image per person: the 1/K bound is per person
    release = Release(people, Direct(k=3, n_search=None).anonymize(people, show_progress=False), "direct", {"k": 3})
    result = EffectiveK().run(release)
    below = result.metric("below_k").release
    assert below.value == 0.0 and below.extra["effective_k"] >= 3 and below.extra["claimed_k"] == 3
    assert result.metric("below_k").original.value == 1.0  # every original is its own class
    rank1 = result.metric("rank1_reid").release
    assert rank1.value <= 1 / 3 + 0.15 and not rank1.extra["exceeds_k_bound"]
    # a release that claims K=3 but gives four people their own image back
    leaky = [release.anonymized[i] if i >= 4 else people[i] for i in range(len(people))]
    result = EffectiveK(k=3).run(Release(people, people.with_images(leaky), "claims-k", {}))
    assert (
        result.metric("below_k").release.value == pytest.approx(4 / 36)
        and result.metric("below_k").release.extra["effective_k"] == 1
    )
    with pytest.raises(DataError, match="claims no k"):
        EffectiveK().run(Release(people, people, "mask", {}))


def test_anonymeter_risk_separates_leak_from_control():
    data = synthetic_plates(n=80, seed=1)
    aux, evaluation = data.subset(range(40)), data.subset(range(40, 80))
    attack = AnonymeterLinkability().fit(aux)
    same = attack.run(Release(evaluation, evaluation, "unchanged", {})).metric("linkability")
    assert same.release.value == 1.0 and same.baseline < 0.5 and same.risk > 0.8
    assert same.release.extra["main_above_naive"]
    masked = attack.run(Release(evaluation, Mask().anonymize(evaluation, show_progress=False), "mask", {})).metric(
        "linkability"
    )
    # every released image is the same: halves link only by chance, for targets and controls alike
    assert masked.release.ci_low <= masked.release.extra["naive_baseline"] * 4 and masked.risk <= 0.15
