"""The white-box protocol: declared capabilities, the needs vocabulary and the runner's enforcement."""

from __future__ import annotations

import numpy as np
import pytest

from anonaudit import Audit, datasets
from anonaudit.anonymizers.classical import Mask
from anonaudit.anonymizers.whitebox import (
    CAPABILITIES,
    WhiteBoxError,
    capabilities,
    membership_signal,
    missing,
    require,
    standardise,
)
from anonaudit.attacks.base import NEEDS, Attack
from anonaudit.audit import unmet_needs
from anonaudit.data.imageset import Release
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ANONYMIZERS, ATTACKS, create_anonymizer, load_builtin_components
from anonaudit.testing import ContractError, check_component


@pytest.fixture(scope="module")
def plates():
    return datasets.synthetic_plates(n=24, seed=3)


def pca(data, **params):
    load_builtin_components()
    return ANONYMIZERS.create("miku", mapper="pca", size=16, n_components=4, **params).fit(data)


def test_every_anonymizer_declares_known_capabilities():
    load_builtin_components()
    declared = {n: ANONYMIZERS.get(n).provides for n in ANONYMIZERS.names()}
    assert all(set(p) <= set(CAPABILITIES) for p in declared.values())
    assert set(declared["plate_wgan"]) == {"training_keys", "retrain", "critic", "generate"}
    assert set(declared["aia"]) == {"training_keys", "retrain", "reconstruct", "representation"}
    assert declared["mask"] == () and declared["external"] == ()
    stylegan = ANONYMIZERS.create("miku", mapper="stylegan")  # pretrained elsewhere: nothing of its own
    assert capabilities(stylegan) == frozenset() and "reconstruct" in capabilities(ANONYMIZERS.create("miku"))
    assert set(CAPABILITIES) < set(NEEDS) and "anonymizer" in NEEDS


def test_require_and_missing_name_the_capability(plates):
    target = pca(plates)
    assert missing(target, ("anonymizer", "training_keys", "critic", "reconstruct")) == ("critic",)
    with pytest.raises(WhiteBoxError, match=r"target miku\(.*\) provides no critic \(needs: critic; provides: "):
        require(target, "critic", "probe")
    with pytest.raises(ConfigError, match="unknown white-box capabilities"):
        require(target, "critics", "probe")
    assert issubclass(WhiteBoxError, DataError)


def test_membership_signal_is_standardised_per_model(plates):
    """The same model shifted and scaled gives the same signal: only the model's own spread counts."""
    target = pca(plates.subset(range(12)))
    signal = membership_signal(target, plates)
    assert signal.mean() == pytest.approx(0, abs=1e-9) and signal.std() == pytest.approx(1)
    raw = -np.log(target.reconstruction_errors(plates) + 1e-12)
    assert np.allclose(signal, (raw - raw.mean()) / raw.std())
    assert np.allclose(standardise(3 * raw + 7, 3 * raw + 7), signal)  # an added constant and a scale vanish
    trained_on = signal[:12].mean()
    assert trained_on > signal[12:].mean() + 1  # the PCA's training images reconstruct better
    with pytest.raises(DataError, match="no spread"):
        standardise(np.ones(3), np.ones(3))


class _Misspelt(Attack):
    name = "contract_misspelt_needs"
    criteria = ("inference",)
    needs = ("anonymizer", "critc")


def test_check_component_rejects_needs_outside_the_vocabulary():
    with pytest.raises(ContractError, match=r"check_needs_are_known: needs .*unknown \['critc'\]"):
        check_component(_Misspelt)


def test_unmet_needs_not_applicable_or_unavailable(plates):
    target = pca(plates)
    critic = ATTACKS.create("membership_critic")
    with_keys = Release(plates, plates, "miku", target.get_params(), anonymizer=target,
                        training_keys=target.training_keys_)
    status, reason = unmet_needs(critic, with_keys)
    assert status == "not_applicable"
    assert reason == (f"not applicable: target {target.label()} provides no critic "
                      "(needs: anonymizer, training_keys, critic)")
    assert unmet_needs(ATTACKS.create("membership_reconstruction"), with_keys) is None
    # a ready-made release may come from a method with a critic: not tested, never "not applicable"
    external = Release(plates, plates, "external", {}, anonymizer=create_anonymizer("external", path="."))
    status, reason = unmet_needs(critic, external)
    assert status == "unavailable" and "ready-made release" in reason
    assert "provides no training_keys or critic" in reason
    no_keys = Release(plates, plates, "miku", target.get_params(), anonymizer=target, training_keys=None)
    status, reason = unmet_needs(ATTACKS.create("membership_reconstruction"), no_keys)
    assert status == "unavailable" and "recorded no training keys" in reason
    assert unmet_needs(ATTACKS.create("ocr"), Release(plates, plates, "mask", {}, anonymizer=Mask())) is None


def test_runner_records_not_applicable_for_a_missing_capability(tmp_path):
    data = datasets.synthetic_plates(n=16, seed=1)
    target = ANONYMIZERS.create("miku", mapper="pca", size=16, n_components=4)
    attacks = [ATTACKS.create("membership_critic", max_per_side=4, n_boot=20),
               ATTACKS.create("membership_reconstruction", max_per_side=4, n_boot=20)]
    table = Audit(data, [target], attacks=attacks, aux_fraction=0.5).run(tmp_path, show_progress=False).table
    rows = table[table["kind"] == "attack"]
    critic = rows[rows["component"] == "membership_critic"]
    assert list(critic["status"]) == ["not_applicable"]
    assert critic["message"].iloc[0].startswith(f"not applicable: target {target.label()} provides no critic")
    assert set(rows[rows["component"] == "membership_reconstruction"]["status"]) == {"ok"}
