"""A 10,000-image audit streamed from disk: peak memory and per-image time at growing sizes.

Usage: ``python benchmarks/streaming_10k.py [--n 10000 | --sizes 1000 2000 5000 10000] [--data DIR] [--in-memory]
[--ssim] [--ocr]``

The data: synthetic plates (seed 0) written once as PNG files with a ``labels.csv`` (text and plate
box) to ``--data`` (kept, and reused by later runs when it holds enough plates) or to a temporary
folder; the first n rows are the set of size n, for n = ``--n`` / 10, / 5, / 2 and ``--n`` (or
``--sizes``). Writing 10,000 plates takes about 4 minutes, the default audits about 8 more. The audit, in a fresh
process per size, loads the
set lazily (``load_labeled_folder``), so images are decoded when a component asks for them, and
runs targets ``gaussian_blur`` (sigma 2) and ``mask`` with the evaluator ``psnr`` (``--ssim`` adds
SSIM, about 25 ms per image and target on a 2-core machine; ``--ocr`` the RapidOCR attack, about
50 ms per crop) into a fresh output folder. Each process reports the wall and CPU time of
``Audit.run`` (imports, torch's included, are done before) and its peak resident memory
(``VmHWM``: the most of the process's memory ever resident, imports and models included). Between
sizes the script also prints the time per extra image (the slope, free of fixed costs).
``--in-memory`` loads the set into memory first (``ImageSet.load``): the path of generated data,
whose releases are held in memory too, for comparison. Goals: peak RSS under 4 GiB and the time
per image flat from 1k to 10k (the last line's ratio near 1). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")
os.environ.pop("ANONAUDIT_CACHE", None)

from _timing import cpu_line


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_plates(folder: Path, n: int) -> None:
    """``synthetic_plates(n, seed=0)`` as PNG files (fast zlib level) and ``labels.csv``."""
    import cv2

    from anonaudit.datasets import synthetic_plates

    plates = synthetic_plates(n=n, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, rec in enumerate(plates.records):
        name = f"{rec.key}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(plates[i], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        box = rec.boxes[0]
        rows.append([name, rec.text, box.x, box.y, box.w, box.h])
    with open(folder / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text", "x", "y", "w", "h"], *rows])


def ensure_data(folder: Path, n: int) -> None:
    """``folder`` holds at least ``n`` plates (``labels.csv``); otherwise they are generated, in a
    process of their own (generation holds every plate in memory; this process stays small)."""
    labels = folder / "labels.csv"
    if labels.is_file() and sum(1 for _ in labels.open()) - 1 >= n:
        return
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--phase", "write", "--data", str(folder), "--n", str(n)], check=True)
    print(f"wrote {n} plates to {folder} in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)


def run_audit(folder: Path, n: int, in_memory: bool, ssim: bool, ocr: bool) -> dict:
    """One audit of the first ``n`` plates in this process: timings and peak memory."""
    from anonaudit.audit import Audit
    from anonaudit.datasets import load_labeled_folder
    from anonaudit.registry import ANONYMIZERS, ATTACKS, EVALUATORS, load_builtin_components

    load_builtin_components()
    with contextlib.suppress(ImportError):
        import torch  # noqa: F401 - imported by Audit.run (seeding) when installed: an import, not audit work
    data = load_labeled_folder(folder, limit=n, seed=None)
    if in_memory:
        data = data.load()
    targets = [ANONYMIZERS.create("gaussian_blur", sigma=2.0), ANONYMIZERS.create("mask")]
    attacks = [ATTACKS.create("ocr", engine="rapidocr")] if ocr else []
    evaluators = [EVALUATORS.create("psnr")] + ([EVALUATORS.create("ssim")] if ssim else [])
    audit = Audit(data, targets, attacks, evaluators, seed=0, on_error="raise", name="streaming")
    rss_before = peak_rss_bytes()
    with tempfile.TemporaryDirectory(prefix="anonaudit-stream-") as out:
        t0, c0 = time.perf_counter(), time.process_time()
        results = audit.run(Path(out) / "run", show_progress=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": len(data), "evaluated": results.manifest["data"]["evaluation"], "seconds": seconds, "cpu": cpu,
            "peak_rss": peak_rss_bytes(), "peak_rss_before_run": rss_before,
            "not_ok": int((results.table.status != "ok").sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="largest set size (also n/10, n/5 and n/2)")
    parser.add_argument("--sizes", type=int, nargs="+", help="set sizes instead of those of --n")
    parser.add_argument("--data", help="folder for the generated plates (kept; default: a temporary folder)")
    parser.add_argument("--in-memory", action="store_true", help="load each set into memory first (for comparison)")
    parser.add_argument("--ssim", action="store_true", help="add the SSIM evaluator")
    parser.add_argument("--ocr", action="store_true", help="add the RapidOCR attack (slow: about 50 ms per crop)")
    parser.add_argument("--phase", choices=["write", "run"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "write":
        write_plates(Path(args.data), args.n)
        return
    if args.phase == "run":
        print(json.dumps(run_audit(Path(args.data), args.n, args.in_memory, args.ssim, args.ocr)))
        return

    sizes = sorted(set(args.sizes or [max(1, args.n // d) for d in (10, 5, 2, 1)]))
    tmp = None if args.data else tempfile.TemporaryDirectory(prefix="anonaudit-plates-")
    folder = Path(args.data or tmp.name)
    print(cpu_line(), flush=True)
    ensure_data(folder, sizes[-1])
    mode = "in memory (ImageSet.load)" if args.in_memory else "streamed from PNG files"
    evaluators = "psnr + ssim" if args.ssim else "psnr"
    print(f"audit: targets gaussian_blur(2) + mask, evaluators {evaluators}{', attack ocr' if args.ocr else ''}; "
          f"data {mode}; one process per size")
    print(f"{'n':>6s} {'evaluated':>9s} {'seconds':>8s} {'ms/image':>9s} {'CPU ms/image':>13s} {'vs first':>9s} "
          f"{'ms/extra image':>15s} {'peak RSS':>11s} {'before run':>11s}", flush=True)
    first = last = None
    for n in sizes:
        cmd = [sys.executable, __file__, "--phase", "run", "--data", str(folder), "--n", str(n)]
        cmd += [
            flag for flag, on in (("--in-memory", args.in_memory), ("--ssim", args.ssim), ("--ocr", args.ocr)) if on
        ]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        per_image, cpu_per_image = r["seconds"] / r["n"], r["cpu"] / r["n"]
        first = first or (per_image, cpu_per_image)
        slope = "" if last is None else f"{1000 * (r['seconds'] - last['seconds']) / (r['n'] - last['n']):.2f}"
        last = r
        print(
            f"{r['n']:6d} {r['evaluated']:9d} {r['seconds']:8.1f} {1000 * per_image:9.2f} {1000 * cpu_per_image:13.2f} "
            f"{per_image / first[0]:8.2f}x {slope:>15s} {r['peak_rss'] / 2**30:7.2f} GiB "
            f"{r['peak_rss_before_run'] / 2**30:7.2f} GiB" + (f"  ({r['not_ok']} rows not ok)" if r["not_ok"] else ""),
            flush=True,
        )
    if len(sizes) > 1:
        print(f"per-image time n={sizes[-1]} / n={sizes[0]}: {per_image / first[0]:.2f} wall, "
              f"{cpu_per_image / first[1]:.2f} CPU (1.00 = flat); peak RSS at n={sizes[-1]}: "
              f"{r['peak_rss'] / 2**30:.2f} GiB (goal < 4 GiB)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
