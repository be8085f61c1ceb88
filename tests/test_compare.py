"""``anonaudit compare``: Pareto fronts, worst-case attacks and weighted rankings on hand-built
results tables whose answers are computed by hand (in the comments), plus the command line."""

from __future__ import annotations

import csv
import io
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import ExifTags, Image

from anonaudit.audit import audit_from_config
from anonaudit.cli import main
from anonaudit.config import parse_config
from anonaudit.datasets import synthetic_plates
from anonaudit.errors import ConfigError, DataError
from anonaudit.release_audit import release_config
from anonaudit.results import Results, row
from anonaudit.verdicts.compare import (
    check_comparable,
    compare,
    load_runs,
    open_runs,
    parse_weights,
    short_labels,
    shorten,
)
from anonaudit.verdicts.pareto import dominates, pareto_front

# Four methods, two attacks (ocr with two metrics, reid with one), two utility metrics.
#          ocr risks (worst)   reid   ssim  psnr
# A        .9, .8  -> .9       .2     .9    30
# B        .5, .3  -> .5       .7     .8    25
# C        .6, .2  -> .6       .1     .7    20
# D        .1, .05 -> .1       .05    .3    10
METHODS = {
    "A": {"ocr": (0.9, 0.8), "reid": 0.2, "ssim": 0.9, "psnr": 30.0},
    "B": {"ocr": (0.5, 0.3), "reid": 0.7, "ssim": 0.8, "psnr": 25.0},
    "C": {"ocr": (0.6, 0.2), "reid": 0.1, "ssim": 0.7, "psnr": 20.0},
    "D": {"ocr": (0.1, 0.05), "reid": 0.05, "ssim": 0.3, "psnr": 10.0},
}


def _attack(label: str, component: str, metric: str, risk: float, n: int = 100) -> dict:
    value = 0.1 + 0.8 * risk  # baseline 0.1, originals 0.9
    return row(target=label, target_label=label, kind="attack", component=component, component_label=component,
               metric=metric, value=value, ci_low=value - 0.05, ci_high=value + 0.05, n=n, baseline=0.1, original=0.9,
               risk=risk, risk_ci_low=max(0.0, risk - 0.06), risk_ci_high=risk + 0.06, risk_kind="relative",
               higher_is_better=False, status="ok")


def _utility(label: str, metric: str, value: float, hib: bool = True) -> dict:
    return row(
        target=label,
        target_label=label,
        kind="evaluator",
        component=metric,
        component_label=metric,
        metric=metric,
        value=value,
        ci_low=value * 0.95,
        ci_high=value * 1.05,
        n=100,
        higher_is_better=hib,
        status="ok",
    )


def table(methods: dict = METHODS) -> pd.DataFrame:
    rows = []
    for label, m in methods.items():
        rows += [_attack(label, "ocr", "exact_match", m["ocr"][0]), _attack(label, "ocr", "char_accuracy", m["ocr"][1])]
        if "reid" in m:
            rows.append(_attack(label, "reid", "rank1", m["reid"]))
        rows += [_utility(label, "ssim", m["ssim"]), _utility(label, "psnr", m["psnr"])]
    return pd.DataFrame(rows)


# -- Pareto ----------------------------------------------------------------------------------------------------------
def test_dominates_needs_one_strict_improvement():
    hib = [False, True]  # risk lower is better, utility higher is better
    assert dominates((0.1, 0.9), (0.2, 0.8), hib)
    assert dominates((0.1, 0.9), (0.1, 0.8), hib)  # equal risk, better utility
    assert not dominates((0.1, 0.9), (0.1, 0.9), hib)  # identical points do not dominate each other
    assert not dominates((0.1, 0.7), (0.2, 0.8), hib)  # a trade-off


def test_pareto_front_marks_dominated_points_and_who_dominates_them():
    pts = pd.DataFrame({"risk": [0.9, 0.5, 0.6, 0.1, math.nan], "ssim": [0.9, 0.8, 0.7, 0.3, 0.5]},
                       index=["A", "B", "C", "D", "E"])
    front = pareto_front(pts, ["risk", "ssim"], [False, True])
    assert list(front.index[front["on_front"]]) == ["A", "B", "D"]
    assert front.at["C", "dominated_by"] == ["B"]
    assert front.at["E", "dominated_by"] is None and not front.at["E", "on_front"]  # not comparable
    # lower-is-better utility flips it: now D (lowest "ssim") is best on both axes
    flipped = pareto_front(pts, ["risk", "ssim"], [False, False])
    assert list(flipped.index[flipped["on_front"]]) == ["D"]
    assert flipped.at["A", "dominated_by"] == ["B", "C", "D"]


# -- comparison --------------------------------------------------------------------------------------------------------
def test_worst_case_attack_per_method():
    c = compare(table())
    t = c.table.set_index("method")
    assert t.loc[["A", "B", "C", "D"], "worst_attack"].tolist() == ["ocr", "reid", "ocr", "ocr"]
    assert t.loc[["A", "B", "C", "D"], "worst_risk"].tolist() == pytest.approx([0.9, 0.7, 0.6, 0.1])
    assert t.at["A", "worst_metric"] == "exact_match"
    assert t.at["B", "worst_risk_ci_high"] == pytest.approx(0.76) and t.at["B", "worst_risk_upper"] == pytest.approx(
        0.76
    )
    # every measure keeps its CI and n in the table
    assert t.at["C", "ssim ci_low"] == pytest.approx(0.665) and t.at["C", "ssim n"] == 100
    assert t.at["B", "ocr risk"] == pytest.approx(0.5) and t.at["B", "ocr metric"] == "exact_match"


def test_pareto_fronts_per_attack_and_utility_pair():
    p = compare(table()).pareto.set_index(["attack", "utility", "method"])
    def front(a, u):
        return sorted(m for (aa, uu, m), on in p["on_front"].items() if aa == a and uu == u and on)

    assert front("ocr", "ssim") == ["A", "B", "D"]  # C (risk .6, ssim .7) is beaten by B (.5, .8)
    assert p.at[("ocr", "ssim", "C"), "dominated_by"] == "B"
    assert front("reid", "ssim") == ["A", "C", "D"]  # B (.7, .8) is beaten by A (.2, .9)
    assert p.at[("reid", "ssim", "B"), "dominated_by"] == "A"
    assert set(p.index.get_level_values("utility")) == {"ssim", "psnr"}
    assert p.at[("ocr", "ssim", "A"), "privacy_measure"] == "risk upper bound"
    assert p.at[("ocr", "ssim", "A"), "privacy"] == pytest.approx(0.96)


# Risk upper bounds (risk + 0.06): ocr A .96, B .56, C .66, D .16; reid A .26, B .76, C .16, D .11. Worst case:
# A .96 (ocr), B .76 (reid), C .66 (ocr), D .16 (ocr), so privacy = 1 - worst: A .04, B .24, C .34, D .84. Utility:
# SSIM as
# measured (A .9, B .8, C .7, D .3); PSNR in dB has no fixed [0, 1] scale and is not scored. The score is the weighted
# geometric mean of the weighted keys' scores.
PRIVACY = {"A": 0.04, "B": 0.24, "C": 0.34, "D": 0.84}
SSIM = {"A": 0.9, "B": 0.8, "C": 0.7, "D": 0.3}


@pytest.mark.parametrize(
    "weights, order, scores",
    [
        ("privacy=0.7,utility=0.3", ["D", "C", "B", "A"], {m: PRIVACY[m] ** 0.7 * SSIM[m] ** 0.3 for m in "ABCD"}),
        ("utility=1", ["A", "B", "C", "D"], SSIM),
        (
            "ocr=1",
            ["D", "B", "C", "A"],
            {"A": 0.04, "B": 0.44, "C": 0.34, "D": 0.84},
        ),  # per attack: 1 - its risk upper bound
        (
            "reid=1,ssim=1",
            ["A", "C", "D", "B"],
            {"A": (0.74 * 0.9) ** 0.5, "B": (0.24 * 0.8) ** 0.5, "C": (0.84 * 0.7) ** 0.5, "D": (0.89 * 0.3) ** 0.5},
        ),
    ],
)
def test_ranking_at_weights(weights, order, scores):
    c = compare(table(), weights)
    t = c.table.set_index("method")
    assert list(c.table["method"]) == order
    assert t["rank"].tolist() == [1.0, 2.0, 3.0, 4.0]
    for m, s in scores.items():
        assert t.at[m, "score"] == pytest.approx(s), m


def test_scores_do_not_depend_on_the_other_methods_compared():
    """Utility is SSIM as measured, not min-max scaled over the compared methods: A and B keep their scores
    whether C and D are compared too (min-max scaling would give B's SSIM 0 next to A alone)."""
    pair = compare(table({k: METHODS[k] for k in "AB"})).table.set_index("method")
    four = compare(table()).table.set_index("method")
    for m in "AB":
        assert pair.at[m, "score"] == pytest.approx(four.at[m, "score"])
        assert pair.at[m, "utility_score"] == pytest.approx(SSIM[m])
        assert pair.at[m, "privacy_score"] == pytest.approx(PRIVACY[m])


def test_a_method_that_may_leak_as_much_as_the_originals_scores_zero_whatever_its_utility():
    methods = {"leaky": {"ocr": (0.95, 0.9), "reid": 0.1, "ssim": 0.99, "psnr": 40.0}, **{k: METHODS[k] for k in "CD"}}
    c = compare(table(methods))
    t = c.table.set_index("method")
    assert t.at["leaky", "worst_risk_upper"] == pytest.approx(1.01) and t.at["leaky", "score"] == 0.0
    assert list(c.table["method"]) == ["D", "C", "leaky"]


def test_ranking_uses_the_risk_upper_bound_not_the_point_estimate():
    rows = table({k: METHODS[k] for k in "CD"})
    # D's ocr risk .1 now has a wide CI up to .9 (few plates): its upper bound ranks it below C (upper .66)
    rows.loc[(rows["target_label"] == "D") & (rows["metric"] == "exact_match"), "risk_ci_high"] = 0.9
    c = compare(rows, "privacy=1")
    assert list(c.table["method"]) == ["C", "D"]
    assert c.table.set_index("method").at["D", "worst_risk_upper"] == pytest.approx(0.9)


def test_a_method_without_any_risk_estimate_ranks_last_not_first():
    rows = pd.concat([table(), pd.DataFrame([_utility("E", "ssim", 1.0)])], ignore_index=True)
    c = compare(rows)
    last = c.table.iloc[-1]
    assert last["method"] == "E" and math.isnan(last["score"]) and last["unscored_because"] == "no risk estimate"


def test_verdicts_rank_pass_before_not_tested_before_fail_unless_ignored():
    verdicts = {"A": "PASS", "B": "NOT TESTED", "C": "FAIL", "D": "FAIL"}  # by score alone: D, C, B, A
    c = compare(table(), verdicts=verdicts, policy="p")
    assert list(c.table["method"]) == ["A", "B", "D", "C"] and list(c.table["verdict"]) == [
        "PASS",
        "NOT TESTED",
        "FAIL",
        "FAIL",
    ]
    assert "by verdict of policy p" in c.ranking_rule
    ignored = compare(table(), verdicts=verdicts, ignore_verdict=True, policy="p")
    assert list(ignored.table["method"]) == ["D", "C", "B", "A"] and "verdict" in ignored.table.columns
    with pytest.raises(ConfigError, match="--ignore-verdict only applies with --policy"):
        compare(table(), ignore_verdict=True)


def test_default_weights_are_half_and_half():
    assert compare(table()).weights == {"privacy": 0.5, "utility": 0.5}


def test_lower_is_better_utility_is_oriented():
    rows = table()
    ssim = rows["metric"] == "ssim"
    rows.loc[ssim, ["metric", "component", "component_label"]] = "lpips_alex"
    rows.loc[ssim, "higher_is_better"] = False  # LPIPS: 0 = identical, scored 1 - value
    c = compare(rows, "lpips_alex=1")
    assert list(c.table["method"]) == ["D", "C", "B", "A"]
    assert c.table.set_index("method").at["D", "score"] == pytest.approx(0.7)


def test_method_missing_a_weighted_measure_is_ranked_last_with_the_reason():
    methods = {k: dict(v) for k, v in METHODS.items()}
    del methods["D"]["reid"]
    c = compare(table(methods), "reid=1")
    t = c.table.set_index("method")
    assert math.isnan(t.at["D", "score"]) and t.at["D", "unscored_because"] == "no reid"
    assert c.table["method"].iloc[-1] == "D"
    assert any("reid was not measured on 1 of 4 methods: D" in n for n in c.notes)


def test_attack_without_risk_is_shown_as_success_but_not_scored():
    rows = table()
    rows.loc[rows["component"] == "reid", "risk"] = None
    c = compare(rows, "reid=1")
    pairs = c.pareto[c.pareto["attack"] == "reid"]
    assert set(pairs["privacy_measure"]) == {"success"}
    assert set(c.table["unscored_because"]) == {"no reid"}  # a success rate has no scale shared with risks
    assert any(n.startswith("reid: no risk estimate") for n in c.notes)
    # privacy is then ocr's alone: D (upper .16) first
    assert compare(rows, "privacy=1").table["method"].iloc[0] == "D"


@pytest.mark.parametrize("spec, message", [
    ("privcy=1", "unknown key 'privcy'; did you mean privacy"),
    ("privacy", "'privacy' is not KEY=WEIGHT"),
    ("privacy=-1", "must be a finite number >= 0"),
    ("privacy=a", "is not a number"),
    ("privacy=0,utility=0", "at least one weight must be positive"),
])
def test_bad_weights_are_explained(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_weights(spec, ["ocr", "ssim"])


def test_weight_keys_may_contain_commas_in_brackets():
    assert parse_weights("ocr(engine=a, k=2)=2,ssim=1", ["ocr(engine=a, k=2)", "ssim"]) == {
        "ocr(engine=a, k=2)": 2.0,
        "ssim": 1.0,
    }


# -- several runs and the command line -----------------------------------------------------------------------------
def _save(folder: Path, t: pd.DataFrame, name: str) -> Path:
    Results(t, folder, {"name": name}).save(folder)
    return folder


def test_runs_sharing_target_labels_are_told_apart(tmp_path: Path):
    a = _save(tmp_path / "a", table({k: METHODS[k] for k in "AB"}), "first")
    b = _save(tmp_path / "b", table({k: METHODS[k] for k in "BC"}), "second")
    t = load_runs([a, b])
    assert list(dict.fromkeys(t["method"])) == [
        "first: A",
        "first: B",
        "second: B",
        "second: C",
    ]  # one row per (run, target)
    same = load_runs([_save(tmp_path / "x", table(), "demo"), _save(tmp_path / "y", table(), "demo")])
    assert set(same["run"]) == {"x", "y"}  # equal manifest names: the folders name the runs


def test_cli_compare_writes_csv_and_html_and_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    a = _save(tmp_path / "run1", table({k: METHODS[k] for k in "AB"}), "run1")
    b = _save(tmp_path / "run2", table({k: METHODS[k] for k in "CD"}), "run2")
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--weights", "privacy=0.7,utility=0.3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "at privacy=0.7, utility=0.3" in printed
    assert (
        "ocr vs ssim: front #1 run2: D, #3 run1: B, #4 run1: A (1 dominated)" in printed
    )  # C (.66, .7) loses to B (.56, .8)
    assert "psnr: no fixed [0, 1] scale, shown with CIs but not scored" in printed
    csv = pd.read_csv(out / "compare.csv")
    assert list(csv["method"]) == ["run2: D", "run2: C", "run1: B", "run1: A"] and list(csv["rank"]) == [1, 2, 3, 4]
    assert {
        "label",
        "run",
        "target_label",
        "worst_attack",
        "worst_risk",
        "worst_risk_upper",
        "ssim",
        "ssim ci_low",
        "ssim n",
        "ocr risk",
    } <= set(csv.columns)
    pareto = pd.read_csv(out / "pareto.csv")
    assert pareto[(pareto["attack"] == "reid") & (pareto["utility"] == "ssim") & ~pareto["on_front"]][
        "method"
    ].tolist() == ["run1: B"]
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'alt="Pareto fronts"' in html and "90.0% [84.0, 96.0]" in html
    assert 'title="run2: D">run2: D</td>' in html


def test_cli_compare_on_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_psnr_and_its_detail_rows_are_shown_once_and_never_scored():
    from anonaudit.verdicts.compare import scores, utility_measures

    def ev(label, metric, value):
        return row(target="t", target_label=label, kind="evaluator", component="psnr", component_label="psnr",
                   metric=metric, value=value, ci_low=value, ci_high=value, n=10, higher_is_better=True, status="ok")

    rows = pd.DataFrame([ev("same", "psnr", math.inf), ev("same", "psnr_identical_pairs", 1.0),
                         ev("blur", "psnr", 20.0), ev("blur", "psnr_identical_pairs", 0.0)])
    rows["method"] = rows["target_label"]
    utilities = utility_measures(rows)
    assert list(utilities["utility"].unique()) == ["psnr"]
    s = scores(pd.DataFrame(columns=["method", "attack", "risk_upper"]), utilities, ["same", "blur"])
    assert "psnr" not in s.columns and s["utility"].isna().all()  # dB has no fixed [0, 1] scale
    with pytest.raises(ConfigError, match="'psnr' cannot be weighted: it has no fixed"):
        compare(table(), "psnr=1")


# -- labels and comparability ------------------------------------------------------------------------------------------
def test_long_labels_are_shortened_in_the_middle_and_always_told_apart():
    same_target = "external(path=/data/releases/2024/city-centre/batch-07/anonymized)"
    labels = [f"audit-anonymized-{d}: {same_target}" for d in ("march", "april")]
    short = short_labels(labels, width=30)
    assert len(set(short)) == 2 and all("…" in s and len(s) < len(labels[0]) for s in short)
    assert shorten("abcdefghij", 5) == "ab…ij" and shorten("short", 5) == "short"
    # labels differing only in the middle: widened until the difference shows
    middle = ["x" * 30 + "A" + "y" * 30, "x" * 30 + "B" + "y" * 30]
    assert len(set(short_labels(middle, width=20))) == 2


def _run_with_manifest(folder: Path, name: str, data: dict, kind: str | None = None) -> Path:
    Results(table({k: METHODS[k] for k in "AB"}), folder, {"name": name, "data": data, "config": {"kind": kind}}).save(
        folder
    )
    return folder


def test_runs_of_different_data_sets_are_refused_naming_both_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    a = _run_with_manifest(tmp_path / "a", "blur-run", {"name": "labeled_folder", "n": 8, "evaluation": 8}, "plates")
    b = _run_with_manifest(tmp_path / "b", "mask-run", {"name": "labeled_folder", "n": 6, "evaluation": 6}, "plates")
    with pytest.raises(
        DataError,
        match=r"blur-run .* and mask-run .* audit different data \(labeled_folder, 8 images vs "
        r"labeled_folder, 6 images\).*--force",
    ):
        check_comparable(open_runs([a, b]))
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 2
    assert "audit different data" in capsys.readouterr().err
    notes = check_comparable(open_runs([a, b]), force=True)
    assert notes[0].startswith("compared although blur-run") and notes[0].endswith("(--force)")
    same = _run_with_manifest(tmp_path / "c", "other", {"name": "labeled_folder", "n": 8, "evaluation": 8}, "plates")
    assert not any("compared although" in n for n in check_comparable(open_runs([a, same])))


# -- real runs: a leaking release and a solid mask, audited on 8 small plates ------------------------------------------
def _gps_exif() -> bytes:
    exif = Image.Exif()
    g = exif.get_ifd(ExifTags.IFD.GPSInfo)
    g[1], g[2], g[3], g[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 21.0, 0.0)
    return exif.tobytes()


def _audit(originals: Path, release: Path, labels: Path | None, kind: str, output: Path) -> Path:
    """The ``anonaudit audit`` config of the two folders, cut to the cheapest attacks (metadata, OCR) and SSIM."""
    raw = release_config(originals, release, kind, labels=labels, output=output)
    raw["attacks"] = [a for a in raw["attacks"] if a["name"] in ("metadata", "ocr")]
    raw["evaluators"] = [{"name": "ssim"}]
    audit_from_config(parse_config(raw, roots=[originals.parent]), show_progress=False).run(output, show_progress=False)
    return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders: ``leak`` (the originals re-saved as JPEG with GPS EXIF and the original PNG appended after the
    end of the image: every plate readable), ``mask`` (every pixel solid grey), ``mask_faces`` (the mask audited
    as faces), ``leak_copy`` (the leak run copied: the same target label in another run), plus the policies."""
    root = tmp_path_factory.mktemp("compare")
    plates = synthetic_plates(n=8, seed=5)
    originals, leak, mask = root / "originals", root / "leaky-release", root / "masked-release"
    for d in (originals, leak, mask):
        d.mkdir()
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text"])
        for i in range(len(plates)):
            Image.fromarray(plates[i]).save(originals / f"car{i}.png")
            jpeg = io.BytesIO()
            Image.fromarray(plates[i]).save(jpeg, "JPEG", quality=95, exif=_gps_exif())
            (leak / f"car{i}.jpg").write_bytes(jpeg.getvalue() + (originals / f"car{i}.png").read_bytes())
            Image.fromarray(np.full_like(plates[i], 128)).save(mask / f"car{i}.png")
            w.writerow([f"car{i}.png", plates.texts[i]])
    out = {"leak": _audit(originals, leak, labels, "plates", root / "run-leak"),
           "mask": _audit(originals, mask, labels, "plates", root / "run-mask"),
           "mask_faces": _audit(originals, mask, None, "faces", root / "run-mask-faces")}
    out["leak_copy"] = Path(shutil.copytree(out["leak"], root / "run-leak-copy"))
    out["privacy_policy"] = root / "privacy.yaml"
    out["privacy_policy"].write_text(
        "name: privacy-only\ncriteria:\n"
        "  - {id: metadata, select: metadata/files_with_leak, require: '<= 40%'}\n"
        "  - {id: ocr, select: '*ocr/exact_match', require: '<= 40%'}\n")
    out["utility_policy"] = root / "utility.yaml"
    out["utility_policy"].write_text(
        "name: utility-only\ncriteria:\n  - {id: ssim, select: ssim/ssim, require: '>= 0.9'}\n"
    )
    return out


def _compare(args: list, tmp_path: Path, capsys) -> tuple[int, pd.DataFrame, str]:
    out = tmp_path / "cmp"
    code = main(["compare", *map(str, args), "--out", str(out)])
    captured = capsys.readouterr()
    return code, (pd.read_csv(out / "compare.csv") if code == 0 else pd.DataFrame()), captured.out + captured.err


def test_the_mask_ranks_above_the_release_that_leaks_gps_the_original_and_its_plates(runs, tmp_path, capsys):
    code, csv, _ = _compare([runs["leak"], runs["mask"]], tmp_path, capsys)
    assert code == 0
    assert list(csv["run"]) == ["audit-masked-release", "audit-leaky-release"]
    leak = csv.iloc[1]
    assert leak["metadata value"] == 1.0 and leak["ocr value"] == 1.0  # every file leaks, every plate is read
    assert (
        leak["worst_risk_upper"] > 1.0 and leak["score"] == 0.0
    )  # plates read as on the originals: upper bound above 1
    assert csv.iloc[0]["score"] > 0 and csv.iloc[0]["ssim"] < leak["ssim"]  # the mask wins despite its lower SSIM
    assert "verdict" not in csv.columns


def test_with_a_policy_the_leaking_release_shows_fail_and_ranks_below_the_pass(runs, tmp_path, capsys):
    code, csv, printed = _compare([runs["leak"], runs["mask"], "--policy", runs["privacy_policy"]], tmp_path, capsys)
    assert code == 0
    assert list(csv["run"]) == ["audit-masked-release", "audit-leaky-release"] and list(csv["verdict"]) == [
        "PASS",
        "FAIL",
    ]
    assert "by verdict of policy privacy-only" in printed


def test_a_fail_never_ranks_above_a_pass_unless_the_verdict_is_ignored(runs, tmp_path, capsys):
    """Judged on SSIM alone the leaking release PASSES and the mask FAILS: the verdict puts the leak first;
    --ignore-verdict orders by the score alone (the mask first) and still shows the verdicts."""
    args = [runs["leak"], runs["mask"], "--policy", runs["utility_policy"]]
    code, csv, _ = _compare(args, tmp_path, capsys)
    assert (
        code == 0
        and list(csv["verdict"]) == ["PASS", "FAIL"]
        and list(csv["run"]) == ["audit-leaky-release", "audit-masked-release"]
    )
    code, csv, printed = _compare([*args, "--ignore-verdict"], tmp_path, capsys)
    assert (
        code == 0
        and list(csv["run"]) == ["audit-masked-release", "audit-leaky-release"]
        and list(csv["verdict"]) == ["FAIL", "PASS"]
    )
    assert "--ignore-verdict" in printed


def test_a_plates_run_and_a_faces_run_are_refused_unless_forced(runs, tmp_path, capsys):
    code, _, printed = _compare([runs["leak"], runs["mask_faces"]], tmp_path, capsys)
    assert code == 2
    assert (
        "audit-leaky-release" in printed
        and "audits plates but audit-masked-release" in printed
        and "audits faces" in printed
        and "--force" in printed
    )
    code, csv, printed = _compare([runs["leak"], runs["mask_faces"], "--force"], tmp_path, capsys)
    assert code == 0 and len(csv) == 2 and "compared although audit-leaky-release" in printed


def test_the_same_external_label_in_two_runs_gets_two_labels(runs, tmp_path, capsys):
    code, csv, _ = _compare([runs["leak"], runs["leak_copy"]], tmp_path, capsys)
    assert code == 0
    assert csv["target_label"].nunique() == 1 and csv["target_label"].iloc[0].startswith("external(path=")
    assert sorted(csv["run"]) == ["run-leak", "run-leak-copy"]  # same manifest name: the folders name the runs
    assert csv["label"].nunique() == 2 and csv["method"].nunique() == 2
    assert all(len(lab) <= len(m) for lab, m in zip(csv["label"], csv["method"]))
    html = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    for full, short in zip(csv["method"], csv["label"]):
        assert f'title="{full}">{short}</td>' in html  # the full label in the tooltip


def test_methods_at_the_same_point_share_one_plot_label():
    from anonaudit.reports.compare import _merged_numbers

    xs, ys, texts = _merged_numbers(np.array([0.8, 0.8, 0.3]), np.array([0.56, 0.56, 0.16]), [4, 3, 1])
    assert (xs, ys, texts) == ([0.8, 0.3], [0.56, 0.16], ["3, 4", "1"])
