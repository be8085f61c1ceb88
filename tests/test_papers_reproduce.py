"""Every paper and membership snapshot in docs/results/ comes back from the committed configs.

``make papers`` first runs ``scripts/papers.py`` (the tiny targets retrained and every paper and membership audit
rerun with the commands at the top of each config, into the configs' own output folders), then this module with
``ANONAUDIT_PAPERS=1``: each snapshot row (the cells the README and docs tables show) is compared with the rerun.

Rows that no training touches must be identical. Rows that depend on training randomness, as `anonaudit reaudit`
counts them (a trainable target, an attack that fits a model, an embedder loaded from a trained checkpoint), must
lie within the rerun's 95% CI, so a rerun where training differs in the last bits (other hardware, other thread
counts) still passes.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from anonaudit.errors import AnonauditError
from anonaudit.registry import ANONYMIZERS
from anonaudit.verdicts.reaudit import TRAINED_ATTACKS

REPO = Path(__file__).resolve().parents[1]
KEY = ["target_label", "component_label", "metric"]
CHECKPOINT = r"checkpoint=[^,)}]*"


def _script(name: str):
    """scripts/NAME.py as a module."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


readme_tables = _script("readme_tables")
papers = _script("papers")


def _trainable(label: str) -> bool:
    try:
        return bool(getattr(ANONYMIZERS.get(label.split("(")[0]), "trainable", False))
    except AnonauditError:  # not a registered anonymizer (an external release)
        return False


def depends_on_training(row: pd.Series) -> bool:
    """As ``anonaudit reaudit`` decides, plus the attacks whose embedder is a trained checkpoint."""
    component = str(row["component_label"])
    return (_trainable(str(row["target_label"])) or component.split("(")[0] in TRAINED_ATTACKS
            or "checkpoint" in component)


def _keyed(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with checkpoint paths in the labels cut (they name the checkout's folder)."""
    rows = rows.copy()
    for column in ("target_label", "component_label"):
        rows[column] = rows[column].astype(str).str.replace(CHECKPOINT, "checkpoint=...", regex=True)
    return rows


def differences(snapshot: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """Each snapshot row that the rerun ``fresh`` does not reproduce, described."""
    snapshot, fresh = _keyed(snapshot), _keyed(fresh).drop_duplicates(KEY).set_index(KEY)
    out = []
    for _, old in snapshot.iterrows():
        key = tuple(old[KEY])
        where = " / ".join(str(k) for k in key)
        if key not in fresh.index:
            out.append(f"{where}: not in the rerun")
            continue
        new = fresh.loc[key]
        value, fresh_value = float(old["value"]), float(new["value"])
        if float(old["n"]) != float(new["n"]):
            out.append(f"{where}: n = {old['n']:g} in the snapshot, {new['n']:g} in the rerun")
        elif math.isnan(value) or math.isnan(fresh_value):
            if not (math.isnan(value) and math.isnan(fresh_value)):
                out.append(f"{where}: snapshot {value}, rerun {fresh_value}")
        elif depends_on_training(old):
            low, high = float(new["ci_low"]), float(new["ci_high"])
            if math.isnan(low) or math.isnan(high):
                out.append(f"{where}: the rerun gives no CI for {fresh_value}")
            elif not low - 1e-12 <= value <= high + 1e-12:
                out.append(f"{where}: snapshot {value:.4f} outside the rerun's CI [{low:.4f}, {high:.4f}] "
                           f"around {fresh_value:.4f}")
        elif not math.isclose(value, fresh_value, rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"{where}: snapshot {value!r}, rerun {fresh_value!r} (no training involved: must be identical)")
    return out


def test_differences_flags_a_deterministic_change_and_a_trained_row_outside_its_ci():
    snapshot = pd.read_csv(readme_tables.snapshot_path("paper-004"))
    assert differences(snapshot, snapshot) == []
    blur = snapshot.index[snapshot["target_label"].str.startswith("face_blur")
                          & (snapshot["component_label"] == "ssim")][0]
    moved = snapshot.copy()
    moved.loc[blur, "value"] += 1e-6
    (message,) = differences(snapshot, moved)
    assert message.endswith("(no training involved: must be identical)") and message.startswith("face_blur")
    trained = snapshot.copy()
    row = trained.index[trained["target_label"].str.startswith("pose_face") & (trained["metric"] == "rank1")][0]
    trained.loc[row, ["value", "ci_low", "ci_high"]] = [0.9, 0.85, 0.95]
    (message,) = differences(snapshot, trained)
    assert message.startswith("pose_face") and "outside the rerun's CI" in message
    trained.loc[row, ["ci_low", "ci_high"]] = [0.0, 0.95]  # a wide enough CI takes the snapshot in
    assert differences(snapshot, trained) == []
    missing = " / ".join(_keyed(snapshot).loc[row, KEY])
    assert differences(snapshot, snapshot.drop(index=row)) == [f"{missing}: not in the rerun"]


def test_every_snapshot_read_by_a_table_or_template_is_produced_by_a_group_of_make_papers():
    claims = readme_tables.template_path("paper-claims").read_text()
    read_by_claims = {f[0] for p in readme_tables.PLACEHOLDER.findall(claims)
                      if (f := readme_tables._fields(p))[0] != "times"}
    assert read_by_claims <= set(papers.RUNS), f"paper-claim rows read {read_by_claims - set(papers.RUNS)}"
    paper_snapshots = {n for n in readme_tables.snapshot_names() if n.startswith(("paper-", "membership-"))}
    assert paper_snapshots <= set(papers.RUNS), f"no scripts/papers.py group for {paper_snapshots - set(papers.RUNS)}"
    assert set(papers.RUNS) == set(papers.GROUPS)


@pytest.mark.slow  # reads the runs that scripts/papers.py made (hours of training and audits on 2 cores)
@pytest.mark.skipif(os.environ.get("ANONAUDIT_PAPERS") != "1",
                    reason="compares the reruns of scripts/papers.py with the snapshots: run `make papers` "
                           "(ANONAUDIT_PAPERS=1), kept out of the default suite")
@pytest.mark.parametrize("name", sorted(papers.GROUPS))
def test_paper_snapshot_reproduces_from_the_committed_config(name):
    snapshot_file = readme_tables.snapshot_path(name)
    if not snapshot_file.is_file():
        pytest.skip(f"{snapshot_file.name} not yet made: scripts/readme_tables.py update {name} {papers.RUNS[name]}")
    results = REPO / papers.RUNS[name] / "results.csv"
    assert results.is_file(), f"{results} is missing: run python scripts/papers.py {name}"
    assert differences(pd.read_csv(snapshot_file), pd.read_csv(results)) == []


def test_record_replaces_a_rerun_steps_time_and_keeps_the_others_in_make_papers_order(tmp_path):
    times = tmp_path / "times.csv"
    first, second = (s.name for s in papers.GROUPS["paper-000"])
    papers.record([{"step": second, "seconds": 30.0}, {"step": first, "seconds": 10.0}], times)
    papers.record([{"step": "run membership-plates", "seconds": 5.0}, {"step": second, "seconds": 40.0}], times)
    assert pd.read_csv(times)[["step", "seconds"]].values.tolist() == [
        [first, 10.0], [second, 40.0], ["run membership-plates", 5.0]]
