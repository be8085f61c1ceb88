"""Learned restoration before re-identification and gender inference: tiny synthetic faces."""

from __future__ import annotations

import numpy as np
import pytest

from anonaudit.attacks.face_restore import RestoreThenGender, RestoreThenReid, centre_crops, paste_restored
from anonaudit.data.imageset import Release
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ANONYMIZERS
from tests.face_data import synthetic_identities, tinted_people

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = {"steps": 60, "size": 32, "width": 8, "depth": 1, "crop": 1.0, "lr": 5e-3, "batch_size": 8}


@pytest.fixture(scope="module")
def gallery():
    return synthetic_identities(10, 3, size=32, noise=10.0, seed=4)


@pytest.fixture(scope="module")
def auxiliary():
    return synthetic_identities(30, 3, size=32, noise=10.0, seed=5, prefix="a")


def _release(originals, anonymizer) -> Release:
    anon = anonymizer.anonymize(originals, show_progress=False)
    return Release(originals, anon, name=anonymizer.name, params=anonymizer.get_params(),
                   degradation=anonymizer.degradation(), anonymizer=anonymizer)


def _mae(a, b) -> float:
    return float(np.mean([np.abs(a[i].astype(float) - b[i].astype(float)).mean() for i in range(len(a))]))


def test_centre_crop_round_trip_keeps_the_border():
    people = synthetic_identities(2, 1, size=40, seed=0)
    crops = centre_crops(people, 0.5, 16)
    assert crops.shape == (2, 16, 16, 3)
    pasted = paste_restored(people, np.zeros_like(crops), 0.5)
    assert np.all(pasted[0][10:30, 10:30] == 0)
    assert np.array_equal(pasted[0][:10], people[0][:10]) and np.array_equal(pasted[0][:, 30:], people[0][:, 30:])
    assert pasted.keys == people.keys


def test_restorer_trained_on_the_auxiliary_photos_undoes_a_blur(gallery, auxiliary, tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path))
    release = _release(gallery, ANONYMIZERS.create("gaussian_blur", sigma=1.5))
    attack = RestoreThenReid(embedder="pixels", n_boot=50, **SMALL).fit(auxiliary)
    restored, restorer, n_train, how = attack.restored_release(release)
    assert n_train == len(auxiliary) and "the target's own anonymizer" in how
    assert not restorer.cost.cached and restorer.cost.steps == SMALL["steps"]
    # closer to the originals than the release is (the network never saw these people; the per-pixel noise of
    # the synthetic photos, which the blur removed, cannot come back)
    assert _mae(restored.anonymized, gallery) < 0.9 * _mae(release.anonymized, gallery)
    result = attack.run(release)
    rank1 = result.metric("rank1")
    assert rank1.release.value >= 0.8
    assert rank1.release.extra["training_steps"] == SMALL["steps"]
    assert rank1.release.extra["weights_cached"] is True  # the second training with the same key was loaded
    assert "on the release restored by a learned U-Net" in rank1.description


def test_restore_then_reid_on_a_mask_is_at_chance(gallery, auxiliary):
    result = RestoreThenReid(embedder="pixels", n_boot=50, **SMALL).fit(auxiliary).run(
        _release(gallery, ANONYMIZERS.create("mask")))
    rank1 = result.metric("rank1")
    assert rank1.release.ci_low <= rank1.baseline <= rank1.release.ci_high


def test_restore_then_gender_reads_through_a_blur_not_a_mask():
    originals = tinted_people(12, 2, 0.5, seed=0, prefix="p")
    aux = tinted_people(20, 2, 0.5, seed=1, prefix="a")
    attack = RestoreThenGender(features="pixels", n_boot=50, **SMALL).fit(aux)
    blurred = attack.run(_release(originals, ANONYMIZERS.create("gaussian_blur", sigma=1.0))).metric("accuracy")
    assert blurred.release.ci_low > blurred.baseline
    masked = RestoreThenGender(features="pixels", n_boot=50, **SMALL).fit(aux).run(
        _release(originals, ANONYMIZERS.create("mask"))).metric("accuracy")
    assert masked.release.ci_low <= masked.baseline + 1e-9


def test_without_a_method_or_auxiliary_files_there_is_nothing_to_train_on(gallery, auxiliary):
    blur = ANONYMIZERS.create("gaussian_blur", sigma=1.5)
    unknown = Release(gallery, blur.anonymize(gallery, show_progress=False), name="", params={})
    with pytest.raises(DataError, match="cannot make training pairs"):
        RestoreThenReid(embedder="pixels", **SMALL).fit(auxiliary).run(unknown)
    with pytest.raises(DataError, match="needs auxiliary face photos"):
        RestoreThenReid().fit(None)
    with pytest.raises(ConfigError, match="crop"):
        RestoreThenReid(crop=0)
    with pytest.raises(ConfigError, match="multiples of 4"):
        RestoreThenReid(size=30)
