"""Gender inference: a planted colour leak must be found (pixels, xgboost, CNN), a full mask must fall
to the majority baseline, metric functions match scikit-learn, and LFW with dlib embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from face_data import lfw_people, needs_lfw, tinted_people
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from anonaudit.anonymizers.classical import GaussianBlur, Mask, Noise
from anonaudit.attacks.attribute import GenderInference, auc_score, balanced_accuracy
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ATTACKS


def _release(originals: ImageSet, anonymizer, name: str | None = None) -> Release:
    anon = anonymizer.anonymize(originals, show_progress=False)
    return Release(originals, anon, name=anonymizer.name if name is None else name, params=anonymizer.get_params())


@pytest.fixture(scope="module")
def tinted():
    # Auxiliary: 70% male; evaluation: 60% male (different people).
    return tinted_people(40, 3, 0.7, seed=0, prefix="aux"), tinted_people(30, 3, 0.6, seed=1, prefix="ev")


def test_metric_functions_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.random(200) + 0.3 * y, 1)  # with ties
    pred = (score > 0.6).astype(int)
    assert balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    assert auc_score(y, score) == pytest.approx(roc_auc_score(y, score))
    assert np.isnan(auc_score(np.ones(5, int), score[:5]))


@pytest.mark.parametrize(
    "features,classifier,adaptive",
    [
        ("pixels", "logistic", False),
        ("pixels", "xgboost", False),
        ("pixels", "logistic", True),
        ("cnn", "logistic", True),
    ],
)
def test_planted_colour_leak_is_found(tinted, features, classifier, adaptive):
    # Blurring the whole image removes the texture but keeps the colour that encodes gender. (A CNN
    # trained on unblurred originals does not transfer to blurred images; the adaptive one must.)
    aux, evaluation = tinted
    attack = ATTACKS.create("gender", features=features, classifier=classifier, adaptive=adaptive, epochs=6).fit(aux)
    result = attack.run(_release(evaluation, GaussianBlur(sigma=3.0)))
    acc = result.metric("accuracy")
    assert acc.baseline == pytest.approx(0.6)  # aux majority (male) scored on evaluation labels
    assert acc.release.value >= 0.95 and acc.release.n == 90
    assert acc.original.value >= 0.9
    assert result.metric("roc_auc").release.value >= 0.97
    assert result.metric("balanced_accuracy").release.ci_low > 0.8


def test_full_mask_falls_to_the_baseline(tinted):
    aux, evaluation = tinted
    release = _release(evaluation, Mask(region="image"))
    plain = GenderInference(features="pixels").fit(aux).run(release)
    # Every masked image gets the same (imputed) feature: one answer for all, no ranking information.
    assert plain.metric("roc_auc").release.value == 0.5
    assert plain.metric("balanced_accuracy").release.value == 0.5
    assert plain.metric("accuracy").release.value in (pytest.approx(0.6), pytest.approx(0.4))
    adaptive = GenderInference(features="pixels", adaptive=True).fit(aux).run(release)
    # Trained on masked auxiliary images the attacker can only learn the prior: the majority answer.
    acc = adaptive.metric("accuracy")
    assert acc.release.value == pytest.approx(acc.baseline) == pytest.approx(0.6)
    assert acc.original.value >= 0.95  # "original" is the attacker trained and tested on originals
    assert any("adaptive: trained on the auxiliary images anonymized by mask" in n for n in adaptive.notes)


def test_unlabelled_images_are_left_out(tinted):
    aux, evaluation = tinted
    recs = list(evaluation.records)
    import dataclasses

    recs[0] = dataclasses.replace(recs[0], attributes={})
    partial = ImageSet(recs, [evaluation[i] for i in range(len(evaluation))])
    result = GenderInference(features="pixels").fit(aux).run(_release(partial, Noise(std=1.0)))
    assert result.metric("accuracy").release.n == len(evaluation) - 1
    assert "1 unlabelled" in result.notes[0]


def test_errors(tinted):
    aux, evaluation = tinted
    with pytest.raises(ConfigError):
        GenderInference(features="hog")
    with pytest.raises(ConfigError):
        GenderInference(classifier="svm")
    with pytest.raises(ConfigError):
        GenderInference(features="cnn", classifier="xgboost")
    with pytest.raises(DataError, match="auxiliary"):
        GenderInference().fit(None)
    only_male = aux.subset([i for i, g in enumerate(aux.attribute("gender")) if g == "male"])
    with pytest.raises(DataError, match="exactly 2 classes"):
        GenderInference().fit(only_male)
    with pytest.raises(DataError, match="not fitted"):
        GenderInference().run(_release(evaluation, Noise(std=1.0)))
    with pytest.raises(DataError, match="identity-disjoint"):
        GenderInference(features="pixels").fit(evaluation).run(_release(evaluation, Noise(std=1.0)))
    unknown_method = _release(evaluation, Noise(std=1.0), name="vendor_tool")
    with pytest.raises(DataError, match="cannot re-apply"):
        GenderInference(features="pixels", adaptive=True).fit(aux).run(unknown_method)


@needs_lfw
def test_lfw_dlib_embeddings_tiny_noise_and_full_mask():
    aux = lfw_people(60, min_images=2)  # includes the re-ID test's people: their embeddings are memoised
    evaluation = lfw_people(20, min_images=2, skip=60)
    attack = GenderInference(features="embedding", embedder="dlib", n_boot=200).fit(aux)
    near = attack.run(_release(evaluation, Noise(std=2.0)))
    acc = near.metric("accuracy")
    assert acc.original.value > acc.baseline + 0.1  # dlib embeddings carry gender
    assert abs(acc.release.value - acc.original.value) <= 0.05
    masked = attack.run(_release(evaluation, Mask(region="image")))
    assert masked.metric("roc_auc").release.value == 0.5
    assert masked.metric("balanced_accuracy").release.value == 0.5
