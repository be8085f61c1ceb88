"""The plate audit with today's code against a baseline revision: how much faster, and the same table?

Usage: ``python benchmarks/plate_audit_speedup.py [--n 120] [--repeats 1] [--baseline 52ca4a2]
[--config configs/plates-us.yaml] [--root ../shared/data] [--per-target [--targets 0,3]]``

In one invocation, the audit of ``--config`` (default the US plates: OCR, deblurring and
depixelation attacks, SSIM, PSNR, plate detectability, FID/KID/LPIPS when their weights are
cached, Frechet distance on pixels) on ``--n`` images of its data set (``data.limit``, the same
seeded subset on both sides) runs with the code of the ``--baseline`` git revision (checked out
with ``git worktree add`` into a temporary folder, imported through ``PYTHONPATH``) and with the
working tree, each side in a fresh Python process with a fresh output folder (so a fresh run
cache) and ``ANONAUDIT_CACHE`` unset, the two sides alternating first, so both see the same
machine load. By default each side audits the whole config in one process, as ``anonaudit run``
does (work shared between targets, such as reading the originals, is done once), ``--repeats``
times; ``--per-target`` audits every target (sweeps expanded) in a process of its own instead.
Timed: ``Audit.run`` in each process (imports excluded); the recogniser's forward passes (crops
read and seconds) and the text detector's calls are timed inside it.

Printed: per process the two times and the speed-up ratio, in total (summed over processes and
repeats) the ratio (goal >= 4x), the ratio per attack and evaluator (summed unit seconds of the
results table), where each side's time goes (recogniser, detector, the rest), and the comparison
of the two results tables (every column but ``seconds``; any difference is printed). Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import cpu_line

REPO = Path(__file__).resolve().parents[1]
KEY = ["target_label", "kind", "component", "metric"]


def phase(args: argparse.Namespace) -> dict:
    """One target's audit in this process, with the ``anonaudit`` found on ``PYTHONPATH``."""
    import anonaudit
    from anonaudit.audit import audit_from_config
    from anonaudit.config import load_config
    from anonaudit.models.ocr import RapidOCREngine

    code = str(Path(anonaudit.__file__).resolve().parents[1])
    if code != str(Path(args.code).resolve()):
        raise SystemExit(f"imported anonaudit from {code}, expected {args.code}")
    overrides = [f"data.limit={args.n}"] + ([f"data.root={args.data_root}"] if args.data_root else [])
    config = load_config(args.config, roots=[args.root], overrides=overrides)
    if args.target is not None:
        config.targets = [config.targets[args.target]]
    timing = {"recognize_s": 0.0, "crops": 0, "detect_s": 0.0}
    recognize, detect = RapidOCREngine._recognize, RapidOCREngine.detect_arrays

    def timed_recognize(self, crops):  # the real recogniser, timed
        t0 = time.perf_counter()
        try:
            return recognize(self, crops)
        finally:
            timing["recognize_s"] += time.perf_counter() - t0
            timing["crops"] += len(crops)

    def timed_detect(self, images):  # the real detector (memo lookups included), timed
        t0 = time.perf_counter()
        try:
            return detect(self, images)
        finally:
            timing["detect_s"] += time.perf_counter() - t0

    RapidOCREngine._recognize, RapidOCREngine.detect_arrays = timed_recognize, timed_detect
    audit = audit_from_config(config, show_progress=False)
    t0 = time.perf_counter()
    audit.run(args.output, show_progress=False)
    return {"seconds": time.perf_counter() - t0, **timing}


def run_phase(code: Path, args: argparse.Namespace, target: int | None, output: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ANONAUDIT_CACHE"}
    env.update(PYTHONPATH=str(code), ANONAUDIT_PROGRESS="0")
    cmd = [sys.executable, __file__, "--phase", "--code", str(code), "--n", str(args.n), "--config", args.config,
           "--root", args.root, "--output", str(output)]
    cmd += ["--target", str(target)] if target is not None else []
    cmd += ["--data-root", args.data_root] if args.data_root else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        what = f"target {target}" if target is not None else "the config"
        raise SystemExit(f"audit of {what} with {code} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def unit_seconds(table) -> dict[str, float]:
    """Seconds per component (attacks and evaluators), summed over targets (one row per unit)."""
    units = table[table["kind"].isin(["attack", "evaluator"])].drop_duplicates(["target_id", "kind", "component_label"])
    return units.groupby("component_label", sort=False)["seconds"].sum().to_dict()


def compare(old, new) -> list[str]:
    """Differences between two results tables (every column but ``seconds``), as lines."""
    cols = [c for c in old.columns if c != "seconds" and c in new.columns]
    old, new = old[cols].reset_index(drop=True), new[cols].reset_index(drop=True)
    if len(old) != len(new) or not old[KEY].equals(new[KEY]):
        merged = old[KEY].merge(new[KEY], how="outer", indicator=True)
        return [f"rows differ: {r}" for r in merged[merged["_merge"] != "both"].to_dict("records")]
    lines = []
    for col in cols:
        a, b = old[col], new[col]
        same = (a == b) | (a.isna() & b.isna())
        for i in same[~same].index:
            lines.append(
                f"{' / '.join(str(old.at[i, k]) for k in KEY)}: {col} {a[i]!r} (baseline) vs {b[i]!r} (working tree)"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=120, help="images of the data set (data.limit; 20%% become the intruder's)"
    )
    parser.add_argument("--baseline", default="52ca4a2", help="git revision of the baseline code")
    parser.add_argument("--config", default="configs/plates-us.yaml")
    parser.add_argument("--root", default="../shared/data", help="allowed data root (as `anonaudit run --root`)")
    parser.add_argument("--repeats", type=int, default=1, help="audits per side (alternating)")
    parser.add_argument(
        "--per-target", action="store_true", help="one process per target instead of the whole config in one"
    )
    parser.add_argument(
        "--targets", help="with --per-target: comma-separated target indices of the config (default: all)"
    )
    parser.add_argument("--keep", help="keep the run folders here (default: a temporary folder, removed)")
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--target", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--data-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args)))
        return

    import pandas as pd

    os.chdir(REPO)  # relative paths (config, data roots) are read from the repository root, as by the CLI
    sys.path.insert(0, str(REPO))
    from anonaudit.config import load_config

    config = load_config(args.config, roots=[args.root])
    # Both sides read the same files: the data root resolved here (from the repository root).
    root = config.data.params.get("root")
    args.data_root = str((REPO / root).resolve()) if root else None
    args.root = str((REPO / args.root).resolve())
    n_targets = len(config.targets)
    if args.targets and not args.per_target:
        parser.error("--targets needs --per-target")
    if args.per_target:
        units: list[int | None] = [int(t) for t in args.targets.split(",")] if args.targets else list(range(n_targets))
    else:
        units = [None]  # the whole config in one process
    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        base_code = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(base_code), args.baseline], cwd=REPO, check=True
        )
        try:
            rev = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=base_code, capture_output=True, text=True
            ).stdout.strip()
            how = (
                f"{len(units)} target(s), one process each"
                if args.per_target
                else f"all {n_targets} targets in one process"
            )
            print(f"baseline {args.baseline} ({rev}) vs the working tree; n={args.n}, {how} of {args.config}, "
                  f"{args.repeats} repeat(s)")
            sides = {"baseline": base_code, "current": REPO}
            timings: dict[str, list[dict]] = {"baseline": [], "current": []}
            tables: dict[str, list] = {"baseline": [], "current": []}
            runs = [(r, t) for r in range(args.repeats) for t in units]
            for k, (r, t) in enumerate(runs):
                order = ["baseline", "current"] if k % 2 == 0 else ["current", "baseline"]
                for side in order:
                    out = work / side / f"repeat{r}" / ("config" if t is None else f"target{t}")
                    timings[side].append(run_phase(sides[side], args, t, out))
                    if r == 0:
                        tables[side].append(pd.read_csv(out / "results.csv"))
                b, c = timings["baseline"][-1], timings["current"][-1]
                what = "whole config" if t is None else f"target {t}"
                print(f"  repeat {r + 1}, {what}: baseline {b['seconds']:.1f} s, working tree {c['seconds']:.1f} s, "
                      f"{b['seconds'] / c['seconds']:.2f}x", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_code)], cwd=REPO, check=False)
    old, new = pd.concat(tables["baseline"], ignore_index=True), pd.concat(tables["current"], ignore_index=True)
    total = {side: sum(r["seconds"] for r in timings[side]) for side in timings}
    print(f"\ntotal Audit.run: baseline {total['baseline']:.1f} s, working tree {total['current']:.1f} s: "
          f"speed-up {total['baseline'] / total['current']:.2f}x (goal >= 4x)")
    per_old, per_new = unit_seconds(old), unit_seconds(new)
    print("per component (summed over targets, first repeat):")
    for comp, s_old in per_old.items():
        s_new = per_new.get(comp, float("nan"))
        print(f"  {comp:<24} {s_old:8.1f} s -> {s_new:8.1f} s  {s_old / s_new if s_new else float('nan'):6.2f}x")
    for side in ("baseline", "current"):
        rec = sum(r["recognize_s"] for r in timings[side])
        crops = sum(r["crops"] for r in timings[side])
        det = sum(r["detect_s"] for r in timings[side])
        print(f"{side}: recogniser {rec:.1f} s for {crops} crops ({rec / total[side]:.0%}), text detector {det:.1f} s "
              f"({det / total[side]:.0%}), everything else {total[side] - rec - det:.1f} s")
    diffs = compare(old, new)
    print(
        f"results tables: {len(old)} rows; "
        f"{'identical (every column but seconds)' if not diffs else f'{len(diffs)} difference(s):'}"
    )
    for line in diffs:
        print("  " + line)


if __name__ == "__main__":
    main()
