"""Retrain the tiny paper targets and rerun every paper and membership audit from the committed configs,
timing each step into ``docs/results/papers-times.csv`` (what the README's run times quote).

    python scripts/papers.py                      # every step, in order
    python scripts/papers.py paper-000 membership-plates   # the steps of these groups only
    python scripts/papers.py --list               # the steps and their commands

Each step is the command a user types (the ones at the top of each config), run from the repository root
with ``--no-resume`` so that nothing is reused from an earlier run. A step that fails stops its group; the
times of the steps that ran are written either way. ``tests/test_papers_reproduce.py`` then compares each
run's table with its snapshot in ``docs/results/`` (``make papers`` runs both).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TIMES = REPO / "docs" / "results" / "papers-times.csv"
TIME_COLUMNS = ["step", "command", "seconds", "finished_utc", "cpus", "load_average"]
SHARED = os.environ.get("ANONAUDIT_SHARED_DATA", str(REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Step:
    """One command of a group: ``name`` keys its row in the times file."""

    name: str
    args: tuple[str, ...]  # after ``anonaudit``


#: Every step runs with one torch / BLAS thread: the thread count changes the order of floating-point sums, so
#: trained weights (and every number that depends on them) differ between thread counts; with one thread a
#: rerun on any machine trains what the snapshots came from. (On a shared 2-core machine it is also faster:
#: two-thread processes side by side oversubscribe the cores.)
STEP_ENV = {"ANONAUDIT_PROGRESS": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(config: str) -> tuple[str, ...]:
    return ("run", config, "--root", SHARED, "--no-resume", "-q")


def _train(config: str) -> tuple[str, ...]:
    return ("train", config, "--no-resume", "-q")


# Groups in the order `make papers` runs them; each snapshot in docs/results/ of the same name comes from the
# last step of its group.
GROUPS: dict[str, tuple[Step, ...]] = {
    "paper-000": (Step("train plate-wgan-tiny", _train("configs/train/plate-wgan-tiny.yaml")),
                  Step("run paper-000-plates", _run("configs/paper-000-plates.yaml"))),
    "membership-plates": (Step("run membership-plates", _run("configs/membership-plates.yaml")),),
    "paper-001": (Step("run paper-001-miku", _run("configs/paper-001-miku.yaml")),),
    "paper-002": (Step("train face-dcgan-tiny", _train("configs/train/face-dcgan-tiny.yaml")),
                  Step("train face-progan-tiny", _train("configs/train/face-progan-tiny.yaml")),
                  Step("run paper-002-faces", _run("configs/paper-002-faces.yaml"))),
    "paper-003": (Step("run paper-003-aia", _run("configs/paper-003-aia.yaml")),),
    "membership-faces": (Step("run membership-faces", _run("configs/membership-faces.yaml")),),
    "dp-audit-faces": (Step("run dp-audit-faces", _run("configs/dp-audit-faces.yaml")),),
    "paper-004": (Step("train arcface-tiny", _train("configs/train/arcface-tiny.yaml")),
                  Step("train pose-face-tiny", _train("configs/train/pose-face-tiny.yaml")),
                  Step("run paper-004-pose", _run("configs/paper-004-pose.yaml"))),
}


# The run folder (each config's ``output``) whose results make the snapshot docs/results/GROUP.csv.
RUNS: dict[str, str] = {
    "paper-000": "runs/paper-000-plates",
    "membership-plates": "runs/membership-plates",
    "paper-001": "runs/paper-001-miku",
    "paper-002": "runs/paper-002-faces",
    "paper-003": "runs/paper-003-aia",
    "membership-faces": "runs/membership-faces",
    "dp-audit-faces": "runs/dp-audit-faces",
    "paper-004": "runs/paper-004-pose",
}


def run_step(step: Step) -> dict[str, object]:
    """Run ``anonaudit *step.args`` from the repository root; its timing row, or SystemExit if it fails."""
    command = "anonaudit " + " ".join(step.args)
    print(f"[papers] {step.name}: {command}", flush=True)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "anonaudit", *step.args], cwd=REPO, env={**os.environ, **STEP_ENV},
                          check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"[papers] {step.name} exited {done.returncode} after {seconds:.0f} s: {command}")
    print(f"[papers] {step.name}: {seconds:.0f} s", flush=True)
    return {"step": step.name, "command": command.replace(SHARED, "../shared/data"), "seconds": round(seconds, 1),
            "finished_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 1) if platform.system() != "Windows" else ""}


def record(rows: list[dict[str, object]], path: Path = TIMES) -> None:
    """Replace the rows of these steps in the times file (others kept), in ``GROUPS`` order."""
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=TIME_COLUMNS)
    new = pd.DataFrame(rows, columns=TIME_COLUMNS)
    merged = pd.concat([old[~old["step"].isin(new["step"])], new], ignore_index=True)
    order = {s.name: i for i, s in enumerate(s for steps in GROUPS.values() for s in steps)}
    merged = merged.sort_values("step", key=lambda c: c.map(order).fillna(len(order)), kind="stable")
    path.parent.mkdir(parents=True, exist_ok=True)
    merged.to_csv(path, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--list", action="store_true", help="print the steps and exit")
    args = parser.parse_args(argv)
    groups = args.groups or list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    if args.list:
        for group in groups:
            for step in GROUPS[group]:
                print(f"{group}: anonaudit {' '.join(step.args)}")
        return 0
    failed = []
    for group in groups:
        rows = []
        try:
            for step in GROUPS[group]:
                rows.append(run_step(step))
        except SystemExit as error:
            print(error, file=sys.stderr)
            failed.append(group)
        record(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
