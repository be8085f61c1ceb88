"""Estimates with uncertainty: the value type every attack and evaluator returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy import stats as _st

Z95 = float(_st.norm.ppf(0.975))


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its 95% confidence interval.

    ``standard`` is False when the number is computed differently from the reference definition
    its family is known by (e.g. a Frechet distance on non-Inception features); ``reason`` says why.
    """

    value: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n: int = 0
    method: str = ""
    standard: bool = True
    reason: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        ci = "" if math.isnan(self.ci_low) else f" [{self.ci_low:.4g}, {self.ci_high:.4g}]"
        return f"{self.value:.4g}{ci} (n={self.n})"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (nan, nan for n == 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval always contains p (its ends are exactly 0 at k = 0 and 1 at k = n); min/max
    # only undo floating-point rounding there.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def proportion(successes: Sequence[bool] | np.ndarray, method: str = "") -> Estimate:
    """Rate of True values with a Wilson 95% CI."""
    arr = np.asarray(successes, dtype=bool)
    k, n = int(arr.sum()), int(arr.size)
    lo, hi = wilson_interval(k, n)
    return Estimate(k / n if n else float("nan"), lo, hi, n, method or "proportion, Wilson 95% CI")


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap 95% CI of ``statistic`` over the first axis of ``values``."""
    values = np.asarray(values)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    if statistic is np.mean and values.ndim == 1:
        stats = values[idx].mean(axis=1)
    else:
        stats = np.array([statistic(values[i]) for i in idx])
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def mean_estimate(values: Sequence[float] | np.ndarray, method: str = "", seed: int = 0) -> Estimate:
    """Mean of per-item values with a percentile-bootstrap 95% CI (nan values are dropped)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return Estimate(float("nan"), n=0, method=method)
    lo, hi = bootstrap_ci(arr, seed=seed)
    return Estimate(float(arr.mean()), lo, hi, int(arr.size), method or "mean, bootstrap 95% CI")


def relative_risk(release: float, original: float, baseline: float) -> float:
    """Share of the attack's advantage over chance that survives anonymization.

    ``(release - baseline) / (original - baseline)``, clipped to [0, 1]; nan when the attack has
    no advantage on the originals (nothing to protect, or the attack is useless).
    """
    gain = original - baseline
    if not np.isfinite(gain) or gain <= 1e-12 or not np.isfinite(release):
        return float("nan")
    return float(np.clip((release - baseline) / gain, 0.0, 1.0))
