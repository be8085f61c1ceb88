"""Time a small real ``Audit`` at growing sizes to check that its cost grows linearly with n.

Usage: ``python benchmarks/audit_scaling.py [--sizes 50 100 200] [--repeats 2]``

The audit: synthetic plates (seed 0; the first n of one generated set), targets ``mask`` and
``gaussian_blur`` (sigma 2), evaluators ``ssim`` and ``psnr`` (no OCR, no models), no output
folder. ``Audit.run`` splits off 20% of the data as auxiliary, so targets and evaluators see 80%.
Plate generation and one small warm-up audit are not timed. For each n the script prints the
best wall time over ``--repeats`` runs, images per second and the time per image relative to the
smallest n (1.00 everywhere = linear scaling); the last line is that ratio for the largest vs
the smallest size. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("ANONAUDIT_PROGRESS", "0")

from _timing import cpu_line

from anonaudit.audit import Audit
from anonaudit.datasets import synthetic_plates
from anonaudit.registry import ANONYMIZERS, EVALUATORS, load_builtin_components


def make_audit(data) -> Audit:
    targets = [ANONYMIZERS.create("mask"), ANONYMIZERS.create("gaussian_blur", sigma=2.0)]
    evaluators = [EVALUATORS.create("ssim"), EVALUATORS.create("psnr")]
    return Audit(data, targets, evaluators=evaluators, seed=0, on_error="raise", name="scaling")


def time_audit(data, repeats: int) -> tuple[float, int]:
    best, evaluation = float("inf"), 0
    for _ in range(repeats):
        audit = make_audit(data)
        t0 = time.perf_counter()
        results = audit.run(output=None, show_progress=False)
        best = min(best, time.perf_counter() - t0)
        evaluation = results.manifest["data"]["evaluation"]
    return best, evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="data set sizes n")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per size")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))

    load_builtin_components()
    t0 = time.perf_counter()
    plates = synthetic_plates(n=max(sizes), seed=0)
    generate = time.perf_counter() - t0
    time_audit(plates.subset(range(min(10, len(plates)))), 1)  # warm-up: imports, first calls

    print(cpu_line())
    print(f"audit: targets mask + gaussian_blur(sigma=2), evaluators ssim + psnr; repeats={args.repeats} "
          f"(generating {max(sizes)} plates {generate:.1f} s, not timed)")
    print(f"{'n':>6s} {'evaluated':>9s} {'seconds':>9s} {'images/s':>9s} {'ms/image':>9s} {'per-image vs first':>19s}")
    first = None
    for n in sizes:
        seconds, evaluation = time_audit(plates.subset(range(n)), args.repeats)
        per_image = seconds / n
        first = per_image if first is None else first
        print(
            f"{n:6d} {evaluation:9d} {seconds:9.3f} {n / seconds:9.1f} {1000 * per_image:9.2f} "
            f"{per_image / first:18.2f}x"
        )
    if len(sizes) > 1:
        print(f"per-image time at n={sizes[-1]} / n={sizes[0]}: {per_image / first:.2f} (1.00 = linear)")


if __name__ == "__main__":
    main()
