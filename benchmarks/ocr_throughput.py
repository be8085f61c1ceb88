"""Time the ``ocr`` attack (RapidOCR) against raw RapidOCR recogniser calls on the same plate crops.

Usage: ``python benchmarks/ocr_throughput.py [--n 60] [--release noise|identity] [--repeats 2] [--sqlite]``

On ``--n`` synthetic plates (seed 0) the attack reads the plate crop of every original and of
every released image, so each run reads ``2 n`` crops. Timed, all in this process on those crops:

- raw, batched: RapidOCR's own recogniser (``TextRecognizer``, batches of ``rec_batch_num``) on
  every crop (RGB -> BGR conversion included);
- raw, per crop: the public ``RapidOCR()(crop, use_det=False, use_cls=False)`` call, once per crop;
- suite ``OCREngine.read`` only (cold memo): the two reads the attack makes;
- suite ``OCRReread.run`` with a cold memo (fit on 20 auxiliary plates first, as an audit does);
- suite ``OCRReread.run`` again with the warm per-image memo (nothing left to OCR).

The release is ``noise`` (Gaussian noise of std 1, so every released crop differs from its
original) or ``identity`` (the originals released as they are: the memo reads each crop once and
answers the second read from memory). Models are loaded before any timing. Throughput is crops
per second; the ratios (suite / raw batched) are the comparable numbers across machines. The memo
is in memory only unless ``--sqlite`` (then each cold run writes a fresh SQLite cache in a
temporary folder, as ``ANONAUDIT_CACHE`` does). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")
os.environ.pop("ANONAUDIT_CACHE", None)  # a persistent cache would make the "cold" runs warm

import cv2
from _timing import best_time, cpu_line

from anonaudit.attacks.ocr import OCRReread
from anonaudit.data.imageset import Release
from anonaudit.datasets import synthetic_plates
from anonaudit.memo import clear_memory
from anonaudit.models.ocr.base import PLATE_MARGIN, plate_crop
from anonaudit.models.ocr.rapid import RapidOCREngine, rapidocr_instance
from anonaudit.registry import ANONYMIZERS, load_builtin_components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="synthetic plates (each run reads 2 n crops)")
    parser.add_argument("--release", choices=("noise", "identity"), default="noise")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per row")
    parser.add_argument("--sqlite", action="store_true", help="memo also writes an SQLite cache (fresh per cold run)")
    args = parser.parse_args()

    load_builtin_components()
    t0 = time.perf_counter()
    plates = synthetic_plates(n=args.n, seed=0)
    auxiliary = synthetic_plates(n=20, seed=1)
    if args.release == "noise":
        release = Release(
            plates, ANONYMIZERS.create("noise", std=1.0).anonymize(plates, show_progress=False), name="noise"
        )
    else:
        release = Release(plates, plates, name="identity")
    records = release.originals.records
    crops = [plate_crop(release.originals[i], records[i], PLATE_MARGIN) for i in range(len(release))]
    crops += [plate_crop(release.anonymized[i], records[i], PLATE_MARGIN) for i in range(len(release))]
    setup = time.perf_counter() - t0

    # Models loaded (and ONNX sessions run once) before timing.
    from rapidocr import RapidOCR
    from rapidocr.ch_ppocr_rec.typings import TextRecInput

    raw_engine = RapidOCR(params={"Global.log_level": "error"})
    rec = raw_engine._load_rec_model()
    rec(TextRecInput(img=[cv2.cvtColor(crops[0], cv2.COLOR_RGB2BGR)]))
    suite_rec = rapidocr_instance()._load_rec_model()
    suite_rec(TextRecInput(img=[cv2.cvtColor(crops[0], cv2.COLOR_RGB2BGR)]))

    def raw_batched():
        return rec(TextRecInput(img=[cv2.cvtColor(c, cv2.COLOR_RGB2BGR) for c in crops])).txts

    def raw_per_crop():
        return [
            raw_engine(cv2.cvtColor(c, cv2.COLOR_RGB2BGR), use_det=False, use_cls=False, use_rec=True).txts[0]
            for c in crops
        ]

    tmp = tempfile.TemporaryDirectory(prefix="anonaudit-bench-") if args.sqlite else None
    runs = [0]

    def cold():
        clear_memory()
        if tmp is not None:
            runs[0] += 1
            os.environ["ANONAUDIT_CACHE"] = os.path.join(tmp.name, f"run{runs[0]}")

    def read_only():
        engine = RapidOCREngine()
        return engine.read(release.originals, records=records) + engine.read(release.anonymized, records=records)

    def attack_run():
        return OCRReread().fit(auxiliary).run(release)

    n_crops = len(crops)
    t_raw, raw_txts = best_time(raw_batched, args.repeats)
    t_one, _ = best_time(raw_per_crop, args.repeats)
    t_read, _ = best_time(read_only, args.repeats, before=cold)
    t_cold, _ = best_time(attack_run, args.repeats, before=cold)
    t_warm, _ = best_time(attack_run, args.repeats)  # memo filled by the last cold run

    # Sanity: the suite's decoding is RapidOCR's greedy CTC decoding (padding may differ in a batch).
    suite_txts = [r.text for r in RapidOCREngine().read_arrays(crops)]
    same = sum(a == b for a, b in zip(raw_txts, suite_txts))

    print(cpu_line())
    print(f"plates={args.n} release={args.release} crops read per run={n_crops} repeats={args.repeats} "
          f"memo={'memory + SQLite' if args.sqlite else 'memory'} (setup {setup:.1f} s, not timed)")
    rows = [
        ("raw recogniser, batched", t_raw),
        ("raw RapidOCR() per crop", t_one),
        ("suite engine.read x2, cold", t_read),
        ("suite OCRReread.run, cold", t_cold),
        ("suite OCRReread.run, warm", t_warm),
    ]
    print(f"{'':28s} {'seconds':>9s} {'crops/s':>9s} {'time / raw batched':>19s}")
    for label, t in rows:
        print(f"{label:28s} {t:9.3f} {n_crops / t:9.1f} {t / t_raw:18.2f}x")
    print(f"ratio suite_cold/raw (time): {t_cold / t_raw:.2f}   throughput {t_raw / t_cold:.2f}x of raw")
    print(f"ratio suite_warm/raw (time): {t_warm / t_raw:.3f}  throughput {t_raw / t_warm:.1f}x of raw")
    print(f"cold run outside OCR reads (scoring, baselines): {max(0.0, t_cold - t_read):.3f} s")
    print(f"raw and suite texts identical: {same}/{n_crops}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
