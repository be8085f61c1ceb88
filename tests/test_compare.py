"""``anonaudit compare``: Pareto fronts, worst-case attacks and weighted rankings on hand-built
results tables whose answers are computed by hand (in the comments), plus the command line."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from anonaudit.cli import main
from anonaudit.errors import ConfigError
from anonaudit.results import Results, row
from anonaudit.verdicts.compare import compare, load_runs, parse_weights
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
    return row(target=label, target_label=label, kind="evaluator", component=metric, component_label=metric, metric=metric,
               value=value, ci_low=value * 0.95, ci_high=value * 1.05, n=100, higher_is_better=hib, status="ok")


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
    assert t.at["B", "worst_risk_ci_high"] == pytest.approx(0.76)
    # every measure keeps its CI and n in the table
    assert t.at["C", "ssim ci_low"] == pytest.approx(0.665) and t.at["C", "ssim n"] == 100
    assert t.at["B", "ocr risk"] == pytest.approx(0.5) and t.at["B", "ocr metric"] == "exact_match"


def test_pareto_fronts_per_attack_and_utility_pair():
    p = compare(table()).pareto.set_index(["attack", "utility", "method"])
    front = lambda a, u: sorted(m for (aa, uu, m), on in p["on_front"].items() if aa == a and uu == u and on)  # noqa: E731
    assert front("ocr", "ssim") == ["A", "B", "D"]  # C (risk .6, ssim .7) is beaten by B (.5, .8)
    assert p.at[("ocr", "ssim", "C"), "dominated_by"] == "B"
    assert front("reid", "ssim") == ["A", "C", "D"]  # B (.7, .8) is beaten by A (.2, .9)
    assert p.at[("reid", "ssim", "B"), "dominated_by"] == "A"
    assert set(p.index.get_level_values("utility")) == {"ssim", "psnr"}
    assert p.at[("ocr", "ssim", "A"), "privacy_measure"] == "risk"


@pytest.mark.parametrize("weights, order, scores", [
    # privacy = 1 - worst risk: A .1, B .3, C .4, D .9; utility = mean of min-max scaled ssim and psnr:
    # A 1, B (5/6 + 3/4) / 2, C (2/3 + 1/2) / 2, D 0
    ("privacy=0.7,utility=0.3", ["D", "C", "B", "A"], {"A": 0.37, "B": 0.21 + 0.3 * 19 / 24, "C": 0.28 + 0.3 * 7 / 12, "D": 0.63}),
    ("utility=1", ["A", "B", "C", "D"], {"A": 1.0, "B": 19 / 24, "C": 7 / 12, "D": 0.0}),
    ("ocr=1", ["D", "B", "C", "A"], {"A": 0.1, "B": 0.5, "C": 0.4, "D": 0.9}),  # per attack: 1 - its worst risk
    ("reid=1,ssim=1", ["A", "C", "B", "D"], {"A": (0.8 + 1) / 2, "B": (0.3 + 5 / 6) / 2, "C": (0.9 + 2 / 3) / 2, "D": 0.95 / 2}),
])
def test_ranking_at_weights(weights, order, scores):
    c = compare(table(), weights)
    t = c.table.set_index("method")
    assert list(c.table["method"]) == order
    assert t["rank"].tolist() == [1.0, 2.0, 3.0, 4.0]
    for m, s in scores.items():
        assert t.at[m, "score"] == pytest.approx(s), m


def test_default_weights_are_half_and_half():
    assert compare(table()).weights == {"privacy": 0.5, "utility": 0.5}


def test_lower_is_better_utility_is_oriented():
    methods = {k: dict(v) for k, v in METHODS.items()}
    rows = table(methods)
    rows.loc[rows["metric"] == "psnr", "higher_is_better"] = False  # now D's 10 is the best psnr
    c = compare(rows, "psnr=1")
    assert list(c.table["method"]) == ["D", "C", "B", "A"]


def test_method_missing_a_weighted_measure_is_ranked_last_with_the_reason():
    methods = {k: dict(v) for k, v in METHODS.items()}
    del methods["D"]["reid"]
    c = compare(table(methods), "reid=1")
    t = c.table.set_index("method")
    assert math.isnan(t.at["D", "score"]) and t.at["D", "unscored_because"] == "no reid"
    assert c.table["method"].iloc[-1] == "D"
    assert any("reid was not measured on 1 of 4 methods: D" in n for n in c.notes)


def test_attack_without_risk_falls_back_to_success_rate():
    rows = table()
    rows.loc[rows["component"] == "reid", "risk"] = None
    c = compare(rows, "reid=1")
    pairs = c.pareto[c.pareto["attack"] == "reid"]
    assert set(pairs["privacy_measure"]) == {"success"}
    # success = 0.1 + 0.8 * risk: ordering unchanged, scores min-max scaled (lower success = 1)
    assert list(c.table["method"]) == ["D", "C", "A", "B"]
    assert c.table.set_index("method").at["D", "score"] == pytest.approx(1.0)


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
    assert parse_weights("ocr(engine=a, k=2)=2,ssim=1", ["ocr(engine=a, k=2)", "ssim"]) == {"ocr(engine=a, k=2)": 2.0, "ssim": 1.0}


# -- several runs and the command line -----------------------------------------------------------------------------
def _save(folder: Path, t: pd.DataFrame, name: str) -> Path:
    Results(t, folder, {"name": name}).save(folder)
    return folder


def test_runs_sharing_target_labels_are_told_apart(tmp_path: Path):
    a = _save(tmp_path / "a", table({k: METHODS[k] for k in "AB"}), "first")
    b = _save(tmp_path / "b", table({k: METHODS[k] for k in "BC"}), "second")
    t = load_runs([a, b])
    assert list(dict.fromkeys(t["method"])) == ["A", "first: B", "second: B", "C"]
    same = load_runs([_save(tmp_path / "x", table(), "demo"), _save(tmp_path / "y", table(), "demo")])
    assert set(same["run"]) == {"x", "y"}  # equal manifest names: the folders name the runs


def test_cli_compare_writes_csv_and_html_and_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    a = _save(tmp_path / "run1", table({k: METHODS[k] for k in "AB"}), "run1")
    b = _save(tmp_path / "run2", table({k: METHODS[k] for k in "CD"}), "run2")
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--weights", "privacy=0.7,utility=0.3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "weights privacy=0.7, utility=0.3" in printed and "ocr vs ssim: front A, B, D (1 dominated)" in printed
    csv = pd.read_csv(out / "compare.csv")
    assert list(csv["method"]) == ["D", "C", "B", "A"] and list(csv["rank"]) == [1, 2, 3, 4]
    assert {"worst_attack", "worst_risk", "worst_risk_ci_low", "ssim", "ssim ci_low", "ssim n", "ocr risk"} <= set(csv.columns)
    pareto = pd.read_csv(out / "pareto.csv")
    assert pareto[(pareto["attack"] == "ocr") & (pareto["utility"] == "ssim") & ~pareto["on_front"]]["method"].tolist() == ["C"]
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'alt="Pareto fronts"' in html and "0.90 [0.84, 0.96]" in html


def test_cli_compare_on_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["compare", str(tmp_path)]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_infinite_psnr_and_detail_rows_do_not_break_or_double_count_utility():
    import math

    import pandas as pd

    from anonaudit.results import row
    from anonaudit.verdicts.compare import scores, utility_measures

    def ev(label, metric, value):
        return row(target="t", target_label=label, kind="evaluator", component="psnr", component_label="psnr",
                   metric=metric, value=value, ci_low=value, ci_high=value, n=10, higher_is_better=True, status="ok")

    table = pd.DataFrame([ev("same", "psnr", math.inf), ev("same", "psnr_identical_pairs", 1.0),
                          ev("blur", "psnr", 20.0), ev("blur", "psnr_identical_pairs", 0.0),
                          ev("mask", "psnr", 10.0), ev("mask", "psnr_identical_pairs", 0.0)])
    table["method"] = table["target_label"]
    utilities = utility_measures(table)
    assert list(utilities["utility"].unique()) == ["psnr"]
    s = scores(pd.DataFrame(columns=["method", "attack", "risk", "value", "higher_is_better"]), utilities, ["same", "blur", "mask"])
    assert s.loc["same", "psnr"] == 1.0 and s.loc["blur", "psnr"] == 1.0 and s.loc["mask", "psnr"] == 0.0
