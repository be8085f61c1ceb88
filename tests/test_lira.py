"""LiRA as in Carlini et al. (2022): per-model normalised signal, balanced IN/OUT shadows trained as the
target was, online and offline; known answers by hand, a memorising target found, a disjoint one at chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from anonaudit.anonymizers.classical import Mask
from anonaudit.attacks.membership import (
    LikelihoodRatio,
    MembershipAttack,
    balanced_assignment,
    gaussian_fit,
    lira_scores,
)
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.datasets import synthetic_plates
from anonaudit.errors import ConfigError
from anonaudit.registry import ANONYMIZERS, load_builtin_components
from anonaudit.training import TrainConfig, train


@pytest.fixture(scope="module")
def plates():
    """48 training plates (members), 96 evaluation plates (non-members come from them), 32 other plates."""
    import torch

    torch.set_num_threads(1)
    load_builtin_components()
    data = synthetic_plates(n=176, seed=0)
    return data.subset(range(48)), data.subset(range(48, 144)), data.subset(range(144, 176))


def release_of(target, evaluation: ImageSet, members: ImageSet) -> Release:
    """A release whose claimed training set is ``members`` (whatever ``target`` was really trained on)."""
    return Release(evaluation, evaluation, target.name, target.get_params(), anonymizer=target,
                   training_keys=members.keys)


def tiny_ae(**train):
    """A tiny autoencoder MIKU and a CPU training config of batches of 8 (``train``: epochs or steps)."""
    return ANONYMIZERS.create("miku", mapper="autoencoder", size=16, latent=16, lr=3e-3, device="cpu"), TrainConfig(
        **{"batch_size": 8, "device": "cpu", "checkpoint_every": 0, "sample_every": 0, "n_samples": 0, **train}
    )


def test_lira_scores_by_hand():
    """IN shadows score 1 and 3 (mean 2), OUT shadows -1 and 1 (mean 0), each side's pooled sd sqrt(2)
    (residuals +-1, one degree of freedom per candidate): online = s - 1, offline = s / sqrt(2)."""
    inside = np.array([[True, False], [False, True], [True, False], [False, True]])
    shadows = np.where(inside, np.array([[1.0], [1.0], [3.0], [3.0]]), np.array([[-1.0], [-1.0], [1.0], [1.0]]))
    mu, sd = gaussian_fit(shadows, inside)
    assert np.allclose(mu, 2) and sd == pytest.approx(math.sqrt(2))
    observed = np.array([0.5, 4.0])
    online, offline = lira_scores(observed, shadows, inside)
    assert np.allclose(online, observed - 1) and np.allclose(offline, observed / math.sqrt(2))
    assert online[0] == pytest.approx(norm.logpdf(0.5, 2, math.sqrt(2)) - norm.logpdf(0.5, 0, math.sqrt(2)))


def test_balanced_assignment_puts_every_candidate_in_and_out_equally():
    y = np.r_[np.ones(5, int), np.zeros(7, int)]
    inside = balanced_assignment(y, 6, np.random.default_rng(0))
    assert (inside.sum(axis=0) == 3).all()  # IN exactly 3 of 6 shadows, OUT of 3: no candidate without a side
    assert (inside[0::2] == ~inside[1::2]).all()  # complementary pairs
    assert set(inside[:, y == 1].sum(axis=1)) <= {2, 3} and set(inside[:, y == 0].sum(axis=1)) <= {3, 4}
    with pytest.raises(ConfigError, match="even number"):
        balanced_assignment(y, 3, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="even integer >= 4"):
        LikelihoodRatio(n_shadow=5)


def test_shadows_get_the_targets_number_of_steps_not_its_epochs(plates, tmp_path):
    members, _, _ = plates
    target, config = tiny_ae(epochs=2)
    target.train_with(members.subset(range(16)), config)  # 16 images, batches of 8: 2 steps an epoch
    assert target.training_recipe().steps == 4 and target.training_recipe().epochs is None
    shadow = target.retrained(members.subset(range(16, 24)), seed=5)  # 8 images: 1 step an epoch
    assert shadow.training_recipe().steps == 4 and shadow.training_keys_ == members.keys[16:24]
    assert shadow.get_params() == {**target.get_params(), "seed": 5}
    # a checkpoint of `anonaudit train` carries its recipe
    checkpoint = train(tiny_ae(epochs=2)[0], members.subset(range(16)), config, tmp_path, resume=False, quiet=True)
    loaded = tiny_ae(epochs=2)[0]
    loaded.set_params(checkpoint=str(checkpoint))
    assert loaded.training_recipe().steps == 4 and loaded.training_recipe().batch_size == 8


class _OneUnscorable(MembershipAttack):
    """Scores that separate members perfectly, except one candidate that cannot be scored."""

    name = "one_unscorable"

    def __init__(self, max_per_side: int = 8, n_boot: int = 50, seed: int = 0):
        self.max_per_side = max_per_side
        self.n_boot = n_boot
        self.seed = seed

    def scores(self, release, candidates, y):
        score = y.astype(float)
        score[0] = np.nan
        return {"": score}, []


def test_a_candidate_that_cannot_be_scored_is_reported_never_imputed(plates):
    members, evaluation, _ = plates
    release = Release(evaluation, evaluation, "mask", {}, anonymizer=Mask(), training_keys=members.keys)
    result = _OneUnscorable().fit(members).run(release)
    auc = result.metric("roc_auc").release
    assert auc.n == 15 and auc.value == 1.0  # 7 members and 8 non-members scored
    assert "1 of 16 candidates could not be scored and are left out (never imputed)" in " ".join(result.notes)
    assert result.details["scored"].sum() == 15 and np.isnan(result.details["score"][~result.details["scored"]]).all()


def test_lira_finds_a_memorising_target_and_reports_both_variants(plates):
    """A PCA mapper fitted on 48 plates reconstructs them far better than unseen ones. 24 + 24 candidates:
    each shadow trains on 24 of them and 24 other images, 48 like the target."""
    members, evaluation, _ = plates
    target = ANONYMIZERS.create("miku", mapper="pca", size=16, n_components=16).fit(members)
    result = LikelihoodRatio(signal="reconstruction", n_shadow=4, max_per_side=24, n_boot=200).fit(members).run(
        release_of(target, evaluation, members)
    )
    online, offline = result.metric("roc_auc").release, result.metric("offline_roc_auc").release
    assert online.n == 48 and online.value >= 0.9 and offline.value >= 0.9, (online, offline)
    assert online.extra["n_shadow"] == 4 and online.extra["shadows_per_side"] == 2
    assert online.extra["shadow_training_images"] == 48
    assert "every candidate IN 2 and OUT of 2" in " ".join(result.notes)


def test_lira_on_a_target_trained_on_disjoint_data_is_at_chance(plates):
    """Trained on 32 other plates: the 48 claimed members are as unseen as the 48 non-members, and 96
    candidates give a CI narrow enough (below 0.3 wide) for covering 0.5 to mean something."""
    members, evaluation, other = plates
    target = ANONYMIZERS.create("miku", mapper="pca", size=16, n_components=16).fit(other)
    result = LikelihoodRatio(signal="reconstruction", n_shadow=4, max_per_side=48, n_boot=300).fit(members).run(
        release_of(target, evaluation, members)
    )
    for name in ("roc_auc", "offline_roc_auc"):
        auc = result.metric(name).release
        assert auc.n == 96 and auc.ci_low <= 0.5 <= auc.ci_high and auc.ci_high - auc.ci_low < 0.3, (name, auc)


@pytest.mark.slow
def test_lira_on_tiny_autoencoders_memorising_and_disjoint(plates):
    """A tiny network: an autoencoder trained 200 steps on 16 plates is found (online and offline); the same
    recipe on other plates gives a CI covering 0.5 over 48 + 48 candidates."""
    members, evaluation, other = plates
    target, config = tiny_ae(steps=200)
    target.train_with(members.subset(range(16)), config)
    attack = LikelihoodRatio(signal="reconstruction", n_shadow=4, max_per_side=16, n_boot=200)
    result = attack.fit(members.subset(range(16))).run(release_of(target, evaluation, members.subset(range(16))))
    assert result.metric("roc_auc").release.value >= 0.9 and result.metric("offline_roc_auc").release.value >= 0.9
    disjoint, config = tiny_ae(steps=200)
    disjoint.train_with(other.subset(range(16)), config)
    attack = LikelihoodRatio(signal="reconstruction", n_shadow=4, max_per_side=48, n_boot=300)
    auc = attack.fit(members).run(release_of(disjoint, evaluation, members)).metric("roc_auc").release
    assert auc.n == 96 and auc.ci_low <= 0.5 <= auc.ci_high, auc
