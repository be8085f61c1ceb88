"""Membership inference: LiRA-convention metrics by hand, planted leaks, over-fitted tiny targets
trained in the test (must be found) and targets trained on disjoint data (must look like chance)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anonaudit.anonymizers.classical import Mask
from anonaudit.attacks.membership import (
    CriticScore,
    DistanceToClosestRecord,
    LikelihoodRatio,
    ReconstructionLoss,
    membership_metrics,
    non_members_needed,
    tpr_at_fpr,
    tpr_estimate,
    tpr_fpr_at,
)
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.datasets import synthetic_plates
from anonaudit.errors import DataError
from anonaudit.registry import ANONYMIZERS
from anonaudit.stats import wilson_interval


@pytest.fixture(scope="module")
def plates():
    import torch

    torch.set_num_threads(1)
    data = synthetic_plates(n=56, seed=0)
    return data.subset(range(8)), data.subset(range(8, 40)), data.subset(range(40, 56))


def trained(name: str, data: ImageSet, steps: int, **params):
    """``name`` trained on ``data`` for ``steps`` steps of 8 through the training loop (its recipe recorded)."""
    from anonaudit.registry import load_builtin_components
    from anonaudit.training import TrainConfig

    load_builtin_components()
    target = ANONYMIZERS.create(name, device="cpu", **params)
    return target.train_with(
        data, TrainConfig(steps=steps, batch_size=8, device="cpu", checkpoint_every=0, sample_every=0, n_samples=0)
    )


def release_of(target, evaluation: ImageSet, training_keys) -> Release:
    return Release(evaluation, target.anonymize(evaluation, show_progress=False), target.name, target.get_params(),
                   anonymizer=target, training_keys=training_keys)


def test_tpr_at_fpr_and_auc_by_hand():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.1, 0.7, 0.2, 0.15, 0.05])
    assert tpr_at_fpr(y, s, 0.001) == 0.5  # above the largest non-member score 0.7: 0.9, 0.8
    assert tpr_at_fpr(y, s, 0.25) == 0.75  # one of 4 non-members may pass: threshold 0.2
    assert tpr_fpr_at(y, s, 0.25) == (0.75, 0.25)  # the FPR achieved: 0.7 is above the threshold
    m = {x.metric: x for x in membership_metrics(y, s, n_boot=200)}
    assert m["roc_auc"].release.value == pytest.approx(12 / 16)  # pairs ranked right: 4 + 4 + 3 + 1
    assert m["roc_auc"].baseline == 0.5 and m["tpr@fpr=0.001"].baseline == 0.001 and m["roc_auc"].original is None
    # 4 non-members resolve no FPR below 1/4: both TPR rows are not measured, not standard, and say what they need
    tpr = m["tpr@fpr=0.001"].release
    assert (
        math.isnan(tpr.value) and tpr.n == 0 and not tpr.standard and "needs >= 1000 non-members, has 4" in tpr.reason
    )
    assert "needs >= 100 non-members, has 4" in m["tpr@fpr=0.01"].release.reason
    assert m["roc_auc"].release.ci_low <= 12 / 16 <= m["roc_auc"].release.ci_high
    perfect = {x.metric: x for x in membership_metrics(y, np.r_[np.ones(4), np.zeros(4)] + 0.0, n_boot=50)}
    assert perfect["roc_auc"].release.value == 1.0 and perfect["roc_auc"].risk == 1.0


def test_tpr_is_reported_only_where_the_non_members_resolve_the_fpr():
    """The rule: TPR at FPR x needs ceil(1/x) non-members; at the rule it is reported with the FPR achieved
    and a CI covering the members' binomial noise even when every bootstrap resample agrees."""
    assert non_members_needed(0.001) == 1000 and non_members_needed(0.01) == 100 and non_members_needed(0.003) == 334
    y = np.r_[np.ones(50, int), np.zeros(100, int)]
    score = np.r_[np.full(50, -1.0), np.arange(100.0)]  # every member below every non-member: TPR 0
    e = tpr_estimate(y, score, 0.01, n_boot=100, seed=0)
    assert e.value == 0.0 and e.standard and e.n == 150 and e.extra["fpr_achieved"] == 0.01
    assert e.ci_low == 0.0 and e.ci_high == pytest.approx(wilson_interval(0, 50)[1])  # not [0, 0]
    assert tpr_estimate(y[1:], score[1:], 0.01, 100, 0).n == 149  # 100 non-members still resolve 1%
    short = tpr_estimate(y[:-1], score[:-1], 0.01, 100, 0)  # 99 non-members
    assert math.isnan(short.value) and "needs >= 100 non-members, has 99" in short.reason


def test_planted_copies_are_found_by_dcr_per_image_and_per_person(plates):
    members, evaluation, _ = plates
    def people(s, tag):
        return ImageSet.from_arrays(
            [s[i] for i in range(len(s))], s.keys, identities=[f"{tag}{i // 2}" for i in range(len(s))]
        )

    members, evaluation = people(members, "m"), people(evaluation, "n")
    # a release whose first 8 images are exact copies of the 8 training images (memorised outputs)
    copies = [members[i] for i in range(8)] + [evaluation[i] for i in range(8, len(evaluation))]
    leak = Release(
        evaluation,
        evaluation.with_images(copies),
        "mask",
        Mask().get_params(),
        anonymizer=Mask(),
        training_keys=members.keys,
    )
    result = DistanceToClosestRecord(max_per_side=8, n_boot=200).fit(members).run(leak)
    auc = result.metric("roc_auc").release
    assert auc.value > 0.95 and result.metric("tpr@fpr=0.001").release.n == 0  # 8 non-members resolve no low FPR
    person = result.metric("identity_roc_auc")  # 4 member people, the non-members sampled from 16
    assert person.release.value == 1.0 and "4 member" in person.description and person.release.n >= 8
    # the same release without the copies: the members are no closer than anyone else
    clean = Release(evaluation, evaluation, "mask", Mask().get_params(), anonymizer=Mask(), training_keys=members.keys)
    auc = DistanceToClosestRecord(max_per_side=8, n_boot=200).fit(members).run(clean).metric("roc_auc").release
    assert auc.ci_low <= 0.5 <= auc.ci_high


@pytest.mark.slow
def test_overfitted_gan_critic_is_detected_and_a_disjoint_one_is_not(plates):
    members, evaluation, other = plates
    gan = dict(image_size=16, latent_dim=32, g_channels=16, d_channels=32, lr=1e-3)
    target = trained("plate_wgan", members, 600, **gan)
    result = CriticScore(n_boot=300).fit(members).run(release_of(target, evaluation, members.keys))
    auc = result.metric("roc_auc").release
    assert auc.n == 16 and auc.value >= 0.9 and auc.ci_low > 0.6, auc
    # trained on other plates: the claimed members are as unseen as the non-members
    disjoint = trained("plate_wgan", other, 600, **gan)
    auc = (
        CriticScore(n_boot=300)
        .fit(members)
        .run(release_of(disjoint, evaluation, members.keys))
        .metric("roc_auc")
        .release
    )
    assert auc.ci_low <= 0.5 <= auc.ci_high, auc


def test_overfitted_autoencoder_is_detected_by_its_reconstruction_error(plates):
    members, evaluation, other = plates
    ae = dict(mapper="autoencoder", size=16, latent=16, lr=3e-3)
    target = trained("miku", members, 250, **ae)
    auc = (
        ReconstructionLoss(n_boot=300)
        .fit(members)
        .run(release_of(target, evaluation, members.keys))
        .metric("roc_auc")
        .release
    )
    assert auc.value >= 0.9 and auc.ci_low > 0.6, auc
    disjoint = trained("miku", other, 250, **ae)
    auc = (
        ReconstructionLoss(n_boot=300)
        .fit(members)
        .run(release_of(disjoint, evaluation, members.keys))
        .metric("roc_auc")
        .release
    )
    assert auc.ci_low <= 0.5 <= auc.ci_high, auc


def test_planted_copies_are_found_in_embedding_space(plates):
    members, evaluation, _ = plates
    copies = [members[i] for i in range(8)] + [evaluation[i] for i in range(8, len(evaluation))]
    leak = Release(
        evaluation, evaluation.with_images(copies), "mask", {}, anonymizer=Mask(), training_keys=members.keys
    )
    attack = DistanceToClosestRecord(
        space="embedding", embedder={"name": "pixels", "crop": 1.0}, max_per_side=8, n_boot=200
    )
    result = attack.fit(members).run(leak)
    assert result.metric("roc_auc").release.value > 0.95 and "cosine distance of pixels" in " ".join(result.notes)


def test_aia_trained_on_other_plates_gives_chance(plates):
    members, evaluation, other = plates
    disjoint = trained("aia", other, 300, size=16, alpha=0.0, beta=0.0, pretrain_steps=300)  # AIA's encoder and decoder
    auc = (
        ReconstructionLoss(n_boot=200)
        .fit(members)
        .run(release_of(disjoint, evaluation, members.keys))
        .metric("roc_auc")
        .release
    )
    assert auc.n == 16 and auc.ci_low <= 0.5 <= auc.ci_high, auc


def test_pca_mapper_reconstructs_its_training_images_exactly(plates):
    members, evaluation, _ = plates
    target = ANONYMIZERS.create("miku", mapper="pca", n_components=8, size=16, k=2).fit(
        members
    )  # 8 components, 8 images
    result = ReconstructionLoss(n_boot=200).fit(members).run(release_of(target, evaluation, target.training_keys_))
    assert (
        result.metric("roc_auc").release.value == 1.0
        and "needs >= 1000" in result.metric("tpr@fpr=0.001").release.reason
    )


def test_membership_needs_a_trained_target(plates):
    members, evaluation, _ = plates
    plain = Release(evaluation, Mask().anonymize(evaluation, show_progress=False), "mask", {})
    for attack in (CriticScore(), ReconstructionLoss(), DistanceToClosestRecord(), LikelihoodRatio()):
        assert {"anonymizer", "training_keys"} <= set(attack.needs)
        with pytest.raises(DataError, match="trained target"):
            attack.fit(members).run(plain)
    # a classical target has no critic to read
    with_keys = Release(evaluation, evaluation, "mask", {}, anonymizer=Mask(), training_keys=members.keys)
    with pytest.raises(DataError, match="critic"):
        CriticScore().fit(members).run(with_keys)
