"""Results files and the HTML report from a small real audit: table columns in CSV and JSON, the
``Results.load`` round trip, one self-contained HTML file (inline images, nothing fetched from the
network), escaping of user strings, and ``anonaudit report`` regenerating the report."""

from __future__ import annotations

import base64
import html as htmllib
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from shared_data import debian_program

from anonaudit.anonymizers import GaussianBlur, Mask
from anonaudit.attacks.base import Attack, AttackMetric, AttackResult
from anonaudit.audit import Audit
from anonaudit.cli import main
from anonaudit.data.io import write_image
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import DataError
from anonaudit.evaluators import PSNR, SSIM
from anonaudit.reports.html import render_html, write_html_report
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
    write_html_report(results)
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
    assert all(r.startswith("data:image/png;base64,") for r in refs), [
        r[:40] for r in refs if not r.startswith("data:")
    ]
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


# -- command line ------------------------------------------------------------------------------------------------------
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


def test_tradeoff_points_are_numbered_in_report_order_and_the_key_spells_them_out(tmp_path: Path):
    from anonaudit.reports.plots import numbered_points

    results = _sweep_results(tmp_path)
    pts = numbered_points(results.table, results.max_risk(), "ssim")
    assert list(pts["target_label"]) == ["pixelate(block=4)", "pixelate(block=8)", "pixelate(block=16)", "mask",
                                         "gaussian_blur(sigma=2)", "gaussian_blur(sigma=8)"]
    assert list(pts["number"]) == [1, 2, 3, 4, 5, 6]
    html = render_html(results)
    key = html[html.index('id="plot-key"'):]
    key = key[:key.index("</table>")]
    rows = re.findall(r'<td class="num k">(\d+)</td><td class="label" title="([^"]+)"', key)
    assert rows == [(str(n), lab.replace("'", "&#39;")) for n, lab in zip(pts["number"], pts["target_label"])]
    assert '20.0% <span class="ci">[15.0, 25.0]</span>' in key  # pixelate(block=8): risk 0.2 [0.15, 0.25]


def test_risk_axis_shows_every_ci_up_to_the_cap():
    from anonaudit.reports.plots import RISK_AXIS_CAP, risk_axis

    lo, hi = risk_axis([0.2, 0.5], [0.1, -0.4], [0.3, 2.0])
    assert lo < -0.4 and hi > 2.0  # the whole CI, below 0 and above 1, is on the axis
    lo, hi = risk_axis([0.2], [0.1], [np.inf])
    assert 1.0 < hi < 1.2  # an unbounded end does not stretch the axis: it is cut (and marked) at the edge
    lo, hi = risk_axis([0.2], [0.1], [50.0])
    assert RISK_AXIS_CAP < hi < RISK_AXIS_CAP * 1.2 and lo < 0
    lo, hi = risk_axis([4.5], [4.0], [5.0])
    assert hi > 4.5  # a point above the cap is still shown


def test_tradeoff_png_draws_with_unbounded_and_cut_cis(tmp_path: Path):
    from anonaudit.reports.plots import tradeoff_png

    results = _sweep_results(tmp_path)
    t = results.table.copy()
    attack = t["kind"] == "attack"
    t.loc[attack, "risk_ci_high"] = [np.inf, 9.0, 0.5, 0.6, 0.7, 0.8]
    t.loc[attack, "risk_ci_low"] = [0.0, -5.0, 0.1, 0.2, 0.3, 0.4]
    png = tradeoff_png(t, Results(t).max_risk(), "ssim")
    assert png and Image.open(io.BytesIO(png)).size[0] > 500


def test_details_round_floats_but_values_keep_full_precision():
    from anonaudit.measurement import Measurement
    from anonaudit.results import measurement_rows
    from anonaudit.stats import Estimate

    est = Estimate(0.123456789, 0.1, 0.2, 10, "m", extra={"mean_abs_yaw_difference": 1.0713362849022, "pairs": 418})
    (r,) = measurement_rows(Measurement("pose_difference", est), {"target": "t"}, "evaluator", 0.0)
    assert r["message"] == "mean_abs_yaw_difference=1.071; pairs=418" and r["value"] == 0.123456789


# -- what the page shows (hand-built tables) ------------------------------------------------------------------------
SWEEP = ["pixelate(block=16)", "pixelate(block=4)", "pixelate(block=8)", "mask", "gaussian_blur(sigma=8)",
         "gaussian_blur(sigma=2)"]
NOTE = "no inversion: the release was made by a method this attack does not invert"


def _sweep_results(tmp_path: Path, n_unavailable_targets: int = 6) -> Results:
    rows = []
    for i, label in enumerate(SWEEP):
        base = {"target": label.split("(")[0], "target_label": label, "target_id": f"t{i}"}
        risk = 0.1 * i
        rows += [
            row(**base, kind="target", component="release", metric="pairs", value=40, n=40, status="ok"),
            row(
                **base,
                kind="attack",
                component="deblur_ocr",
                component_label="deblur_ocr(methods=['wiener'], balances=[0.01])",
                metric="exact_match",
                value=0.25,
                ci_low=0.14,
                ci_high=0.41,
                n=40,
                baseline=1.85e-07,
                original=0.9,
                risk=risk,
                risk_ci_low=max(0.0, risk - 0.05),
                risk_ci_high=risk + 0.05,
                risk_kind="relative",
                higher_is_better=False,
                status="ok",
                message=NOTE,
            ),
            row(
                **base,
                kind="evaluator",
                component="ssim",
                component_label="ssim",
                metric="ssim",
                value=0.5 + 0.05 * i,
                ci_low=0.45 + 0.05 * i,
                ci_high=0.55 + 0.05 * i,
                n=40,
                higher_is_better=True,
                status="ok",
                message="region=image; identical=0",
            ),
        ]
        if i < n_unavailable_targets:
            rows.append(
                row(
                    **base,
                    kind="evaluator",
                    component="fid",
                    component_label="fid",
                    metric="",
                    status="unavailable",
                    message="inception-fid unavailable: weights not in the cache (run `anonaudit models fetch "
                    "inception-fid`)",
                )
            )
    return Results(pd.DataFrame(rows), tmp_path, {"name": "sweep", "seed": 0})


def test_targets_sort_naturally_within_their_method(tmp_path: Path):
    html = render_html(_sweep_results(tmp_path))
    heads = re.findall(r"<h3>([^<]+)</h3>", html)
    assert heads == ["pixelate(block=4)", "pixelate(block=8)", "pixelate(block=16)", "mask",
                     "gaussian_blur(sigma=2)", "gaussian_blur(sigma=8)"]
    headline = html[html.index("Headline"):html.index("How to read this")]
    positions = [headline.index(f'title="{lab}"') for lab in heads]
    assert positions == sorted(positions)


def test_headline_has_n_and_cis_and_numbers_read_the_same_everywhere(tmp_path: Path):
    html = render_html(_sweep_results(tmp_path))
    headline = html[html.index("Headline"):html.index("How to read this")]
    assert "risk [95% CI]" in headline and "<th class=\"num\">n</th>" in headline
    # pixelate(block=8) is the third target built: risk 0.2 [0.15, 0.25]; risks and rates as percentages
    assert '20.0% <span class="ci">[15.0, 25.0]</span>' in headline
    assert '25.0% <span class="ci">[14.0, 41.0]</span>' in headline
    assert ">0.0%<" in headline and "e-07" not in html  # a baseline of 1.85e-07 reads 0.0%
    assert '0.750 <span class="ci">[0.700, 0.800]</span>' in html  # utility: three decimals


def test_identical_unavailable_rows_become_one_line_per_reason(tmp_path: Path):
    html = render_html(_sweep_results(tmp_path))
    assert html.count("inception-fid unavailable") == 1
    assert "(all 6 targets)" in html
    some = render_html(_sweep_results(tmp_path, n_unavailable_targets=2))
    assert some.count("inception-fid unavailable") == 1
    assert "(pixelate(block=4), pixelate(block=16))" in some  # the two targets it hit, in report order


def test_repeated_labels_and_notes_appear_once(tmp_path: Path):
    html = render_html(_sweep_results(tmp_path))
    assert html.count(NOTE) == 1  # shared by every target: said once, under Attacks
    assert html.count("methods=[&#39;wiener&#39;], balances=[0.01]") == 1  # the long label only in the legend
    assert html.count("region=image; identical=0") == 1


def test_verdict_comes_first_or_the_page_says_no_policy_was_applied(tmp_path: Path):
    results = _sweep_results(tmp_path)
    html = render_html(results)
    assert html.index("No policy applied") < html.index("Headline")
    assert f"anonaudit certify {tmp_path} --policy strict" in html
    crit = {
        "id": "ocr-exact-match",
        "status": "NOT TESTED",
        "reason": "no attack matching 'ocr' was run",
        "select": "ocr/*",
        "on": "value",
        "comparison": "<=",
        "threshold_text": "1%",
        "bound": "upper",
        "component": "",
        "metric": "",
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "n": 0,
    }
    ssim = {**crit, "id": "ssim", "status": "FAIL", "reason": "lower 95% bound 0.45 breaks >= 0.8", "component": "ssim",
            "metric": "ssim", "value": 0.5, "ci_low": 0.45, "ci_high": 0.55, "n": 40}
    verdict = {"overall": "FAIL", "policy": {"name": "strict-public-release", "description": "public release"},
               "created": "2026-01-01T00:00:00+00:00",
               "targets": [{"target_label": lab, "verdict": "FAIL" if lab == "mask" else "NOT TESTED",
                            "criteria": [crit] + ([ssim] if lab == "mask" else [])} for lab in SWEEP]}
    (tmp_path / "verdict.json").write_text(json.dumps(verdict))
    html = render_html(results)
    assert html.index('class="verdict FAIL"') < html.index("Headline") and "Verdict: FAIL" in html
    assert html.count("no attack matching &#39;ocr&#39; was run") == 1  # shared by every target: said once
    assert "lower 95% bound 0.45 breaks &gt;= 0.8" in html
    (tmp_path / "verdict.json").write_text("{not json")
    with pytest.raises(DataError, match=r"verdict\.json: not a readable verdict file"):
        render_html(results)


def test_trade_off_labels_do_not_collide():
    import matplotlib.pyplot as plt

    from anonaudit.reports.plots import place_labels

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    xs, ys = [0.50, 0.51, 0.52, 0.53, 0.9], [1.0, 1.0, 0.99, 1.0, 0.1]
    ax.plot(xs, ys, "o")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.1)
    fig.canvas.draw()
    anns = place_labels(ax, xs, ys, ["sigma=1", "sigma=2", "block=4", "block=8", "mask"])
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in anns]
    assert len(boxes) == 5
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_numbered_labels_of_coinciding_points_do_not_collide():
    """Eight targets at the very same point (two releases that leak and keep the same): every
    number gets its own place, none on another or on the marker."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from anonaudit.reports.plots import place_labels

    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=110)
    xs, ys = [0.6] * 8 + [0.61, 0.2], [0.5] * 8 + [0.5, 0.0]
    ax.plot(xs, ys, "o")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.1)
    fig.canvas.draw()
    anns = place_labels(ax, xs, ys, [str(i) for i in range(1, 11)], fontsize=8)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(a, renderer) for a in anns]  # the text itself, without its leader line
    assert len(boxes) == 10
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    marker = ax.transData.transform((0.6, 0.5))
    assert not any(b.contains(*marker) for b in boxes)
    plt.close(fig)


#: Appended to a page before Chromium lays it out: opens every <details>, then records in <pre id="layout">
#: the page's width, the number of key cells (risk, CI, n, verdict: ``td.k``) and every problem: a table
#: box that needs a horizontal scroll, a key cell or CI that is hidden or cut by its box or the window.
LAYOUT_PROBE = """<script>
document.querySelectorAll('details').forEach(d => { d.open = true; });
const W = window.innerWidth, bad = [];
for (const box of document.querySelectorAll('.scroll')) {
  if (box.scrollWidth > box.clientWidth + 1) {
    bad.push('scrolls ' + box.scrollWidth + '>' + box.clientWidth + ': ' + box.textContent.trim().slice(0, 50));
  }
}
const keys = document.querySelectorAll('td.k, td.k .ci');
for (const cell of keys) {
  const r = cell.getBoundingClientRect(), box = cell.closest('.scroll');
  const right = Math.min(W, box ? box.getBoundingClientRect().right : W);
  if (r.width === 0 || r.height === 0 || r.left < 0 || r.right > right + 1) bad.push('cut: ' +
  cell.textContent.trim().slice(0, 50));
}
const out = document.createElement('pre');
out.id = 'layout';
out.textContent = JSON.stringify({width: document.documentElement.scrollWidth, inner: W, keys: keys.length, bad: bad});
document.body.appendChild(out);
</script>"""


def browser_layout(page: Path, width: int, tmp: Path) -> dict:
    """What :data:`LAYOUT_PROBE` records for ``page`` laid out by headless Chromium ``width`` px wide;
    a screenshot of the first 2400 px is left at ``tmp/<page stem>-<width>.png``."""
    chromium = debian_program("chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}",
             f"--window-size={width},2400"]
    probe = tmp / f"{page.stem}-{width}-probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, flags=re.S)
    assert found, dom[:500]
    subprocess.run([chromium, *flags, f"--screenshot={tmp / f'{page.stem}-{width}.png'}", page.as_uri()],
                   capture_output=True, timeout=120)
    return json.loads(htmllib.unescape(found.group(1)))


@pytest.mark.debian("chromium")
@pytest.mark.parametrize("width", [1280, 768])
def test_no_key_column_is_cut_at_1280_or_768_px(tmp_path: Path, width: int):
    """The report and the compliance report of a run with long labels, a verdict on several criteria
    (details opened) and five targets: at either width no table needs a horizontal scroll and every
    risk, CI, n and verdict cell is fully inside the window."""
    from anonaudit.reports.compliance import write_compliance_report

    results = _wide_run(tmp_path / "run")
    pages = [write_html_report(results), write_compliance_report(results, tmp_path / "run")[0]]
    for page in pages:
        layout = browser_layout(page, width, tmp_path)
        assert layout["inner"] == width
        assert layout["width"] <= width, (page.name, layout)
        assert layout["keys"] > 20, (page.name, layout)
        assert layout["bad"] == [], (page.name, layout["bad"])
        shot = np.asarray(Image.open(tmp_path / f"{page.stem}-{width}.png").convert("L"))
        assert shot.shape[1] == width and (shot < 128).mean() > 0.01  # laid out, not blank


@pytest.mark.debian("chromium")
def test_page_in_headless_chromium_at_768_px(tmp_path: Path, audit_dir):
    """The report as a browser lays it out at 768 px: the verdict box is in the first screen and the
    page itself never scrolls sideways (wide tables scroll inside their own box)."""
    results, _ = audit_dir
    verdict = {"overall": "FAIL", "policy": {"name": "strict"}, "created": "now",
               "targets": [{"target_label": t.label(), "verdict": "FAIL", "criteria": []} for t in TARGETS]}
    run = tmp_path / "run"
    Results(results.table, run, results.manifest).save(run)
    (run / "verdict.json").write_text(json.dumps(verdict))
    page = write_html_report(Results.load(run))
    chromium = debian_program("chromium")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=768,900",
    ]
    probe = tmp_path / "probe.html"  # the page plus a script that records its width in the DOM
    probe.write_text(page.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.body.dataset.width = document.documentElement.scrollWidth;</script></body>"),
        encoding="utf-8")
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    width = re.search(r'data-width="(\d+)"', dom)
    assert width, dom[:500]
    assert int(width.group(1)) <= 768
    assert "Verdict: FAIL" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[1] == 768
    red = (np.abs(pixels - np.array([179, 38, 30])).sum(axis=2) < 40)  # the FAIL box's border and title
    rows = np.where(red.any(axis=1))[0]
    assert rows.size and rows.min() < 300, "the verdict is not in the first screen"


def test_cli_report_embeds_examples_only_on_request(audit_dir, tmp_path: Path):
    _, out = audit_dir
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "redacted" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert main(["report", str(out), "--out", str(tmp_path / "e.html"), "--embed-examples"]) == 0
    html = (tmp_path / "e.html").read_text(encoding="utf-8")
    first = sorted((out / "examples").glob("*/00.png"))[0]
    assert base64.b64encode(first.read_bytes()).decode() in html and "as released" in html


def test_a_verdict_on_other_targets_is_flagged(tmp_path: Path):
    results = _sweep_results(tmp_path)
    verdict = {"overall": "PASS", "policy": {"name": "research"}, "created": "then",
               "targets": [{"target_label": "pixelate(block=32)", "verdict": "PASS", "criteria": []}]}
    (tmp_path / "verdict.json").write_text(json.dumps(verdict))
    html = render_html(results)
    assert "This verdict does not match these results" in html and "pixelate(block=32)" in html


def test_compute_cost_counts_each_unit_once_per_target(tmp_path: Path):
    from anonaudit.reports.fmt import seconds
    from anonaudit.reports.html import compute_cost

    rows = []
    for i, (label, release_s, deblur_s) in enumerate([("mask", 1.0, 0.0), ("gaussian_blur(sigma=2)", 2.0, 30.0)]):
        base = {"target": label.split("(")[0], "target_label": label, "target_id": f"t{i}"}
        rows += [
            row(
                **base,
                kind="target",
                component="release",
                metric="pairs",
                value=40,
                n=40,
                status="ok",
                seconds=release_s,
            ),
            row(**base, kind="target", component="release", metric="unpaired_originals", value=0, status="ok"),
            # one unit, two metric rows carrying its seconds: counted once
            row(
                **base,
                kind="attack",
                component="deblur_ocr",
                component_label="deblur_ocr",
                metric="exact_match_raw",
                value=0.1,
                status="ok",
                seconds=deblur_s,
            ),
            row(
                **base,
                kind="attack",
                component="deblur_ocr",
                component_label="deblur_ocr",
                metric="exact_match_inverted",
                value=0.2,
                status="ok",
                seconds=deblur_s,
            ),
            row(
                **base,
                kind="evaluator",
                component="ssim",
                component_label="ssim",
                metric="ssim",
                value=0.5,
                status="ok",
                seconds=0.5,
            ),
            row(
                **base,
                kind="evaluator",
                component="psnr",
                component_label="psnr",
                metric="psnr",
                value=20.0,
                status="ok",
                seconds=0.25,
            ),
            row(
                **base,
                kind="evaluator",
                component="fid",
                component_label="fid",
                metric="",
                status="unavailable",
                message="no weights",
            ),
        ]
    table = pd.DataFrame(rows)
    cost = compute_cost(table, ["mask", "gaussian_blur(sigma=2)"], {"deblur_ocr": "deblur_ocr"})
    assert cost["columns"] == ["release", "deblur_ocr", "utility metrics"]
    assert [r["cells"] for r in cost["rows"]] == [[1.0, 0.0, 0.75], [2.0, 30.0, 0.75]]
    assert [r["total"] for r in cost["rows"]] == [1.75, 32.75]
    assert cost["totals"] == [3.0, 30.0, 1.5] and cost["total"] == 34.5
    html = render_html(Results(table, tmp_path, {"name": "cost", "seed": 0}))
    section = html[html.index("<h2>Compute cost</h2>"):]
    assert "34.5 s in all" in section and "<b>32.8 s</b>" in section
    assert [seconds(v) for v in (0.04, 59.9, 60.0, 125.4, None)] == ["0.0 s", "59.9 s", "1 min 00 s", "2 min 05 s", "–"]


# -- badges, one number format, layout at 1280 and 768 px (hand-built run) --------------------------------------------
LONG = "external(path=/data/releases/2026-12/city-centre/batch-0042/anonymized_v3_final)"
WIDE = [
    LONG,
    "pixelate(block=4)",
    "pixelate(block=8)",
    "gaussian_blur(sigma=2, region=boxes, detector=plate_yolo_v8_large)",
    "mask",
]
#: Per target: (relative risk, its CI) of OCR and (new-leak risk, its CI) of metadata.
RISKS = [((1.2, 1.1, 1.4), (0.1, 0.05, 0.2)), ((1.2, 0.9, 1.4), (0.1, 0.0, 0.2)), ((0.4, 0.3, 0.5), (0.0, 0.0, 0.03)),
         ((0.2, 0.1, 0.3), (0.0, 0.0, 0.03)), ((0.0, 0.0, 0.02), (0.0, 0.0, 0.03))]


def _wide_run(folder: Path) -> Results:
    """Five targets with long labels, OCR (relative risk), metadata (new leak), an AUC, two utility
    metrics, a verdict on several criteria and four example images per target."""
    rows, verdicts = [], []
    rng = np.random.default_rng(0)
    for i, (label, ((r, rlo, rhi), (m, mlo, mhi))) in enumerate(zip(WIDE, RISKS)):
        base = {
            "target": label.split("(")[0],
            "target_label": label,
            "target_id": f"{label.split('(')[0].replace('_', '-')}-{i:04d}",
        }
        attack = {**base, "kind": "attack", "higher_is_better": False, "status": "ok", "seconds": 3.0}
        rows += [
            row(**base, kind="target", component="release", metric="pairs", value=120, n=120, status="ok", seconds=2.0),
            row(
                **attack,
                component="ocr",
                component_label="ocr(engine=rapidocr, normalise=plates_us_strict)",
                metric="exact_match",
                value=0.42 * r,
                ci_low=0.42 * rlo,
                ci_high=0.42 * rhi,
                n=120,
                baseline=1.85e-07,
                original=0.42,
                risk=r,
                risk_ci_low=rlo,
                risk_ci_high=rhi,
                risk_kind="relative",
            ),
            row(
                **attack,
                component="metadata",
                component_label="metadata",
                metric="files_with_gps",
                value=m,
                ci_low=mlo,
                ci_high=mhi,
                n=120,
                baseline=0.0,
                original=0.0,
                risk=m,
                risk_ci_low=mlo,
                risk_ci_high=mhi,
                risk_kind="new_leak",
            ),
            row(
                **attack,
                component="membership_dcr",
                component_label="membership_dcr",
                metric="auc",
                value=0.52,
                ci_low=0.45,
                ci_high=0.6,
                n=128,
                baseline=0.5,
                original=0.7,
                risk=0.1,
                risk_ci_low=-0.25,
                risk_ci_high=0.5,
                risk_kind="relative",
            ),
            row(
                **base,
                kind="evaluator",
                component="ssim",
                component_label="ssim",
                metric="ssim",
                value=0.9 - 0.1 * i,
                ci_low=0.88 - 0.1 * i,
                ci_high=0.92 - 0.1 * i,
                n=120,
                higher_is_better=True,
                status="ok",
                seconds=1.0,
            ),
            row(
                **base,
                kind="evaluator",
                component="psnr",
                component_label="psnr",
                metric="psnr",
                value=30.0 - i,
                ci_low=29.0 - i,
                ci_high=31.0 - i,
                n=120,
                higher_is_better=True,
                status="ok",
                seconds=1.0,
            ),
        ]
        crit = [
            {
                "id": "ocr-exact-match",
                "status": "FAIL" if r > 0.05 else "PASS",
                "select": "ocr/exact_match",
                "on": "value",
                "comparison": "<=",
                "threshold_text": "1%",
                "bound": "upper",
                "component": "ocr",
                "metric": "exact_match",
                "value": 0.42 * r,
                "ci_low": 0.42 * rlo,
                "ci_high": 0.42 * rhi,
                "n": 120,
                "reason": f"upper 95% bound {0.42 * rhi:.1%} breaks <= 1%",
            },
            {
                "id": "metadata-gps",
                "status": "FAIL" if mlo > 0 else "PASS",
                "select": "metadata/files_with_gps",
                "on": "value",
                "comparison": "==",
                "threshold_text": "0",
                "bound": "value",
                "component": "metadata",
                "metric": "files_with_gps",
                "value": m,
                "ci_low": mlo,
                "ci_high": mhi,
                "n": 120,
                "reason": "",
            },
            {
                "id": "ssim-floor",
                "status": "PASS",
                "select": "ssim/ssim",
                "on": "value",
                "comparison": ">=",
                "threshold_text": "0.5",
                "bound": "lower",
                "component": "ssim",
                "metric": "ssim",
                "value": 0.9 - 0.1 * i,
                "ci_low": 0.88 - 0.1 * i,
                "ci_high": 0.92 - 0.1 * i,
                "n": 120,
                "reason": "",
            },
        ]
        verdicts.append(
            {
                "target_label": label,
                "verdict": "FAIL" if any(c["status"] == "FAIL" for c in crit) else "PASS",
                "criteria": crit,
            }
        )
        for k in range(4):
            write_image(folder / "examples" / base["target_id"] / f"{k:02d}.png",
                        (rng.random((80, 240, 3)) * 255).astype(np.uint8))
    results = Results(
        pd.DataFrame(rows),
        folder,
        {
            "name": "city-centre-2026-12",
            "seed": 0,
            "data": {"name": "plates", "n": 150, "evaluation": 120, "auxiliary": 30},
        },
    )
    results.save(folder)
    (folder / "verdict.json").write_text(json.dumps({"overall": "FAIL", "policy": {"name": "strict-public-release"},
                                                     "created": "2026-12-07T10:00:00+00:00", "targets": verdicts}))
    return Results.load(folder)


def _section(html: str, label: str) -> str:
    """The per-target section of ``label`` (up to the next heading)."""
    start = html.index(f"<h3>{htmllib.escape(label, quote=True).replace('&#x27;', '&#39;')}</h3>")
    return html[start:html.index("<h", start + 4)]


def test_badges_appear_exactly_under_their_rules(tmp_path: Path):
    """Relative risk CI [1.1, 1.4]: "leaks more than the originals"; [0.9, 1.4]: no badge although
    the point is 1.2. New-leak CI [0.05, 0.2]: the red "new leak"; [0, 0.2]: no red badge."""
    from anonaudit.reports.html import risk_badges

    assert [b["text"] for b in risk_badges("relative", 1.1)] == ["leaks more than the originals"]
    assert (
        risk_badges("relative", 0.9) == []
        and risk_badges("relative", 1.0) == []
        and risk_badges("relative", None) == []
    )
    assert [b["cls"] for b in risk_badges("new_leak", 0.05)] == ["red"]
    assert [b["cls"] for b in risk_badges("new_leak", 0.0)] == ["note"]  # the scale only, never red
    html = render_html(_wide_run(tmp_path))
    more, red = '<span class="badge more"', '<span class="badge red"'
    first, second = _section(html, WIDE[0]), _section(html, WIDE[1])
    assert first.count(more) == 1 and first.count(red) == 1
    assert second.count(more) == 0 and second.count(red) == 0 and "originals leak nothing" in second
    assert all(_section(html, lab).count(more) + _section(html, lab).count(red) == 0 for lab in WIDE[2:])
    headline = html[html.index('id="headline"'):]
    headline = headline[:headline.index("</table>")]
    rows = headline.split("<tr>")[2:]
    assert [r.count(more) for r in rows] == [1, 0, 0, 0, 0]  # the headline is OCR's relative risk on every target


def test_rates_and_risks_read_the_same_everywhere(tmp_path: Path):
    """Every value with a CI reads ``12.3% [8.1, 17.6]`` (a rate or a risk) or ``0.520 [0.450, 0.600]``
    (AUC, SSIM): never a percent sign inside the brackets, never a bare ratio for a rate."""
    html = render_html(_wide_run(tmp_path))
    pairs = re.findall(r'>\s*([^<>\s]+) <span class="ci">([^<]*)</span>', html)
    assert len(pairs) > 40
    pct = re.compile(r"-?\d+\.\d% \[-?\d+\.\d, (-?\d+\.\d|∞)\]")
    number = re.compile(r"-?[\d,]+(\.\d+)? \[-?[\d,]+(\.\d+)?, -?[\d,]+(\.\d+)?\]")
    for value, ci in pairs:
        text = f"{value} {ci}"
        assert pct.fullmatch(text) or (number.fullmatch(text) and "%" not in text), text
    verdict = html[html.index('id="verdict"'):html.index("Headline")]
    assert '50.4% <span class="ci">[46.2, 58.8]</span>' in verdict  # the OCR criterion: an attack rate, in percent
    assert '0.900 <span class="ci">[0.880, 0.920]</span>' in verdict  # SSIM stays a measure
    assert '120.0% <span class="ci">[110.0, 140.0]</span>' in html  # a risk above the originals'
    assert "0.52 " not in html.replace("0.520", "")  # the AUC reads in its own (num) format


def test_no_original_image_appears_in_the_report(audit_dir, tmp_path: Path):
    """Every image embedded in the report (thumbnails and plot), redacted or as released, differs
    from every original image of the audited data (also after the audit's thumbnailing)."""
    _, out = audit_dir
    originals = []
    for img in synthetic_plates(n=12, seed=0):
        thumb = Image.fromarray(img)
        thumb.thumbnail((320, 320))
        originals.append(np.asarray(thumb.convert("RGB")).astype(int))
    for flag in ([], ["--embed-examples"]):
        page = tmp_path / f"r{len(flag)}.html"
        assert main(["report", str(out), "--out", str(page), *flag]) == 0
        embedded = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")).astype(int)
                    for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page.read_text(encoding="utf-8"))]
        assert len(embedded) == 1 + 3 * 4
        for shown in embedded:
            for orig in originals:
                assert shown.shape != orig.shape or np.abs(shown - orig).mean() > 2.0


def test_examples_sit_side_by_side_by_index(tmp_path: Path):
    html = render_html(_wide_run(tmp_path))
    section = html[html.index("<h2>Examples of the release</h2>"):]
    rows = re.findall(
        r'<div class="ex-index">example (\d+)</div><div class="thumbs side">(.*?)</div></div>', section, flags=re.S
    )
    assert [int(i) for i, _ in rows] == [1, 2, 3, 4]
    for _, body in rows:
        captions = re.findall(r'<figcaption title="([^"]+)">', body)
        assert [htmllib.unescape(c) for c in captions] == WIDE  # one per target, in report order
        assert body.count('alt="example"') == len(WIDE) and body.count(
            '<span class="note">redacted (24-px blocks)</span>'
        ) == len(WIDE)
