"""Membership of a method that learns nothing from data is not applicable, not "not tested"."""

from __future__ import annotations

import pandas as pd

from anonaudit import Audit, datasets
from anonaudit.anonymizers import Mask
from anonaudit.data.imageset import Release
from anonaudit.registry import ATTACKS, create_anonymizer
from anonaudit.results import Results, row, status_row
from anonaudit.verdicts import FAIL, NOT_APPLICABLE, NOT_TESTED, PASS, certify, parse_policy

POLICY = parse_policy({"name": "test", "criteria": [
    {"id": "ocr", "select": "*ocr/exact_match", "require": "<= 1%"},
    {"id": "membership", "select": "membership*/*tpr@fpr=0.001", "require": "<= 1%"},
]})


def ocr_row(label: str, high: float) -> dict:
    return row(target="t", target_label=label, kind="attack", component="ocr", metric="exact_match", value=0.0,
               ci_low=0.0, ci_high=high, n=500, baseline=0.0, status="ok")


def test_attacks_on_a_training_set_do_not_apply_to_methods_that_learn_nothing():
    plates = datasets.synthetic_plates(n=4, seed=0)
    masked = Mask().anonymize(plates, show_progress=False)
    classical = Release(plates, masked, name="mask", anonymizer=Mask())
    external = Release(plates, masked, name="external", anonymizer=create_anonymizer("external", path="."))
    for name in ATTACKS.names():
        attack = ATTACKS.get(name)()
        if "training_keys" in attack.needs:
            assert "learns nothing" in attack.not_applicable(classical)
            assert attack.not_applicable(external) == ""  # a ready-made release may come from a trained method
        elif "representation" in attack.needs:  # attacks on a released feature vector: images-only releases have none
            assert "no representation" in attack.not_applicable(classical)
            assert "no representation" in attack.not_applicable(external)
        else:
            assert attack.not_applicable(classical) == ""


def test_runner_records_not_applicable_and_the_verdict_leaves_the_criterion_out(tmp_path):
    results = Audit(datasets.synthetic_plates(n=12, seed=0), [Mask()], attacks=[ATTACKS.create("membership_dcr")]).run(
        tmp_path, show_progress=False)
    rows = results.table[results.table["kind"] == "attack"]
    assert list(rows["status"]) == ["not_applicable"] and "learns nothing" in rows["message"].iloc[0]
    assert results.failures().empty  # not a failure: nothing was left untested
    table = pd.concat([results.table, pd.DataFrame([ocr_row("mask", 0.005)])], ignore_index=True)
    verdict = certify(Results(table), POLICY)
    by_id = {c.id: c for c in verdict.criteria["mask"]}
    assert by_id["membership"].status == NOT_APPLICABLE and by_id["ocr"].status == PASS
    assert verdict.targets["mask"] == PASS and verdict.overall == PASS


def test_not_applicable_never_hides_a_failure_or_an_untested_criterion():
    na = status_row({"target": "t", "target_label": "a", "component": "membership_dcr"}, "attack", "not_applicable",
                    "mask learns nothing from data")
    assert certify(Results(pd.DataFrame([na, ocr_row("a", 0.02)])), POLICY).overall == FAIL
    untested = status_row({"target": "t", "target_label": "b", "component": "membership_dcr"}, "attack", "failed",
                          "needs a trained target")
    verdict = certify(Results(pd.DataFrame([untested, ocr_row("b", 0.005)])), POLICY)
    assert verdict.overall == NOT_TESTED
    only_na = certify(Results(pd.DataFrame([na])), POLICY)
    assert only_na.targets["a"] == NOT_TESTED  # PASS needs at least one criterion that applies and passed
