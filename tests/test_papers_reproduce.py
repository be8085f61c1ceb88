"""The README's paper-004 table comes back from the committed configs: retrain the tiny ArcFace and the tiny
pose_face checkpoint (the two commands at the top of configs/paper-004-pose.yaml) into temporary folders, rerun
the audit against them, and compare with the table's snapshot (docs/results/paper-004.csv).

Rows that no training touches (blur and pixelation attacked by dlib, detected, measured) must be identical. Rows that
depend on training randomness, as `anonaudit reaudit` counts them (every `pose_face` row, the tiny ArcFace's
re-identification of every target, the gender attacks that fit a classifier), must lie within the rerun's 95% CI, so
a rerun where training differs in the last bits (other hardware, other thread counts) still passes. Under the locked
environment on the same machine both checkpoints and the whole results table came back bit for bit.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from shared_data import SHARED_DATA

from anonaudit.verdicts.reaudit import TRAINED_ATTACKS

REPO = Path(__file__).resolve().parents[1]


def _tables_module():
    """scripts/readme_tables.py, which renders the README's tables and picks their rows."""
    if "readme_tables" not in sys.modules:
        spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
        sys.modules["readme_tables"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["readme_tables"]


readme_tables = _tables_module()
TABLE = readme_tables.TABLES["paper-004"]
TRAINED_TARGET = TABLE.targets[0]  # pose_face(...): its label carries the checkpoint's path
TRAINED_ATTACK = "reid(embedder={'name': 'arcface_trained'"


def _anonaudit(*args: str) -> None:
    """Run the command line a user types, from the repository root, and fail with its output if it fails."""
    env = {**os.environ, "ANONAUDIT_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-m", "anonaudit", *args], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"anonaudit {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _depends_on_training(target: str, column: readme_tables.Column) -> bool:
    """As ``anonaudit reaudit`` decides: the trained target, the attack with a trained embedder, and the attacks
    that fit a model."""
    return (target == TRAINED_TARGET or column.component.startswith(TRAINED_ATTACK)
            or column.component.split("(")[0] in TRAINED_ATTACKS)


def _differences(snapshot: pd.DataFrame, fresh: pd.DataFrame) -> list[str]:
    """Each README cell whose snapshot value the rerun does not reproduce, described."""
    out = []
    for target in TABLE.targets:
        for column in TABLE.columns:
            old, new = readme_tables._pick(snapshot, target, column), readme_tables._pick(fresh, target, column)
            where = f"{target} / {column.header}"
            if old is None or new is None:
                out.append(f"{where}: in the snapshot {old is not None}, in the rerun {new is not None}")
                continue
            value, fresh_value = float(old["value"]), float(new["value"])
            if float(old["n"]) != float(new["n"]):
                out.append(f"{where}: n = {old['n']:g} in the snapshot, {new['n']:g} in the rerun")
            elif math.isnan(value) or math.isnan(fresh_value):
                if not (math.isnan(value) and math.isnan(fresh_value)):
                    out.append(f"{where}: snapshot {value}, rerun {fresh_value}")
            elif _depends_on_training(target, column):
                low, high = float(new["ci_low"]), float(new["ci_high"])
                if math.isnan(low) or math.isnan(high):
                    out.append(f"{where}: the rerun gives no CI for {fresh_value}")
                elif not low - 1e-12 <= value <= high + 1e-12:
                    out.append(f"{where}: snapshot {value:.4f} outside the rerun's CI [{low:.4f}, {high:.4f}] "
                               f"around {fresh_value:.4f}")
            elif not math.isclose(value, fresh_value, rel_tol=1e-9, abs_tol=1e-12):
                out.append(f"{where}: snapshot {value!r}, rerun {fresh_value!r} (no training involved: must be "
                           "identical)")
    return out


def test_differences_flags_a_deterministic_change_and_a_trained_row_outside_its_ci():
    snapshot = pd.read_csv(readme_tables.snapshot_path("paper-004"))
    assert _differences(snapshot, snapshot) == []
    blur, rank1 = TABLE.targets[1], TABLE.columns[2]
    moved = snapshot.copy()
    row = readme_tables._pick(moved, blur, rank1).name
    moved.loc[row, "value"] += 1e-6
    before, after = float(snapshot.loc[row, "value"]), float(moved.loc[row, "value"])
    assert _differences(snapshot, moved) == [
        f"{blur} / {rank1.header}: snapshot {before!r}, rerun {after!r} (no training involved: must be identical)"]
    trained = snapshot.copy()
    row = readme_tables._pick(trained, TRAINED_TARGET, rank1).name
    trained.loc[row, ["value", "ci_low", "ci_high"]] = [0.9, 0.85, 0.95]
    (message,) = _differences(snapshot, trained)
    assert message.startswith(f"{TRAINED_TARGET} / {rank1.header}: snapshot") and "outside the rerun's CI" in message
    trained.loc[row, ["ci_low", "ci_high"]] = [0.0, 0.95]  # a wide enough CI takes the snapshot in
    assert _differences(snapshot, trained) == []


@pytest.mark.slow  # two trainings and a 150-image audit: about 20 minutes on 2 busy cores
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("ANONAUDIT_PAPERS") != "1",
                    reason="retrains paper 004's checkpoints (about 20 minutes on 2 cores): run `make papers` "
                           "(ANONAUDIT_PAPERS=1), kept out of the default suite to hold it under 30 minutes")
@pytest.mark.shared_data("lfw")
def test_paper_004_table_reproduces_from_the_committed_configs(tmp_path):
    arcface, pose_face, run = tmp_path / "arcface-tiny", tmp_path / "pose-face-tiny", tmp_path / "paper-004-pose"
    _anonaudit("train", "configs/train/arcface-tiny.yaml", "--output", str(arcface), "--no-resume", "-q")
    _anonaudit("train", "configs/train/pose-face-tiny.yaml", "--output", str(pose_face), "--no-resume", "-q",
               "--set", f"method.identity_checkpoint={arcface / 'checkpoint.pt'}")
    _anonaudit("run", "configs/paper-004-pose.yaml", "--root", str(SHARED_DATA), "--root", str(tmp_path),
               "--output", str(run), "--no-resume", "-q",
               "--set", f"targets.0.checkpoint={pose_face / 'checkpoint.pt'}",
               "--set", f"attacks.2.embedder.checkpoint={arcface / 'checkpoint.pt'}")
    fresh = pd.read_csv(run / "results.csv")
    assert _differences(pd.read_csv(readme_tables.snapshot_path("paper-004")), fresh) == []
