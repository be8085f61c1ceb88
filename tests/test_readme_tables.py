"""The README's result tables are renderings of committed run snapshots, and the demo reproduces its own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _tables_module():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_tables"] = module
    spec.loader.exec_module(module)
    return module


readme_tables = _tables_module()


def test_every_readme_results_table_has_a_snapshot_and_matches_it():
    text = readme_tables.README.read_text()
    shown = [name for name in readme_tables.TABLES if readme_tables.readme_table(name, text) is not None]
    assert "demo" in shown
    for name in shown:
        assert readme_tables.snapshot_path(name).is_file(), f"docs/results/{name}.csv is missing"
    assert readme_tables.check() == []


def test_render_formats_rates_with_wilson_ci_and_originals_first():
    table = readme_tables.Table(("a",), (readme_tables.Column("OCR", "ocr", "exact_match"),))
    rows = pd.DataFrame([{"target_label": "a", "component_label": "ocr(engine=x)", "metric": "exact_match",
                          "value": 0.25, "ci_low": 0.1, "ci_high": 0.5, "n": 20, "original": 0.9}])
    assert readme_tables.render(rows, table).splitlines() == [
        "| target (n = 20) | OCR |", "|---|---|", "| originals | 90.0 |", "| `a` | 25.0 [10.0, 50.0] |"]



def test_beyond_column_says_yes_only_when_the_learned_ci_clears_the_ladder_ci():
    Column, Beyond = readme_tables.Column, readme_tables.Beyond
    table = readme_tables.Table(
        ("a", "b"), (Column("OCR", "ocr", "exact_match"), Column("parrot", "parrot_ocr", "exact_match")),
        originals=False, beyond=(Beyond("beyond", ("OCR",), ("parrot",)),))
    row = {"metric": "exact_match", "n": 40, "original": 1.0}
    rows = pd.DataFrame([
        {**row, "target_label": "a", "component_label": "ocr", "value": 0.1, "ci_low": 0.05, "ci_high": 0.2},
        {**row, "target_label": "a", "component_label": "parrot_ocr", "value": 0.5, "ci_low": 0.35, "ci_high": 0.65},
        {**row, "target_label": "b", "component_label": "ocr", "value": 0.3, "ci_low": 0.18, "ci_high": 0.45},
        {**row, "target_label": "b", "component_label": "parrot_ocr", "value": 0.5, "ci_low": 0.35, "ci_high": 0.65},
    ])
    assert readme_tables.render(rows, table).splitlines()[2:] == [
        "| `a` | 10.0 [5.0, 20.0] | 50.0 [35.0, 65.0] | yes: parrot |",
        "| `b` | 30.0 [18.0, 45.0] | 50.0 [35.0, 65.0] | no |",  # higher, but the CIs overlap
    ]

@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_demo_reproduces_the_readme_demo_table(tmp_path):
    from anonaudit.cli import main

    assert main(["demo", "--output", str(tmp_path / "demo"), "--quiet"]) in (0, 1, 2)  # the exit code is the verdict
    fresh = readme_tables.snapshot(pd.read_csv(tmp_path / "demo" / "results.csv"), readme_tables.TABLES["demo"])
    table = readme_tables.TABLES["demo"]
    assert readme_tables.render(fresh, table) == readme_tables.render(
        pd.read_csv(readme_tables.snapshot_path("demo")), table
    )


def test_fill_writes_each_placeholder_from_its_snapshot_row_and_names_a_missing_one(tmp_path, monkeypatch):
    rows = pd.DataFrame([
        {"target_label": "plate_wgan(image_size=32, checkpoint=x)", "component_label": "ocr(engine=rapidocr)",
         "metric": "exact_match", "value": 0.0, "ci_low": 0.0, "ci_high": 0.044, "n": 84, "original": 0.99},
        {"target_label": "mask", "component_label": "membership_lira(signal=critic)", "metric": "offline_roc_auc",
         "value": 0.6812, "ci_low": 0.5401, "ci_high": 0.8123, "n": 64, "original": float("nan"), "baseline": 0.5},
    ])
    snapshots = {"run": rows}
    template = ("{{run | plate_wgan... | ocr | exact_match | count}} read ({{run | plate_wgan... | ocr | exact_match |"
                " pct_ci}}; originals {{ run | plate_wgan... | ocr | exact_match | orig_pct }}), AUC "
                "{{run | mask | membership_lira | offline_roc_auc | f2_ci}} (n = {{run | mask | membership_lira | "
                "offline_roc_auc | n}}, chance {{run | mask | membership_lira | offline_roc_auc | base_f2}})\n")
    assert readme_tables.fill(template, snapshots) == (
        "0/84 read (0.0% [0.0, 4.4]; originals 99.0%), AUC 0.68 [0.54, 0.81] (n = 64, chance 0.50)")
    with pytest.raises(KeyError, match="no row for"):
        readme_tables.fill("{{run | mask | ocr | exact_match | pct}}", snapshots)
    times = tmp_path / "times.csv"
    pd.DataFrame([{"step": "run x", "seconds": 552.0}, {"step": "run y", "seconds": 20.0}]).to_csv(times, index=False)
    monkeypatch.setattr(readme_tables, "TIMES", times)
    assert readme_tables.fill("{{times | run x | minutes}}, {{times | run y | minutes}}") == "9 minutes, under a minute"
