"""Risk semantics: relative risk, new leaks where the originals leak nothing, risks above 1, CIs,
and a headline that never drops a target (planted metadata leak on solid-black plates)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from PIL import ExifTags, Image

from anonaudit.attacks.base import AttackMetric
from anonaudit.attacks.metadata import MetadataLeak
from anonaudit.cli import _print_summary
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.datasets import synthetic_plates
from anonaudit.results import Results, measurement_rows, row, status_row
from anonaudit.stats import Estimate, proportion, risk_estimate, wilson_interval


def rate(k: int, n: int) -> Estimate:
    return proportion([True] * k + [False] * (n - k))


# -- risk_estimate ----------------------------------------------------------------------------------------
def test_new_leak_where_the_originals_give_nothing_with_the_wilson_interval():
    """Metadata: originals clean (0/120), 12/120 released files carry GPS: risk = 12/120, its CI
    the release's Wilson interval (baseline 0)."""
    r = risk_estimate(rate(12, 120), rate(0, 120), 0.0)
    lo, hi = wilson_interval(12, 120)
    assert r.kind == "new_leak" and r.value == pytest.approx(0.1)
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi))
    # with a baseline b the scale is (x - b) / (1 - b), applied to the interval's ends too
    r = risk_estimate(rate(60, 120), rate(30, 120), 0.25)
    lo, hi = wilson_interval(60, 120)
    assert r.kind == "new_leak" and r.value == pytest.approx((0.5 - 0.25) / 0.75)
    assert (r.ci_low, r.ci_high) == pytest.approx(((lo - 0.25) / 0.75, (hi - 0.25) / 0.75))


def test_absolute_risk_when_the_originals_were_not_measured():
    r = risk_estimate(rate(30, 100), None, 0.1)
    assert r.kind == "absolute" and r.value == pytest.approx(0.2 / 0.9)


def test_release_leaking_more_than_the_originals_is_not_clipped():
    """Mild blur can make noisy plates easier to read: 90% on the release, 60% on the originals."""
    r = risk_estimate(rate(90, 100), rate(60, 100), 0.0)
    assert r.kind == "relative" and r.value == pytest.approx(1.5) and r.exceeds_original
    assert r.ci_low < 1.5 < r.ci_high
    assert not risk_estimate(rate(30, 100), rate(60, 100), 0.0).exceeds_original
    # 66% against 60% of 100 plates: a point above 1, a CI reaching below it: not "more than the originals"
    slight = risk_estimate(rate(66, 100), rate(60, 100), 0.0)
    assert slight.value > 1.0 and slight.ci_low < 1.0 and not slight.exceeds_original


def test_no_estimate_says_why():
    assert (
        risk_estimate(Estimate(float("nan"), n=0), rate(5, 10), 0.0).label
        == "none: nothing measured on the release (n=0)"
    )
    assert risk_estimate(rate(5, 10), rate(9, 10), float("nan")).label.startswith("none: ")


def test_relative_risk_ci_covers_the_true_risk_about_95_percent_of_the_time():
    """Coverage of the propagated interval, checked by simulating experiments with known rates."""
    rng = np.random.default_rng(1)
    p_release, p_original, baseline, n = 0.3, 0.7, 0.1, 150
    truth = (p_release - baseline) / (p_original - baseline)
    trials = 300
    covered = 0
    for seed in range(trials):
        r = risk_estimate(rate(rng.binomial(n, p_release), n), rate(rng.binomial(n, p_original), n), baseline,
                          n_draws=4000, seed=seed)
        covered += r.ci_low <= truth <= r.ci_high
    # binomial sd of the coverage over 300 trials is ~1.3 points: 95% +- 3.5 sd
    assert 0.90 <= covered / trials <= 0.995


def test_relative_risk_ci_is_unbounded_when_the_originals_are_barely_above_chance():
    r = risk_estimate(rate(5, 40), rate(6, 40), 0.1)
    assert r.kind == "relative" and math.isinf(r.ci_high) and r.ci_low <= r.value


# -- the headline -------------------------------------------------------------------------------------------
def _rows(label: str, metrics, component: str = "x") -> list[dict]:
    base = {"target": label.split("(")[0], "target_label": label, "component": component, "component_label": component}
    return measurement_rows(metrics, base, "attack", 0.1)


def test_max_risk_keeps_every_target_and_says_why_one_has_no_estimate():
    leaky = _rows("blur(sigma=1)", [AttackMetric("exact_match", rate(0, 100), rate(90, 100), 0.0),
                                    AttackMetric("files_with_gps", rate(10, 100), rate(0, 100), 0.0)])
    worse = _rows("blur(sigma=0.5)", [AttackMetric("exact_match", rate(95, 100), rate(60, 100), 0.0)])
    base = {"target": "mask", "target_label": "mask"}
    unavailable = [status_row({**base, "component": "ocr"}, "attack", "unavailable", "weights absent"),
                   status_row({**base, "component": "metadata"}, "attack", "failed", "boom")]
    failed = [
        status_row({"target": "gan", "target_label": "gan", "component": "gan"}, "target", "failed", "no checkpoint")
    ]
    nothing = _rows("external", [AttackMetric("files_with_gps", Estimate(float("nan"), n=0), None, 0.0)])
    ssim_only = [
        row(
            target="noise",
            target_label="noise",
            kind="evaluator",
            component="ssim",
            metric="ssim",
            value=0.9,
            status="ok",
        )
    ]
    results = Results(pd.DataFrame(leaky + worse + unavailable + failed + nothing + ssim_only))
    h = results.max_risk().set_index("target_label")
    assert list(h.index) == ["blur(sigma=1)", "blur(sigma=0.5)", "mask", "gan", "external", "noise"]
    assert h.loc["blur(sigma=1)", "metric"] == "files_with_gps" and h.loc["blur(sigma=1)", "risk_kind"] == "new_leak"
    assert h.loc["blur(sigma=1)", "risk"] == pytest.approx(0.1) and h.loc["blur(sigma=1)", "n"] == 100
    assert h.loc["blur(sigma=0.5)", "risk"] == pytest.approx(95 / 60) and h.loc["blur(sigma=0.5)", "exceeds_original"]
    assert (
        h.loc["mask", "reason"]
        == "every attack was unavailable, failed or not applicable (ocr: unavailable; metadata: failed)"
    )
    assert h.loc["gan", "reason"] == "target failed: no checkpoint"
    assert h.loc["external", "reason"] == "no attack gave a risk estimate (nothing measured on the release (n=0))"
    assert h.loc["noise", "reason"] == "no attack was run on this target"
    assert h.loc[["mask", "gan", "external", "noise"], "risk"].isna().all()


def test_risk_columns_survive_saving_and_loading(tmp_path):
    rows = _rows("blur", [AttackMetric("exact_match", rate(30, 100), rate(90, 100), 0.0)])
    Results(pd.DataFrame(rows)).save(tmp_path)
    loaded = Results.load(tmp_path).table.iloc[0]
    assert loaded["risk_kind"] == "relative" and loaded["risk_ci_low"] < loaded["risk"] < loaded["risk_ci_high"]


# -- planted leak: solid-black plates, GPS EXIF in 12 of 120 released JPEGs ----------------------------------
def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    g = exif.get_ifd(ExifTags.IFD.GPSInfo)
    g[1], g[2], g[3], g[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    return exif


@pytest.fixture(scope="module")
def black_release(tmp_path_factory) -> Release:
    """120 synthetic plates written as PNG files (no metadata) and a release of solid-black JPEGs
    under other names, 12 of which carry a GPS position."""
    folder = tmp_path_factory.mktemp("planted")
    plates = synthetic_plates(n=120, seed=3)
    (folder / "originals").mkdir()
    (folder / "release").mkdir()
    orig, rel = [], []
    for i in range(len(plates)):
        img = plates[i]
        o, r = folder / "originals" / f"car{i:03d}.png", folder / "release" / f"out{i:03d}.jpg"
        Image.fromarray(img).save(o)
        Image.fromarray(np.zeros_like(img)).save(r, "JPEG", **({"exif": gps_exif()} if i % 10 == 0 else {}))
        orig.append(dataclasses.replace(plates.record(i), path=o))
        rel.append(dataclasses.replace(plates.record(i), path=r))
    return Release(ImageSet(orig, name="plates"), ImageSet(rel, name="black"), "external", {})


def _headline(release: Release, attacks) -> tuple[Results, pd.Series]:
    base = {"target": "external", "target_label": "external(black)"}
    rows = []
    for attack in attacks:
        result = attack.fit(None).run(release)
        rows += measurement_rows(
            result.metrics, {**base, "component": attack.name, "component_label": attack.name}, "attack", 0.0
        )
    results = Results(pd.DataFrame(rows))
    return results, results.max_risk().iloc[0]


def test_planted_metadata_leak_raises_the_headline_metadata_alone(black_release, capsys):
    results, h = _headline(black_release, [MetadataLeak()])
    assert h["risk_kind"] == "new_leak" and h["component"] == "metadata"
    assert h["risk"] == pytest.approx(12 / 120) and h["n"] == 120 and h["risk_ci_low"] > 0
    _print_summary(results)
    out = capsys.readouterr().out
    assert "no attack produced a risk estimate" not in out and "new_leak" in out and "0.100 [" in out


@pytest.mark.slow  # OCR of 240 plates: about a minute on 2 busy cores
def test_planted_metadata_leak_raises_the_headline_next_to_ocr(black_release):
    pytest.importorskip("rapidocr")
    from anonaudit.attacks.ocr import OCRReread

    results, h = _headline(black_release, [OCRReread(engine="rapidocr"), MetadataLeak()])
    ocr = results.privacy().set_index("metric").loc["exact_match"]
    assert ocr["value"] == 0.0 and ocr["original"] > 0.5 and ocr["risk"] == 0.0  # the black plates hide the text
    assert h["risk_kind"] == "new_leak" and h["risk"] == pytest.approx(0.1) and h["component"] == "metadata"
