"""How many crops per recogniser call: RapidOCR's recogniser on plate crops, one call per batch vs parts in threads.

Usage: ``python benchmarks/recognizer_parts.py [--n 96] [--repeats 3] [--parts 2,3,6,12]``

On ``--n`` synthetic plates (seed 0), resized and normalised as the engine does (48 x 320 input),
times the PP-OCR recogniser's forward passes only:

- one call on the whole batch with the runtime's default intra-op threads (the package's way);
- for each part size k: the batch cut into parts of about k crops, one intra-op thread per call,
  parts run in parallel threads, one per usable CPU (``anonaudit.models.ocr.rapid._forward``,
  what the engine does with ``PART_SIZE``).

Prints milliseconds per crop (best of ``--repeats``), each part size's speed-up over the whole-batch
call, and whether its outputs equal the whole-batch call's bit for bit (they must: the engine relies
on it). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")

import cv2
import numpy as np
from _timing import best_time, cpu_line

from anonaudit.datasets import synthetic_plates
from anonaudit.models.ocr.rapid import RECOGNIZER_PARAMS, _forward, rapidocr_instance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="plate crops in the batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="2,3,6,12", help="comma-separated part sizes (crops per call, >= 2)")
    args = parser.parse_args()
    sizes = [int(k) for k in args.parts.split(",")]
    if min(sizes) < 2:
        raise SystemExit("part sizes must be >= 2: a lone crop's outputs can differ in the last bits")

    plates = synthetic_plates(n=args.n, seed=0)
    threaded = rapidocr_instance(RECOGNIZER_PARAMS)._load_rec_model()
    default = rapidocr_instance({})._load_rec_model()
    _, height, width = threaded.rec_image_shape
    batch = np.stack(
        [threaded.resize_norm_img(cv2.cvtColor(plates[i], cv2.COLOR_RGB2BGR), (width + 0.5) / height)
         for i in range(len(plates))]
    ).astype(np.float32)
    print(cpu_line())
    print(f"{len(batch)} crops of {height}x{width}")
    default.session(batch[:2])  # warm both sessions
    threaded.session(batch[:2])
    whole_s, whole = best_time(lambda: np.asarray(default.session(batch)), args.repeats)
    print(f"one call, default intra-op threads: {1000 * whole_s / len(batch):.1f} ms per crop")
    for k in sizes:
        seconds, out = best_time(
            lambda k=k: np.stack(_forward(threaded.session, batch, list, part_size=k)), args.repeats
        )
        same = "identical outputs" if np.array_equal(out, whole) else "OUTPUTS DIFFER"
        print(f"parts of {k:>2} in threads: {1000 * seconds / len(batch):.1f} ms per crop, "
              f"{whole_s / seconds:.2f}x the one-call speed; {same}")


if __name__ == "__main__":
    main()
