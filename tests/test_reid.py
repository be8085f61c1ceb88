"""Re-identification: metric functions against hand-computed answers and scikit-learn, planted
identity signals, the parrot attacker's exact re-anonymization match, and LFW with dlib."""

from __future__ import annotations

import numpy as np
import pytest
from face_data import lfw_people, needs_lfw, synthetic_identities
from sklearn.metrics import roc_auc_score

from anonaudit.anonymizers.classical import Mask, Noise, Pixelate
from anonaudit.attacks.reid import (
    Pairs,
    ReIdentification,
    identification_ranks,
    identity_scores,
    roc_auc,
    tar_at_far,
    verification_estimates,
    verification_pairs,
)
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ATTACKS


def _release(originals: ImageSet, anonymizer, name: str | None = None) -> Release:
    anon = anonymizer.anonymize(originals, show_progress=False)
    return Release(originals, anon, name=anonymizer.name if name is None else name, params=anonymizer.get_params())


# -- metric functions ---------------------------------------------------------------------------
def test_identity_scores_take_the_best_image_per_identity():
    sim = np.array([[0.1, 0.9, 0.3], [0.5, -np.inf, 0.2]])
    scores, ids = identity_scores(sim, ["b", "a", "b"])
    assert ids == ["a", "b"]
    np.testing.assert_array_equal(scores, [[0.9, 0.3], [-np.inf, 0.5]])


def test_identification_ranks_hand_computed():
    gallery = ["a", "b", "c", "a"]
    sim = np.array([
        [0.9, 0.1, 0.2, 0.3],  # true a: best -> rank 1
        [0.9, 0.1, 0.2, 0.3],  # true b: a (0.9) and c (0.2) above -> rank 3
        [0.1, 0.5, 0.4, 0.2],  # true c: b above -> rank 2
        [-np.inf, 0.8, 0.1, -np.inf],  # true a, both its images excluded -> not rankable
    ])
    ranks, n_ids = identification_ranks(sim, ["a", "b", "c", "a"], gallery)
    np.testing.assert_array_equal(ranks, [1, 3, 2, 0])
    np.testing.assert_array_equal(n_ids, [3, 3, 3, 2])


def test_ties_are_random_guesses():
    # A probe with no information (all similarities equal) gets a uniformly random rank.
    n_probes, n_ids = 4000, 8
    gallery = [f"id{i}" for i in range(n_ids)]
    probes = [gallery[i % n_ids] for i in range(n_probes)]
    ranks, _ = identification_ranks(np.zeros((n_probes, n_ids)), probes, gallery, seed=1)
    assert ranks.min() == 1 and ranks.max() == n_ids
    assert np.mean(ranks == 1) == pytest.approx(1 / n_ids, abs=0.02)
    assert np.mean(ranks <= 5) == pytest.approx(5 / n_ids, abs=0.03)


def test_auc_and_tar_match_references_with_ties():
    rng = np.random.default_rng(0)
    ids = [f"p{i % 12}" for i in range(60)]
    sim = np.round(rng.normal(size=(60, 60)) + 0.8 * (np.array(ids)[:, None] == np.array(ids)[None, :]), 1)
    np.fill_diagonal(sim, -np.inf)
    pairs = verification_pairs(sim, ids, ids)
    assert pairs.genuine.sum() == 60 * 4 and len(pairs.scores) == 60 * 59
    assert roc_auc(pairs) == pytest.approx(roc_auc_score(pairs.genuine, pairs.scores), abs=1e-12)
    imp = np.sort(pairs.scores[~pairs.genuine])[::-1]
    for far in (1e-3, 0.01, 0.1, 0.5):
        threshold = imp[int(np.floor(far * len(imp)))]  # at most floor(far * n) impostors above it
        assert np.mean(imp > threshold) <= far
        assert tar_at_far(pairs, far) == pytest.approx(np.mean(pairs.scores[pairs.genuine] > threshold))


def test_tar_hand_computed():
    # 10 impostors 0.0 .. 0.9, genuine 0.85 and 0.95: at FAR 0.1 one impostor (0.9) may pass,
    # so the threshold is 0.8 and both genuine pairs are accepted; at FAR 0 only 0.95 passes 0.9.
    scores = np.r_[np.arange(10) / 10, 0.85, 0.95]
    pairs = Pairs(scores, np.r_[np.zeros(10, bool), True, True], np.zeros(12, int))
    assert tar_at_far(pairs, 0.1) == 1.0
    assert tar_at_far(pairs, 0.05) == 0.5
    assert roc_auc(pairs) == pytest.approx((9 + 10) / 20)


def test_impostor_sampling_and_bootstrap_ci():
    rng = np.random.default_rng(1)
    ids = [f"p{i % 20}" for i in range(100)]
    same = np.array(ids)[:, None] == np.array(ids)[None, :]
    sim = rng.normal(size=(100, 100)) + 1.5 * same
    pairs = verification_pairs(sim, ids, ids, impostors_per_probe=30, seed=0)
    assert (~pairs.genuine).sum() == 100 * 30 and pairs.genuine.sum() == 100 * 5
    tar, auc = verification_estimates(pairs, far=0.01, n_boot=100)
    assert auc.ci_low <= auc.value <= auc.ci_high and 0.8 < auc.value < 0.95
    assert tar.ci_low <= tar.value <= tar.ci_high
    assert auc.n == 500 and auc.extra["impostor_pairs"] == 3000


def test_tar_at_a_far_the_impostors_cannot_resolve_is_not_measured():
    """3,000 impostor pairs resolve FAR 0.001 (3 may pass) but not 0.0001 (it needs 10,000): there the
    TAR would be measured at a FAR of 0, so it is not reported (value nan, n=0, not standard), with the
    sample size needed; the AUC is still reported."""
    rng = np.random.default_rng(1)
    ids = [f"p{i % 20}" for i in range(100)]
    sim = rng.normal(size=(100, 100)) + 1.5 * (np.array(ids)[:, None] == np.array(ids)[None, :])
    pairs = verification_pairs(sim, ids, ids, impostors_per_probe=30, seed=0)
    resolved, _ = verification_estimates(pairs, far=0.001, n_boot=20)
    tar, auc = verification_estimates(pairs, far=0.0001, n_boot=20)
    assert resolved.n == 500 and 0 < resolved.value < 1
    assert np.isnan(tar.value) and tar.n == 0 and not tar.standard
    assert "needs >= 10000 impostor pairs, has 3000" in tar.reason
    assert auc.n == 500 and 0.8 < auc.value < 0.95


# -- the attack on planted identity signals (pixels embedder) -----------------------------------
@pytest.fixture(scope="module")
def synthetic():
    return synthetic_identities(30, 3, seed=0)


def test_near_identity_release_is_as_identifiable_as_the_originals(synthetic):
    attack = ATTACKS.create("reid", embedder="pixels", gallery="other_images").fit(None)
    result = attack.run(_release(synthetic, Noise(std=1.0)))
    r1 = result.metric("rank1")
    assert r1.original.value > 0.9  # the planted signal is strong
    assert abs(r1.release.value - r1.original.value) <= 0.05
    assert r1.baseline == pytest.approx(1 / 30)
    assert r1.release.n == 90 and r1.risk > 0.9


def test_full_mask_is_chance(synthetic):
    result = ReIdentification(embedder="pixels", gallery="originals").run(_release(synthetic, Mask(region="image")))
    r1, r5, auc, tar = (result.metric(m) for m in ("rank1", "rank5", "roc_auc", "tar@far=0.001"))
    # A constant image has no pixel embedding: every probe is a random guess among 30 identities.
    assert r1.release.ci_low <= 1 / 30 <= r1.release.ci_high
    assert r5.release.ci_low <= 5 / 30 <= r5.release.ci_high
    assert auc.release.value == 0.5 and tar.release.value == 0.0
    assert "90 release images have no embedding" in result.notes[1]


def test_gallery_originals_matches_own_source_photo(synthetic):
    # Mild blur: the probe's own original is in the gallery and remains its best match.
    from anonaudit.anonymizers.classical import GaussianBlur

    result = ReIdentification(embedder="pixels", gallery="originals").run(_release(synthetic, GaussianBlur(sigma=1.0)))
    assert result.metric("rank1").release.value == 1.0
    assert (result.details["rank"] == 1).all()


def test_parrot_re_anonymizes_the_gallery_and_matches_exactly(synthetic):
    # Heavy pixelation hides the identity from the direct attacker, but it is deterministic: the parrot
    # attacker pixelates its gallery of source photos the same way and finds exact copies.
    release = _release(synthetic, Pixelate(block=32))
    result = ReIdentification(embedder="pixels", gallery="originals", parrot=True).run(release)
    assert result.metric("rank1").release.value < 0.5
    assert result.metric("parrot_rank1").release.value == 1.0
    assert any("90 of 90 re-anonymized originals are pixel-identical" in n for n in result.notes)
    assert "rank_parrot" in result.details


def test_parrot_skipped_for_unregistered_release(synthetic):
    release = _release(synthetic, Pixelate(block=8), name="somebody_elses_tool")
    result = ReIdentification(embedder="pixels", parrot=True).run(release)
    assert not any(m.metric.startswith("parrot_") for m in result.metrics)
    assert any("parrot attacker skipped" in n for n in result.notes)


def test_lda_projection_learned_on_auxiliary_identities_removes_nuisance():
    # Identity lives in a faint pattern; a large random illumination gradient dominates raw pixels.
    def people(n, seed, prefix):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:64, 0:64] / 63.0 - 0.5
        images, ids = [], []
        for p in range(n):
            pattern = rng.normal(0, 12, (64, 64))
            for _ in range(4):
                img = (
                    128 + pattern + rng.normal(0, 70) * xx * 2 + rng.normal(0, 70) * yy * 2 + rng.normal(0, 4, (64, 64))
                )
                grey = np.clip(np.round(img), 0, 255).astype(np.uint8)
                images.append(np.repeat(grey[..., None], 3, axis=2))
                ids.append(f"{prefix}{p}")
        return ImageSet.from_arrays(images, [f"{i}-{k}" for k, i in enumerate(ids)], identities=ids)

    aux, evaluation = people(40, 1, "aux"), people(25, 2, "ev")
    release = _release(evaluation, Noise(std=1.0))
    emb = {"name": "pixels", "size": 16}
    plain = ReIdentification(embedder=emb, gallery="other_images").fit(aux).run(release)
    lda = ReIdentification(embedder=emb, gallery="other_images", projection="lda").fit(aux).run(release)
    assert lda.metric("rank1").release.value > plain.metric("rank1").release.value + 0.3


def test_errors():
    with pytest.raises(ConfigError):
        ReIdentification(gallery="everyone")
    with pytest.raises(ConfigError):
        ReIdentification(projection="pca")
    with pytest.raises(DataError, match="auxiliary"):
        ReIdentification(projection="lda").fit(None)
    originals = synthetic_identities(3, 2, seed=3)
    no_ids = ImageSet.from_arrays([originals[i] for i in range(len(originals))])
    with pytest.raises(DataError, match="identity"):
        ReIdentification(embedder="pixels").run(Release(no_ids, no_ids))
    overlapping = originals.subset([0, 1])
    with pytest.raises(DataError, match="identity-disjoint"):
        ReIdentification(embedder="pixels", projection="lda").fit(overlapping).run(Release(originals, originals))


# -- LFW with the offline default embedder (dlib) ------------------------------------------------
@needs_lfw
def test_lfw_dlib_tiny_noise_close_to_originals_and_mask_near_chance():
    originals = lfw_people(30, min_images=2)
    attack = ReIdentification(embedder="dlib", gallery="other_images", n_boot=100)
    near = attack.run(_release(originals, Noise(std=2.0)))
    r1 = near.metric("rank1")
    assert r1.original.value > 0.85  # dlib on LFW
    assert abs(r1.release.value - r1.original.value) <= 0.05
    assert near.metric("roc_auc").release.value > 0.97

    masked = attack.run(_release(originals, Mask(region="image")))
    m1 = masked.metric("rank1")
    assert m1.release.value <= 0.1 and m1.release.ci_low <= m1.baseline
    assert abs(masked.metric("roc_auc").release.value - 0.5) < 0.15
    assert m1.risk < 0.1
