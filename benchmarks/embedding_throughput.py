"""Time the suite's ``dlib`` face embedder against raw dlib calls on the same LFW images.

Usage: ``python benchmarks/embedding_throughput.py [--n 64] [--root ../shared/data/lfw] [--repeats 1]``

The first ``--n`` images of the LFW folder (``load_lfw(root, limit=n, seed=None)``) are read into
memory first (not timed). Timed, all in this process on those arrays, with the embedder's default
settings (HOG detector with 1 upsampling, largest face, 5-point alignment, 150x150 chips with
padding 0.25, no jitter):

- raw, batched: ``get_frontal_face_detector().run`` + 5-point ``shape_predictor`` +
  ``get_face_chip`` per image, then one ``face_recognition_model_v1.compute_face_descriptor`` call
  on all chips;
- raw, per image: ``compute_face_descriptor(image, shape)`` once per image (face_recognition's way);
- suite ``EMBEDDERS.create("dlib").embed(images)`` with a cold memo;
- the same call again with the warm per-image memo (a fresh ``ImageSet`` of the same arrays, so
  content hashing is included).

Throughput is images per second; the ratios (suite / raw batched) are the comparable numbers
across machines. The memo is in memory only (``ANONAUDIT_CACHE`` is ignored here), and the
script checks that raw and suite embeddings agree. Without the LFW folder it prints why and
exits without timing anything. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")
os.environ.pop("ANONAUDIT_CACHE", None)  # a persistent cache would make the "cold" run warm

import numpy as np
from _timing import best_time, cpu_line

from anonaudit.data.face_loaders import load_lfw
from anonaudit.data.imageset import ImageSet
from anonaudit.memo import clear_memory
from anonaudit.models.faces.dlib_models import dlib_model_file
from anonaudit.registry import EMBEDDERS, load_builtin_components

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


class RawDlib:
    """dlib's detector, 5-point predictor and ResNet descriptor, called directly."""

    def __init__(self, upsample: int = 1, padding: float = 0.25):
        import dlib

        self.dlib = dlib
        self.upsample = upsample
        self.padding = padding
        self.detector = dlib.get_frontal_face_detector()
        self.sp5 = dlib.shape_predictor(str(dlib_model_file("shape_predictor_5_face_landmarks.dat")))
        self.net = dlib.face_recognition_model_v1(str(dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))

    def shape(self, img: np.ndarray):
        rects, scores, _ = self.detector.run(img, self.upsample, 0.0)
        if not len(rects):
            return None
        best = max(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]))
        return self.sp5(img, rects[best])

    def batched(self, images: list[np.ndarray]) -> np.ndarray:
        out = np.full((len(images), 128), np.nan, dtype=np.float32)
        chips, todo = [], []
        for i, img in enumerate(images):
            shape = self.shape(img)
            if shape is not None:
                chips.append(self.dlib.get_face_chip(img, shape, size=150, padding=self.padding))
                todo.append(i)
        if chips:
            out[todo] = np.array([np.asarray(v) for v in self.net.compute_face_descriptor(chips, 0)], dtype=np.float32)
        return out

    def per_image(self, images: list[np.ndarray]) -> np.ndarray:
        out = np.full((len(images), 128), np.nan, dtype=np.float32)
        for i, img in enumerate(images):
            shape = self.shape(img)
            if shape is not None:
                out[i] = np.asarray(self.net.compute_face_descriptor(img, shape, 0, self.padding))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="LFW images (the first n)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="LFW folder (default: ../shared/data/lfw)")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs per row")
    args = parser.parse_args()

    if not args.root.is_dir():
        print(
            f"embedding_throughput: skipped, LFW folder {args.root} not found (give one with --root)", file=sys.stderr
        )
        return

    load_builtin_components()
    t0 = time.perf_counter()
    lfw = load_lfw(args.root, limit=args.n, seed=None).load()
    arrays = [np.ascontiguousarray(lfw[i]) for i in range(len(lfw))]
    n = len(arrays)
    setup = time.perf_counter() - t0

    # Models loaded (and run once) before timing.
    raw = RawDlib()
    raw.batched(arrays[:1])
    embedder = EMBEDDERS.create("dlib")
    embedder.embed(ImageSet.from_arrays(arrays[:1]))
    clear_memory()

    def suite():
        return embedder.embed(ImageSet(lfw.records, arrays, name=lfw.name))

    t_raw, raw_vecs = best_time(lambda: raw.batched(arrays), args.repeats)
    t_one, one_vecs = best_time(lambda: raw.per_image(arrays), args.repeats)
    t_cold, suite_vecs = best_time(suite, args.repeats, before=clear_memory)
    t_warm, _ = best_time(suite, max(args.repeats, 3))  # memo filled by the last cold run

    found_raw = ~np.isnan(raw_vecs).any(axis=1)
    found_suite = ~np.isnan(suite_vecs).any(axis=1)
    both = found_raw & found_suite
    cos = np.sum(raw_vecs[both] / np.linalg.norm(raw_vecs[both], axis=1, keepdims=True) * suite_vecs[both], axis=1)
    per_image_diff = float(np.nanmax(np.abs(one_vecs - raw_vecs))) if found_raw.any() else float("nan")

    print(cpu_line())
    print(f"images={n} from {args.root} repeats={args.repeats} (loading {setup:.1f} s, not timed)")
    rows = [
        ("raw dlib, batched descriptor", t_raw),
        ("raw dlib, per image", t_one),
        ("suite dlib embed, cold", t_cold),
        ("suite dlib embed, warm", t_warm),
    ]
    print(f"{'':30s} {'seconds':>9s} {'images/s':>9s} {'time / raw batched':>19s}")
    for label, t in rows:
        print(f"{label:30s} {t:9.3f} {n / t:9.1f} {t / t_raw:18.2f}x")
    print(f"ratio suite_cold/raw (time): {t_cold / t_raw:.2f}   throughput {t_raw / t_cold:.2f}x of raw")
    print(f"ratio suite_warm/raw (time): {t_warm / t_raw:.4f} throughput {t_raw / t_warm:.0f}x of raw")
    print(f"faces found: raw {int(found_raw.sum())}/{n}, suite {int(found_suite.sum())}/{n}; "
          f"cosine raw vs suite on {int(both.sum())}: min {cos.min() if len(cos) else float('nan'):.6f}; "
          f"max |per image - batched| {per_image_diff:.2e}")


if __name__ == "__main__":
    main()
