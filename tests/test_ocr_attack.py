"""OCR re-read attack: scores and baselines against hand-computed answers, and real audits of
synthetic plates (originals read, masked plates not, metrics with CIs on release and originals)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from anonaudit.anonymizers.classical import GaussianBlur, Mask
from anonaudit.attacks.ocr import NoInformationGuess, OCRReread, score_readings
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import DataError
from anonaudit.models.ocr import RapidOCREngine, Reading
from anonaudit.registry import ATTACKS
from anonaudit.stats import wilson_interval


class RapidOCRWithoutAlternatives(RapidOCREngine):
    """The real RapidOCR engine, but withholding its per-position alternatives."""

    alternatives_reason = "withheld for this test"

    def _recognize(self, crops):
        return [Reading(r.text, r.confidence, None) for r in super()._recognize(crops)]


@pytest.fixture(scope="module")
def plates():
    return synthetic_plates(12, seed=31)


def release_of(images: ImageSet, anonymizer) -> Release:
    return Release(images, anonymizer.anonymize(images, show_progress=False), anonymizer.name, anonymizer.get_params())


def test_score_readings_hand_computed():
    truths = ["MH12AB1234", "DL8CAF5031", "KA01"]
    readings = [
        Reading("MH 12 AB 1234", 0.99, None),
        Reading("DL8CAFS03I", 0.7, None),  # two look-alike errors
        Reading("", float("nan"), None),
    ]
    df = score_readings(truths, readings, k=3, fold=False)
    assert df["read"].tolist() == ["MH12AB1234", "DL8CAFS03I", ""]
    assert df["exact"].tolist() == [True, False, False]
    assert df["exact_folded"].tolist() == [True, True, False]
    assert df["char_accuracy"].tolist() == pytest.approx([1.0, 0.8, 0.0])
    assert df["topk_char_accuracy"].isna().all()
    folded = score_readings(truths, readings, k=3, fold=True)
    assert folded["exact"].tolist() == [True, True, False]


def test_no_information_guess_fitted_on_auxiliary_texts():
    g = NoInformationGuess.fit(["AB12", "AB34", "CB12", "AB1", None])
    assert g.guess() == "AB12" and g.length == 4
    truths = ["AB12", "CD34"]
    assert g.exact(truths) == pytest.approx(0.5)
    assert g.char_accuracy(truths) == pytest.approx((1.0 + 0.0) / 2)
    # Top-2 per position: A/C, B, 1/3, 2/4 -> "CD34": C (rescued), D (no), 3 (rescued), 4 (rescued).
    assert g.topk_char_accuracy(truths, 2) == pytest.approx((1.0 + 0.75) / 2)


def test_uniform_guess_without_auxiliary_data():
    g = NoInformationGuess(seed=0)
    truths = ["MH12AB1234", "KA01"]
    assert g.exact(truths) == pytest.approx((36.0**-10 + 36.0**-4) / 2)
    # Folding: "0" has the look-alikes O, Q, D -> 4 of 36 characters fold onto it.
    assert g.exact(["0"], fold=True) == pytest.approx(4 / 36)
    acc = g.char_accuracy(truths)
    assert 1 / 36 <= acc < 0.1  # alignment lets a random string match slightly more than 1/36
    assert g.topk_char_accuracy(truths, 3) == pytest.approx(3 / 36, abs=0.03)
    assert g.char_accuracy(truths) == acc  # deterministic (seeded)


def test_attack_is_registered_and_validates_parameters():
    assert isinstance(ATTACKS.create("ocr", k=2), OCRReread)
    with pytest.raises(ValueError, match="ocr: k must be an integer >= 1, got 0"):
        OCRReread(k=0)


def test_originals_are_read_and_masked_plates_are_not(plates):
    attack = OCRReread(k=3).fit(synthetic_plates(40, seed=99))
    identity = attack.run(release_of(plates, GaussianBlur(sigma=0)))
    masked = attack.run(release_of(plates, Mask()))
    for result in (identity, masked):
        assert [m.metric for m in result.metrics] == [
            "exact_match",
            "exact_match_folded",
            "char_accuracy",
            "topk_char_accuracy",
        ]
    em = identity.metric("exact_match")
    assert em.release.n == len(plates) and em.release.value >= 11 / 12
    assert em.release.value == em.original.value
    k = round(em.release.value * len(plates))
    assert (em.release.ci_low, em.release.ci_high) == pytest.approx(wilson_interval(k, len(plates)))
    assert em.risk == pytest.approx(1.0)
    m = masked.metric("exact_match")
    assert m.release.value == 0.0 and m.original.value >= 11 / 12 and m.risk == 0.0
    assert masked.metric("char_accuracy").release.value == 0.0
    ca = identity.metric("char_accuracy")
    assert ca.release.ci_low <= ca.release.value <= ca.release.ci_high
    assert 0.0 < ca.baseline < 0.3  # most-frequent character per position of 40 auxiliary plates
    d = masked.details
    assert list(d["key"]) == plates.keys
    assert (d["read_release"] == "").all() and d["exact_original"].sum() >= 11
    assert {"truth", "read_original", "conf_release", "conf_original", "char_accuracy_release"} <= set(d.columns)


def test_blurred_plates_lose_exact_matches_but_keep_characters(plates):
    result = OCRReread().run(release_of(plates, GaussianBlur(sigma=0.15, relative=True)))
    em, ca, topk = (result.metric(n) for n in ("exact_match", "char_accuracy", "topk_char_accuracy"))
    assert em.release.value < em.original.value
    assert ca.release.value >= em.release.value  # partial readings still score characters
    assert topk.release.value >= ca.release.value - 1e-12  # top-k can only rescue characters
    assert 0.0 <= em.risk < 1.0


def test_engine_without_alternatives_reports_no_topk_metric(plates):
    result = OCRReread(engine=RapidOCRWithoutAlternatives()).run(release_of(plates.subset(range(4)), Mask()))
    assert "topk_char_accuracy" not in [m.metric for m in result.metrics]
    assert any("withheld for this test" in n for n in result.notes)
    assert result.details["topk_char_accuracy_release"].isna().all()


def test_fold_confusions_makes_exact_match_folded(plates):
    result = OCRReread(fold_confusions=True).run(release_of(plates.subset(range(4)), GaussianBlur(sigma=0)))
    assert "exact_match_folded" not in [m.metric for m in result.metrics]
    assert "folded" in result.metric("exact_match").description


def test_missing_text_labels_are_a_clear_error(plates):
    unlabeled = ImageSet.from_arrays([plates[0], plates[1]], keys=["a", "b"], texts=["MH12AB1234", None])
    with pytest.raises(DataError, match="needs 'text' labels"):
        OCRReread().run(Release(unlabeled, unlabeled))
    punct = ImageSet.from_arrays([plates[0]], keys=["a"], texts=["--"])
    with pytest.raises(DataError, match="no letters or digits"):
        OCRReread().run(Release(punct, punct))


def test_anonymized_set_without_labels_is_cropped_where_the_original_plate_was():
    scenes = synthetic_plates(3, seed=8, scenes=True)
    # An external release: same pixels, but no boxes or texts on the anonymized side.
    bare = ImageSet.from_arrays([scenes[i] for i in range(len(scenes))], keys=scenes.keys)
    result = OCRReread().run(Release(scenes, bare))
    em = result.metric("exact_match")
    assert em.release.value == em.original.value and not math.isnan(em.release.value)
    assert np.all(result.details["read_release"] == result.details["read_original"])


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.shared_data("plates_us")
def test_real_us_plates_are_read_and_masking_stops_it():
    from anonaudit.data.loaders import load_labeled_folder

    plates = load_labeled_folder(SHARED / "plates_us", limit=20, seed=0)
    result = OCRReread().run(release_of(plates, Mask()))
    em, folded = result.metric("exact_match"), result.metric("exact_match_folded")
    # RapidOCR reads most real US plates; vanity plates print 0 and O alike, so folding helps.
    assert em.original.value >= 0.5 and em.original.n == 20
    assert folded.original.value >= max(0.7, em.original.value)
    assert em.release.value == 0.0
    assert result.metric("char_accuracy").original.value >= 0.85


@pytest.mark.shared_data("scenes_eu")
def test_real_eu_scenes_are_read_in_their_plate_boxes():
    from anonaudit.data.loaders import load_openalpr_scenes

    scenes = load_openalpr_scenes(SHARED / "scenes_eu", limit=12, seed=0)
    result = OCRReread().run(Release(scenes, scenes))
    assert result.metric("exact_match").original.value >= 0.6
