"""Frechet distance between Gaussian fits of two feature sets, computed stably without ``sqrtm``.

``FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace term is the sum of
square roots of the eigenvalues of ``S1 S2``; with any factor ``S1 = F F^T`` these equal the
eigenvalues of the symmetric positive semi-definite matrix ``F^T S2 F`` (with ``F = S1^(1/2)`` this
is the familiar ``S1^(1/2) S2 S1^(1/2)``), so one symmetric eigen-solve (``eigvalsh``) gives them in
real arithmetic. ``F`` is the pivoted Cholesky factor of ``S1`` (LAPACK ``dpstrf``: backward
stable, and it stops at the numerical rank, so singular covariances from fewer samples than
dimensions need no eigen-decomposition of ``S1`` and shrink the second problem to ``rank x rank``).
Round-off negatives are clipped to zero before the square root.

When the samples themselves are at hand and there are fewer samples than dimensions, the same
trace is the nuclear norm of ``A1 A2^T`` (centred data matrices), computed from an ``n1 x n2`` SVD:
:func:`frechet_distance_from_features` uses that exact identity, which also makes bootstrap
resamples (integer weights per sample) cheap.

:class:`FeatureStats` streams running sums in float64 around a fixed shift (the first batch's mean)
so huge feature sets never sit in memory and the covariance does not suffer from cancellation.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..errors import DataError, MismatchError


class FeatureStats:
    """Running mean and covariance of feature vectors (float64 sums around a shift).

    ``update`` takes ``(batch, dim)`` arrays; ``mean`` and ``cov`` (unbiased, ``n - 1``) are
    available once ``n >= 2``. ``merge`` combines statistics computed on separate shards.
    """

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None

    def update(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise DataError(f"features must be a 2-d (n, dim) array, got shape {x.shape}")
        if x.shape[0] == 0:
            return
        if not np.all(np.isfinite(x)):
            raise DataError("features contain NaN or inf values")
        if self.dim is None:
            self.dim = x.shape[1]
        if x.shape[1] != self.dim:
            raise MismatchError(f"feature dimension {x.shape[1]} does not match earlier batches ({self.dim})")
        if self._shift is None:
            self._shift = x.mean(axis=0)
            self._sum = np.zeros(self.dim)
            self._outer = np.zeros((self.dim, self.dim))
        y = x - self._shift
        self._sum += y.sum(axis=0)
        self._outer += y.T @ y
        self.n += x.shape[0]

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add ``other``'s samples to these statistics (in place; returns self)."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.dim, self.n = other.dim, other.n
            self._shift, self._sum, self._outer = other._shift.copy(), other._sum.copy(), other._outer.copy()
            return self
        if other.dim != self.dim:
            raise MismatchError(f"cannot merge feature statistics of dimension {other.dim} into {self.dim}")
        # Re-express the other's sums around our shift: y' = y + delta.
        delta = other._shift - self._shift
        s = other._sum
        self._outer += other._outer + np.outer(delta, s) + np.outer(s, delta) + other.n * np.outer(delta, delta)
        self._sum += s + other.n * delta
        self.n += other.n
        return self

    @staticmethod
    def merged(parts: list[FeatureStats]) -> FeatureStats:
        """New statistics of all ``parts``' samples (equal to one pass up to float rounding)."""
        out = FeatureStats()
        for part in parts:
            out.merge(part)
        return out

    @property
    def mean(self) -> np.ndarray:
        if self.n == 0:
            raise DataError("no features accumulated")
        return self._shift + self._sum / self.n

    @property
    def cov(self) -> np.ndarray:
        if self.n < 2:
            raise DataError(f"a covariance needs at least 2 samples, got {self.n}")
        m = self._sum / self.n
        c = (self._outer - self.n * np.outer(m, m)) / (self.n - 1)
        return (c + c.T) / 2


def _check_gaussian(mu: np.ndarray, sigma: np.ndarray, which: str) -> None:
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise MismatchError(f"{which}: mean of shape {mu.shape} and covariance of shape {sigma.shape} do not fit")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise DataError(f"{which}: mean or covariance has NaN/inf entries")


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """``F`` (``d x rank``) with ``sigma = F F^T``, by Cholesky with complete pivoting (LAPACK ``dpstrf``).

    Works for singular PSD matrices (e.g. fewer samples than dimensions): the factorisation stops
    at the numerical rank (LAPACK's default tolerance ``d * eps * max(diag)``).
    """
    c, piv, rank, info = scipy.linalg.lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise DataError(f"pivoted Cholesky failed (LAPACK dpstrf info={info})")
    f = np.empty((sigma.shape[0], rank))
    f[piv - 1] = np.tril(c)[:, :rank]
    return f


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` for symmetric PSD ``S1``, ``S2`` via one symmetric eigen-solve."""
    f = _psd_factor(sigma1)
    m = f.T @ sigma2 @ f
    eig = scipy.linalg.eigvalsh((m + m.T) / 2, driver="evd")
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (float64, >= 0)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    _check_gaussian(mu1, s1, "first")
    _check_gaussian(mu2, s2, "second")
    if mu1.shape != mu2.shape:
        raise MismatchError(f"feature dimensions differ: {mu1.size} vs {mu2.size}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(value, 0.0)


def _centred(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted mean, rows ``sqrt(w_i) (x_i - mean)``, and the covariance divisor ``sum(w) - 1``."""
    total = float(w.sum())
    if total < 2:
        raise DataError(f"a covariance needs at least 2 samples, got {total:g}")
    mu = (w @ x) / total
    return mu, np.sqrt(w)[:, None] * (x - mu), total - 1.0


def frechet_distance_from_features(
    x1: np.ndarray, x2: np.ndarray, w1: np.ndarray | None = None, w2: np.ndarray | None = None
) -> float:
    """Frechet distance between Gaussian fits of two samples, optionally with integer weights.

    ``w`` (e.g. bootstrap counts) weights each sample; the covariance divisor is ``sum(w) - 1``.
    With fewer samples than dimensions the trace term is the nuclear norm of ``A1 A2^T`` (exact);
    otherwise the covariances are formed and :func:`frechet_distance` is used.
    """
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise MismatchError(f"feature arrays must be (n, dim) with equal dim, got {x1.shape} and {x2.shape}")
    w1 = np.ones(len(x1)) if w1 is None else np.asarray(w1, np.float64)
    w2 = np.ones(len(x2)) if w2 is None else np.asarray(w2, np.float64)
    keep1, keep2 = w1 > 0, w2 > 0
    x1, w1, x2, w2 = x1[keep1], w1[keep1], x2[keep2], w2[keep2]
    mu1, a1, c1 = _centred(x1, w1)
    mu2, a2, c2 = _centred(x2, w2)
    if max(len(x1), len(x2)) > x1.shape[1]:
        return frechet_distance(mu1, a1.T @ a1 / c1, mu2, a2.T @ a2 / c2)
    diff = mu1 - mu2
    trace1, trace2 = float((a1 * a1).sum() / c1), float((a2 * a2).sum() / c2)
    nuclear = float(np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()) / np.sqrt(c1 * c2)
    return max(float(diff @ diff) + trace1 + trace2 - 2.0 * nuclear, 0.0)
