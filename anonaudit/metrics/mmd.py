"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018).

``k(x, y) = (x.y / d + 1)^3``. KID is the mean of the unbiased MMD^2 estimate over ``subsets``
random subsets of ``subset_size`` samples drawn without replacement, independently from each set
(as the KID paper's code and torchmetrics do); its spread is the standard deviation over subsets
(population, ``ddof=0``, as torchmetrics reports it).

All estimates here are computed from precomputed kernel matrices and per-sample weights: a subset
is a 0/1 weight vector, a bootstrap resample an integer count vector. Pairs of positions that draw
the same sample are excluded from the within-set sums (they are the diagonal of the U-statistic),
so ``sum_{i != j} w_i w_j K_ij / ((sum w)^2 - sum w_i^2)`` is the within-set term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError, MismatchError


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> np.ndarray:
    """``(gamma x y^T + coef)^degree`` with ``gamma = 1 / dim`` by default (float64)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef) ** degree


def mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for each row of the weight matrices ``wx`` ``(k, n_x)`` and ``wy`` ``(k, n_y)``."""
    wx, wy = np.atleast_2d(np.asarray(wx, np.float64)), np.atleast_2d(np.asarray(wy, np.float64))
    dx, dy = np.diag(kxx), np.diag(kyy)
    sx, sy = wx.sum(axis=1), wy.sum(axis=1)
    qx, qy = (wx * wx).sum(axis=1), (wy * wy).sum(axis=1)
    if np.any(sx * sx - qx <= 0) or np.any(sy * sy - qy <= 0):
        raise DataError("unbiased MMD^2 needs at least two distinct samples on each side")
    xx = (((wx @ kxx) * wx).sum(axis=1) - (wx * wx) @ dx) / (sx * sx - qx)
    yy = (((wy @ kyy) * wy).sum(axis=1) - (wy * wy) @ dy) / (sy * sy - qy)
    xy = ((wx @ kxy) * wy).sum(axis=1) / (sx * sy)
    return xx + yy - 2.0 * xy


@dataclass(frozen=True)
class KIDResult:
    """KID over subsets: ``mean`` and ``std`` (ddof=0) of the per-subset MMD^2 ``values``."""

    mean: float
    std: float
    values: np.ndarray
    subset_size: int


def _subset_weights(rng: np.random.Generator, n: int, m: int, k: int) -> np.ndarray:
    w = np.zeros((k, n))
    for row in w:
        row[rng.choice(n, size=m, replace=False)] = 1.0
    return w


def kid(
    x: np.ndarray,
    y: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> KIDResult:
    """KID between feature sets ``x`` ``(n_x, d)`` and ``y`` ``(n_y, d)``.

    ``subset_size`` must not exceed either set's size (as in torchmetrics); when it equals both,
    every subset is the whole set and the result is the single full-sample unbiased MMD^2.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise MismatchError(f"feature arrays must be (n, dim) with equal dim, got {x.shape} and {y.shape}")
    if subset_size < 2 or subset_size > min(len(x), len(y)):
        raise DataError(
            f"KID subset_size must be in [2, {min(len(x), len(y))}] for sets of {len(x)} and {len(y)}, got "
            f"{subset_size}"
        )
    kxx = polynomial_kernel(x, x, degree, gamma, coef)
    kyy = polynomial_kernel(y, y, degree, gamma, coef)
    kxy = polynomial_kernel(x, y, degree, gamma, coef)
    rng = np.random.default_rng(seed)
    wx = _subset_weights(rng, len(x), subset_size, subsets)
    wy = _subset_weights(rng, len(y), subset_size, subsets)
    values = mmd2_unbiased(kxx, kyy, kxy, wx, wy)
    return KIDResult(float(values.mean()), float(values.std()), values, subset_size)
