"""Results files and the HTML report from a small real audit: table columns in CSV and JSON, the
``Results.load`` round trip, one self-contained HTML file (inline images, nothing fetched from the
network), escaping of user strings, and ``anonaudit report`` regenerating the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anonaudit.anonymizers import GaussianBlur, Mask
from anonaudit.attacks.base import Attack, AttackMetric, AttackResult
from anonaudit.audit import Audit
from anonaudit.cli import main
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.evaluators import PSNR, SSIM
from anonaudit.reports.html import render_html
from anonaudit.results import COLUMNS, Results, row
from anonaudit.stats import proportion

XSS = "<script>alert(1)</script>"


class NearCopy(Attack):
    """Cheap stand-in for a real attack: an image 'leaks' when it is within ``tolerance`` grey levels
    of its original on average (1.0 on the originals, 0 for a solid mask)."""

    name = "near_copy"

    def __init__(self, tolerance: float = 20.0):
        self.tolerance = tolerance

    def _rate(self, release):
        hits = [np.abs(o.astype(float) - a.astype(float)).mean() < self.tolerance
                for o, a in (release.pair(i) for i in range(len(release)))]
        return proportion(hits)

    def run(self, release):
        return AttackResult(self.name, [AttackMetric("leak_rate", self._rate(release),
                                                     self._rate(release.identity()), 0.1, "near copies")])


TARGETS = [Mask(), GaussianBlur(sigma=2), GaussianBlur(sigma=8)]


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path]:
    out = tmp_path_factory.mktemp("audit") / "plates"
    audit = Audit(data=synthetic_plates(n=12, seed=0), targets=TARGETS, attacks=[NearCopy()],
                  evaluators=[SSIM(), PSNR()], seed=0, name="tiny-plates")
    results = audit.run(out, show_progress=False)
    results.report()
    return results, out


def strip_generated(html: str) -> str:
    return re.sub(r"Generated [^·]*·", "Generated ·", html)


# -- results files --------------------------------------------------------------------------------------------
def test_output_files(audit_dir):
    _, out = audit_dir
    for name in ("results.csv", "results.json", "manifest.json", "report.html"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_csv_and_json_columns_and_rows(audit_dir):
    results, out = audit_dir
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == COLUMNS
    records = json.loads((out / "results.json").read_text())
    assert len(records) == len(csv) == len(results.table)
    assert all(list(r) == COLUMNS for r in records)
    assert all(r["status"] in ("ok", "unavailable", "failed") for r in records)
    # no NaN in JSON (written as null), so any JSON reader can load it
    assert "NaN" not in (out / "results.json").read_text()
    labels = [t.label() for t in TARGETS]
    assert list(dict.fromkeys(csv["target_label"])) == labels
    for label in labels:
        t = csv[csv["target_label"] == label].set_index("metric")
        assert set(t.index) >= {"pairs", "ssim", "psnr", "leak_rate"}
        assert t.loc["pairs", "value"] == 10  # 12 plates, 2 (20%) kept for the intruder
        assert t.loc["leak_rate", "kind"] == "attack" and t.loc["leak_rate", "original"] == 1.0
        assert t.loc["leak_rate", "baseline"] == 0.1
        assert t.loc["ssim", "kind"] == "evaluator" and t.loc["ssim", "n"] == 10
        lo, v, hi = t.loc["ssim", ["ci_low", "value", "ci_high"]]
        assert lo <= v <= hi
    mask = csv[csv["target_label"] == "mask"].set_index("metric")
    assert mask.loc["leak_rate", "value"] == 0.0 and mask.loc["leak_rate", "risk"] == 0.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["name"] == "tiny-plates" and manifest["seed"] == 0
    assert [t["label"] for t in manifest["targets"]] == labels
    assert manifest["data"] == {"name": "synthetic_plates", "n": 12, "evaluation": 10, "auxiliary": 2}


def _normalised(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers as floats and missing values (NaN, None, empty text) as None: CSV does not tell them apart."""
    t = table.replace("", None)
    for c in ("value", "ci_low", "ci_high", "n", "baseline", "original", "risk", "seconds"):
        t[c] = pd.to_numeric(t[c]).astype(float)
    return t.astype(object).where(t.notna(), None)


def test_results_load_round_trip(audit_dir, tmp_path: Path):
    results, out = audit_dir
    loaded = Results.load(out)
    assert loaded.output == out and loaded.manifest == json.loads((out / "manifest.json").read_text())
    pd.testing.assert_frame_equal(_normalised(loaded.table), _normalised(results.table))
    from_json = pd.DataFrame(json.loads((out / "results.json").read_text()), columns=COLUMNS)
    pd.testing.assert_frame_equal(_normalised(from_json), _normalised(results.table))
    # saving what was loaded gives the same files and the same table again
    again = Results.load(loaded.save(tmp_path / "copy"))
    pd.testing.assert_frame_equal(again.table, loaded.table)
    assert (tmp_path / "copy" / "results.csv").read_text() == (out / "results.csv").read_text()
    pd.testing.assert_frame_equal(loaded.max_risk(), results.max_risk(), check_dtype=False)
    pd.testing.assert_frame_equal(loaded.summary(), results.summary(), check_dtype=False)


def test_max_risk_and_views(audit_dir):
    results, _ = audit_dir
    mr = results.max_risk().set_index("target_label")
    assert mr.loc["mask", "risk"] == 0.0
    assert set(mr.index) == {t.label() for t in TARGETS}
    assert all(0.0 <= r <= 1.0 for r in mr["risk"])
    assert len(results.privacy()) == 3 and results.failures().empty
    assert len(results.utility()[results.utility()["metric"].isin(["ssim", "psnr"])]) == 6
    assert results.summary().loc["mask", "ssim:ssim"] == pytest.approx(
        results.table.set_index(["target_label", "metric"]).loc[("mask", "ssim"), "value"])


# -- HTML ------------------------------------------------------------------------------------------------------------
def test_html_is_one_self_contained_file(audit_dir):
    _, out = audit_dir
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.IGNORECASE)
    assert refs, "expected inline images"
    assert all(r.startswith("data:image/png;base64,") for r in refs), [r[:40] for r in refs if not r.startswith("data:")]
    assert not re.search(r"https?://", html)  # nothing fetched: no fonts, scripts, styles or images from the web
    assert "<link" not in html and "@import" not in html and "<script" not in html.lower()
    assert html.count('alt="example"') == 3 * 4  # 4 anonymized thumbnails per target
    assert 'alt="privacy-utility trade-off"' in html


def test_html_names_every_target(audit_dir):
    _, out = audit_dir
    html = (out / "report.html").read_text(encoding="utf-8")
    for t in TARGETS:
        assert f"<h3>{t.label()}</h3>" in html
    assert "tiny-plates" in html and "leak_rate" in html and "ssim" in html and "psnr" in html


def test_html_from_loaded_results_is_the_same(audit_dir):
    """Reports read only the results table: re-rendering from the files gives the same page."""
    results, out = audit_dir
    assert strip_generated(render_html(Results.load(out))) == strip_generated(render_html(results))


def test_user_strings_are_escaped():
    base = {"target": XSS, "target_label": f"blur {XSS}", "params": json.dumps({"note": XSS})}
    est = proportion([True, False, True, True])
    table = pd.DataFrame([
        row(**base, kind="target", component="release", metric="pairs", value=4, n=4, status="ok", message=XSS),
        row(**base, kind="attack", component=XSS, component_label=f"ocr {XSS}", metric=f"m{XSS}", value=est.value,
            ci_low=est.ci_low, ci_high=est.ci_high, n=4, baseline=0.1, original=0.9, risk=0.8, higher_is_better=False,
            standard=False, reason=XSS, status="ok"),
        row(**base, kind="evaluator", component="ssim", component_label=f"ssim {XSS}", metric=f"ssim{XSS}", value=0.5,
            n=4, higher_is_better=True, standard=True, status="ok", message=XSS),
        row(**base, kind="attack", component="reid", component_label=f"reid {XSS}", metric="", status="failed",
            message=f"ValueError: {XSS}"),
    ])
    manifest = {"name": XSS, "seed": 0, "data": {"name": XSS, "evaluation": 4, "auxiliary": 0},
                "config": {"name": XSS}, "versions": {"anonaudit": XSS}, "python": XSS, "platform": XSS}
    html = render_html(Results(table, None, manifest))
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "blur &lt;script&gt;alert(1)&lt;/script&gt;</h3>" in html  # shown as text
    html_titled = render_html(Results(table, None, manifest), title=XSS)
    assert "<script" not in html_titled.lower()


# -- command line ----------------------------------------------------------------------------------------------------------
def test_cli_report_regenerates_the_report(audit_dir, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _, out = audit_dir
    report = out / "report.html"
    before = report.read_text(encoding="utf-8")
    report.unlink()
    assert main(["report", str(out)]) == 0
    assert f"report: {report}" in capsys.readouterr().out
    assert strip_generated(report.read_text(encoding="utf-8")) == strip_generated(before)
    elsewhere = tmp_path / "sub" / "r.html"
    assert main(["report", str(out), "--out", str(elsewhere)]) == 0
    html = elsewhere.read_text(encoding="utf-8")
    assert all(f"<h3>{t.label()}</h3>" in html for t in TARGETS)


def test_cli_report_on_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "anonaudit: error:" in err and "no results.csv" in err and str(tmp_path) in err


def test_tradeoff_annotations_show_only_the_swept_parameters():
    from anonaudit.reports.plots import swept_params

    labels = ["face_blur(kernel=15, detector=dlib_hog)", "face_blur(kernel=25, detector=dlib_hog)"]
    assert swept_params(labels) == ["kernel=15", "kernel=25"]
    assert swept_params(["mask(color=(0, 0, 0))"]) == [""]
    assert swept_params(["pixelate(block=4)", "pixelate"]) == ["block=4", ""]


def test_details_round_floats_but_values_keep_full_precision():
    from anonaudit.measurement import Measurement
    from anonaudit.results import measurement_rows
    from anonaudit.stats import Estimate

    est = Estimate(0.123456789, 0.1, 0.2, 10, "m", extra={"mean_abs_yaw_difference": 1.0713362849022, "pairs": 418})
    (r,) = measurement_rows(Measurement("pose_difference", est), {"target": "t"}, "evaluator", 0.0)
    assert r["message"] == "mean_abs_yaw_difference=1.071; pairs=418" and r["value"] == 0.123456789
