"""Rerun an audit in its own output folder with one extra attack: how much faster than the first run?

Usage: ``python benchmarks/cached_rerun.py [--n 100] [--output DIR]``

The first run audits synthetic plates (seed 0) against ``gaussian_blur`` (sigma 2 and 4),
``pixelate`` (block 8) and ``mask`` with the attacks ``ocr`` (RapidOCR), ``deblur_ocr`` and
``depixelate_ocr`` (one candidate each, as the packaged demo) and the evaluators ``ssim`` and
``psnr``. The rerun, in the same folder, adds one attack: ``ocr`` with confusable characters
folded (``fold_confusions``, top-1), which reads the same plate crops. Each run is a fresh Python
process (nothing cached in memory), so all the rerun has is the run folder: the units the first
run finished and ``cache.sqlite`` (every OCR reading). Timed: ``Audit.run`` inside each process
(imports, torch's included, and plate generation excluded; the whole processes are timed too). The script prints both
times, the
speed-up ratio (goal >= 20x), the rerun's model calls (recogniser crops read; 0 expected) and
checks that the first run's rows are unchanged in the rerun's table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")

from _timing import cpu_line

ATTACKS = [
    {"name": "ocr", "engine": "rapidocr"},
    {"name": "deblur_ocr", "methods": ["wiener"], "wiener_balances": [0.01], "sigma_scales": [1.0]},
    {"name": "depixelate_ocr", "methods": ["gaussian"]},
]
EXTRA = {"name": "ocr", "engine": "rapidocr", "fold_confusions": True, "k": 1}


def phase(n: int, output: str, extra: bool) -> dict:
    """One audit run in this process; returns its timings and the recogniser's crop count."""
    t0 = time.perf_counter()
    from anonaudit.audit import Audit
    from anonaudit.datasets import synthetic_plates
    from anonaudit.models.ocr import RapidOCREngine
    from anonaudit.registry import ANONYMIZERS, EVALUATORS, load_builtin_components
    from anonaudit.registry import ATTACKS as ATTACK_REGISTRY

    load_builtin_components()
    with contextlib.suppress(ImportError):
        import torch  # noqa: F401 - imported by Audit.run (seeding) when installed: an import, not audit work
    crops = [0]
    recognize = RapidOCREngine._recognize

    def counted(self, batch):  # the real recogniser, counting the crops it is given
        crops[0] += len(batch)
        return recognize(self, batch)

    RapidOCREngine._recognize = counted
    plates = synthetic_plates(n=n, seed=0)
    targets = [ANONYMIZERS.create("gaussian_blur", sigma=s) for s in (2.0, 4.0)]
    targets += [ANONYMIZERS.create("pixelate", block=8), ANONYMIZERS.create("mask")]
    specs = ATTACKS + ([EXTRA] if extra else [])
    attacks = [ATTACK_REGISTRY.create(s["name"], **{k: v for k, v in s.items() if k != "name"}) for s in specs]
    evaluators = [EVALUATORS.create("ssim"), EVALUATORS.create("psnr")]
    audit = Audit(plates, targets, attacks, evaluators, seed=0, on_error="raise", name="cached-rerun")
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    results = audit.run(output, show_progress=False)
    seconds = time.perf_counter() - t1
    return {"setup": setup, "seconds": seconds, "crops": crops[0], "rows": len(results.table),
            "failed": int((results.table.status != "ok").sum())}


def run_phase(n: int, output: str, extra: bool) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--phase", "extra" if extra else "first", "--n", str(n),
                           "--output", output], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="synthetic plates (20%% become the intruder's data)")
    parser.add_argument("--output", help="run folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--phase", choices=["first", "extra"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.n, args.output, args.phase == "extra")))
        return

    import pandas as pd

    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        output = args.output or str(Path(tmp) / "run")
        first = run_phase(args.n, output, extra=False)
        table_first = pd.read_csv(Path(output) / "results.csv")
        rerun = run_phase(args.n, output, extra=True)
        table_rerun = pd.read_csv(Path(output) / "results.csv")
    keep = [c for c in table_first.columns if c != "seconds"]
    merged = table_first[keep].merge(table_rerun[keep], how="left", indicator=True)
    same = bool((merged["_merge"] == "both").all())
    print(f"n={args.n}: first run {first['seconds']:.1f} s ({first['crops']} crops read, {first['rows']} rows, "
          f"{first['failed']} not ok); rerun with one extra attack {rerun['seconds']:.2f} s "
          f"({rerun['crops']} crops read, {rerun['rows']} rows, {rerun['failed']} not ok)")
    print(f"whole processes (imports, plate generation): {first['process']:.1f} s vs {rerun['process']:.1f} s")
    print(f"first run's rows unchanged in the rerun: {same}")
    print(f"cached rerun speed-up: {first['seconds'] / rerun['seconds']:.1f}x (goal >= 20x); "
          f"whole processes: {first['process'] / rerun['process']:.1f}x")


if __name__ == "__main__":
    main()
