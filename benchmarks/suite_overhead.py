"""Suite overhead: a plate audit through ``Audit.run`` vs the raw model calls it needs, in one process.

Usage: ``python benchmarks/suite_overhead.py [--n 100] [--data synthetic|us] [--repeats 2] [--profile]``

The audit: ``--n`` plates (``synthetic``: generated, seed 0, in memory; ``us``: the real US plate
crops of ``../shared/data/plates_us``, read from their PNG files), targets ``gaussian_blur``
(sigma 2) and ``pixelate`` (block 8), the ``ocr`` attack (RapidOCR) and the evaluators ``ssim``
and ``psnr``, written to a fresh output folder (unit files, examples, ``cache.sqlite``, the
results table) with the in-memory model cache cleared before each run, so every OCR reading is
computed.

Raw, on the same evaluation images (the audit's own split): decoding each image once (file-backed
data), every target's ``anonymize_image`` per image, RapidOCR's own recogniser (``TextRecognizer``,
batches of ``rec_batch_num``) on the plate crop of every original once and of every released
image, and the SSIM and PSNR kernels (:mod:`anonaudit.metrics.image`) per pair. This is the
work any audit must do; everything else (splitting, hashing, caching, scoring readings, bootstrap
CIs, rows, files) is the suite's overhead. Raw and suite runs alternate ``--repeats`` times, so
a change in the machine's load hits both sides; the script prints the best wall and CPU time
(``time.process_time``, all threads: steadier on a shared machine) of each side, the raw parts,
and ``overhead = suite / raw - 1`` (goal < 15%). ``--profile`` prints one more suite run's top
functions by cumulative time. Models are loaded before any timing. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")
os.environ.pop("ANONAUDIT_CACHE", None)  # a persistent cache would make the suite runs warm

import cv2
from _timing import best_time, cpu_line

from anonaudit.audit import Audit
from anonaudit.data.io import read_image
from anonaudit.datasets import load_labeled_folder, synthetic_plates
from anonaudit.memo import clear_memory
from anonaudit.metrics.image import psnr, ssim
from anonaudit.models.ocr.base import PLATE_MARGIN, plate_crop
from anonaudit.models.ocr.rapid import rapidocr_instance
from anonaudit.registry import ANONYMIZERS, ATTACKS, EVALUATORS, load_builtin_components

US_PLATES = Path(__file__).resolve().parents[2] / "shared" / "data" / "plates_us"


def make_audit(data) -> Audit:
    targets = [ANONYMIZERS.create("gaussian_blur", sigma=2.0), ANONYMIZERS.create("pixelate", block=8)]
    return Audit(data, targets, [ATTACKS.create("ocr", engine="rapidocr")],
                 [EVALUATORS.create("ssim"), EVALUATORS.create("psnr")], seed=0, on_error="raise", name="overhead")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="plates (20%% become the intruder's auxiliary data)")
    parser.add_argument("--data", choices=("synthetic", "us"), default="synthetic")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs of each side")
    parser.add_argument("--profile", action="store_true", help="profile one more suite run and print its top functions")
    args = parser.parse_args()

    load_builtin_components()
    if args.data == "us":
        if not US_PLATES.is_dir():
            raise SystemExit(f"{US_PLATES} not found (the shared data folder)")
        data = load_labeled_folder(US_PLATES, limit=args.n, seed=0)
    else:
        data = synthetic_plates(n=args.n, seed=0)
    audit = make_audit(data)
    _, evaluation = audit.split()
    records = evaluation.records

    from rapidocr.ch_ppocr_rec.typings import TextRecInput

    rec = rapidocr_instance()._load_rec_model()  # the recogniser the suite's engine uses, loaded untimed

    def recognise(crops):
        return rec(TextRecInput(img=[cv2.cvtColor(c, cv2.COLOR_RGB2BGR) for c in crops])).txts

    recognise([plate_crop(evaluation[0], records[0], PLATE_MARGIN)])
    make_audit(data.subset(range(min(12, len(data))))).run(None, show_progress=False)  # warm-up: first calls

    def anonymize_all(target, originals):
        return [target.anonymize_image(o, r) for o, r in zip(originals, records)]

    def score_all(originals, released):
        return [(ssim(o, a), psnr(o, a)) for o, a in zip(originals, released)]

    parts = dict.fromkeys(("decode", "anonymize", "ocr", "ssim + psnr"), float("inf"))

    def raw():
        spent = dict.fromkeys(parts, 0.0)

        def timed(part, fn, *args):
            t0 = time.perf_counter()
            value = fn(*args)
            spent[part] += time.perf_counter() - t0
            return value

        originals = timed("decode", lambda: [read_image(r.path) if r.path is not None else evaluation[i]
                                             for i, r in enumerate(records)])  # once each (file-backed data)
        texts = timed("ocr", recognise, [plate_crop(o, r, PLATE_MARGIN) for o, r in zip(originals, records)])
        scores = []
        for target in audit.targets:
            released = timed("anonymize", anonymize_all, target, originals)
            texts += timed("ocr", recognise, [plate_crop(a, r, PLATE_MARGIN) for a, r in zip(released, records)])
            scores += timed("ssim + psnr", score_all, originals, released)
        for part, seconds in spent.items():
            parts[part] = min(parts[part], seconds)
        return texts, scores

    tmp = tempfile.TemporaryDirectory(prefix="anonaudit-overhead-")
    runs = [0]

    def suite():
        runs[0] += 1
        return make_audit(data).run(Path(tmp.name) / f"run{runs[0]}", show_progress=False)

    # Raw and suite runs alternate, so a change in the machine's load hits both sides alike.
    t_raw = t_suite = cpu_raw = cpu_suite = float("inf")
    for _ in range(args.repeats):
        c0 = time.process_time()
        seconds, (texts, _) = best_time(raw, 1)
        t_raw, cpu_raw = min(t_raw, seconds), min(cpu_raw, time.process_time() - c0)
        c0 = time.process_time()
        seconds, results = best_time(suite, 1, before=clear_memory)
        t_suite, cpu_suite = min(t_suite, seconds), min(cpu_suite, time.process_time() - c0)
    ok = int((results.table.status == "ok").sum())

    print(cpu_line())
    print(f"data={args.data} n={len(data)} (evaluated {len(evaluation)}), targets gaussian_blur(2) + pixelate(8), "
          f"attack ocr (rapidocr), evaluators ssim + psnr; best of {args.repeats} alternating runs")
    print(f"raw model calls: {t_raw:8.3f} s wall, {cpu_raw:8.3f} s CPU  ({len(texts)} crops read, "
          f"{2 * len(evaluation)} anonymizations, {2 * len(evaluation)} SSIM + PSNR pairs)")
    print("  raw parts (best): " + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()))
    print(f"suite Audit.run: {t_suite:8.3f} s wall, {cpu_suite:8.3f} s CPU  ({len(results.table)} rows, {ok} ok)")
    print(f"overhead = suite / raw - 1 = {100 * (t_suite / t_raw - 1):.1f}% wall, "
          f"{100 * (cpu_suite / cpu_raw - 1):.1f}% CPU time (goal < 15%)")
    if args.profile:
        clear_memory()
        profiler = cProfile.Profile()
        profiler.runcall(suite)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    tmp.cleanup()


if __name__ == "__main__":
    main()
