"""Time anonaudit's Frechet distance against the scipy ``sqrtm`` formula on the same covariances.

Usage: ``python benchmarks/frechet_vs_sqrtm.py [--dim 2048] [--n 4096] [--repeats 3]``

Both run in this process on the same random features (two Gaussian samples with different means
and covariances); the script prints each method's best wall time over ``--repeats`` runs, their
values, the relative difference and the time ratio. Also times the sample-based path
(``frechet_distance_from_features``) when ``--n`` is below ``--dim``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import scipy.linalg
from _timing import best_time

from anonaudit.metrics.frechet import frechet_distance, frechet_distance_from_features


def sqrtm_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The pytorch-fid formula: ``scipy.linalg.sqrtm(S1 @ S2)`` (real part)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--n", type=int, default=4096, help="samples per set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    mix = rng.standard_normal((args.dim, args.dim)) / np.sqrt(args.dim)
    x = np.abs(rng.standard_normal((args.n, args.dim)) @ mix)  # non-negative, correlated, like pool3 features
    y = np.abs(rng.standard_normal((args.n, args.dim)) @ (mix + 0.05 * rng.standard_normal(mix.shape))) + 0.01
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)

    t_ours, v_ours = best_time(lambda: frechet_distance(mu1, s1, mu2, s2), args.repeats)
    t_ref, v_ref = best_time(lambda: sqrtm_frechet(mu1, s1, mu2, s2), args.repeats)
    print(f"dim={args.dim} n={args.n} repeats={args.repeats}")
    print(f"anonaudit frechet_distance : {t_ours:8.3f} s  FD={v_ours:.10g}")
    print(f"scipy.linalg.sqrtm formula : {t_ref:8.3f} s  FD={v_ref:.10g}")
    print(f"relative difference        : {abs(v_ours - v_ref) / abs(v_ref):.3g}")
    print(f"speed-up (sqrtm / ours)    : {t_ref / t_ours:.2f}x")
    if args.n < args.dim:
        t_feat, v_feat = best_time(lambda: frechet_distance_from_features(x, y), args.repeats)
        print(
            f"from features (n < dim)    : {t_feat:8.3f} s  FD={v_feat:.10g}  speed-up vs sqrtm {t_ref / t_feat:.2f}x"
        )


if __name__ == "__main__":
    main()
