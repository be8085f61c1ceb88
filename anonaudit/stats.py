"""Estimates with uncertainty: the value type every attack and evaluator returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

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


def negatives_needed(rate: float) -> int:
    """The sample-size rule for a true-positive rate at a false-positive rate ``rate`` (membership TPR
    at FPR, verification TAR at FAR): at least ``ceil(1 / rate)`` negatives, so that the threshold
    may admit at least one of them. With fewer, "at most ``rate``" admits none: the rate is measured
    at a false-positive rate of 0, the same number for every smaller ``rate``."""
    return int(math.ceil(1.0 / rate - 1e-9))


def unresolved_rate(name: str, negatives: str, have: int, need: int, extra: dict | None = None,
                    unit: str = "") -> Estimate:
    """The estimate of a rate the sample cannot resolve (:func:`negatives_needed`): value nan, ``n=0``,
    not standard, and a reason naming the ``negatives`` needed and had (counted in ``unit``, e.g.
    images or people), so that a criterion on it is NOT TESTED with the sample size it needs."""
    return Estimate(
        float("nan"), n=0, method=name, standard=False, extra=dict(extra or {}),
        reason=f"{name} needs >= {need} {negatives}, has {have} ({unit + '; ' if unit else ''}with fewer the "
               "threshold admits none of them: the false-positive rate reached would be 0, not the one named)",
    )


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (nan, nan for n == 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    return wilson_bounds_at_rate(successes / n, n, z)


def wilson_bounds_at_rate(rate: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``rate`` observed on ``n`` items (``n`` need not make
    ``rate * n`` a whole count: used to ask what the interval of the same rate would be at another n)."""
    if n <= 0:
        return float("nan"), float("nan")
    denom = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denom
    # The interval always contains the rate (its ends are exactly 0 at rate 0 and 1 at rate 1);
    # min/max only undo floating-point rounding there.
    return max(0.0, min(rate, centre - half)), min(1.0, max(rate, centre + half))


def is_wilson(value: float, ci_low: float, ci_high: float, n: float, tol: float = 1e-7) -> bool:
    """Whether ``[ci_low, ci_high]`` is the Wilson 95% interval of ``value * n`` successes in ``n``
    (how a results row, which keeps no method, tells a count's interval from a bootstrap one)."""
    if not (n and n > 0 and all(math.isfinite(x) for x in (value, ci_low, ci_high))):
        return False
    k = round(value * n)
    if abs(k - value * n) > 1e-6:
        return False
    lo, hi = wilson_interval(int(k), int(n))
    return abs(lo - ci_low) <= tol and abs(hi - ci_high) <= tol


def wilson_n_needed(rate: float, threshold: float, side: str = "upper", z: float = Z95) -> float:
    """Smallest n at which the Wilson 95% interval of the proportion ``rate`` has its ``side`` end
    meeting ``threshold`` (``upper``: at most it; ``lower``: at least it); ``inf`` when no n can,
    i.e. when ``rate`` itself is not strictly on the passing side.

    Exact: the Wilson interval is the set of ``t`` with ``(rate - t)^2 <= z^2 t (1 - t) / n``, so its
    upper end is at most ``t > rate`` exactly when ``n >= z^2 t (1 - t) / (t - rate)^2`` (the lower end
    likewise); the closed form is then checked against the interval itself at n and n - 1.
    """
    if side not in ("upper", "lower"):
        raise ValueError(f"side must be 'upper' or 'lower', got {side!r}")
    if not (math.isfinite(rate) and math.isfinite(threshold)):
        return float("inf")
    gap = threshold - rate if side == "upper" else rate - threshold
    if (side == "upper" and threshold >= 1.0) or (side == "lower" and threshold <= 0.0):
        return 1.0
    if gap <= 0:
        return float("inf")

    def meets(n: int) -> bool:
        lo, hi = wilson_bounds_at_rate(rate, n, z)
        return hi <= threshold if side == "upper" else lo >= threshold

    n = max(1, math.ceil(z * z * threshold * (1 - threshold) / gap**2))
    while not meets(n):  # floating-point rounding of the closed form: at most a step or two
        n += 1
    while n > 1 and meets(n - 1):
        n -= 1
    return float(n)


def scaled_n_needed(value: float, bound: float, n: float, threshold: float) -> float:
    """Approximate smallest n at which an interval end at distance ``|bound - value|`` from the value
    on ``n`` items reaches ``threshold``, the half-width shrinking as ``sqrt(n / n_new)`` (for bootstrap
    or propagated intervals, whose method the results row does not keep); ``inf`` when the value
    itself is not strictly on the passing side of the threshold (the side ``bound`` lies on)."""
    half, gap = abs(bound - value), abs(threshold - value)
    if not all(math.isfinite(x) for x in (value, bound, threshold)) or n <= 0:
        return float("inf")
    if gap == 0 or (threshold - value) * (bound - value) <= 0:
        return float("inf") if half > 0 else float(n)
    return float(max(1, math.ceil(n * (half / gap) ** 2)))


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


RISK_KINDS = ("relative", "new_leak", "absolute", "none")


@dataclass(frozen=True)
class Risk:
    """A privacy risk with its 95% CI and how it was defined.

    ``kind`` is ``relative`` (``(release - baseline) / (original - baseline)``: 0 = chance, 1 = as
    the originals, above 1 = the release leaks MORE than the originals, never clipped),
    ``new_leak`` (the originals give the attack nothing, so ``(release - baseline) / (1 -
    baseline)``: the release leaks what the originals did not), ``absolute`` (the same formula when
    the attack could not be run on the originals: a lower bound of the relative risk) or ``none``
    (no estimate; ``reason`` says why). Risks below chance are 0.
    """

    value: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    kind: str = "none"
    reason: str = ""

    @property
    def exceeds_original(self) -> bool:
        """True when the release leaks more than the originals: a relative risk whose 95% CI lies above 1
        (its lower bound above 1; a point estimate above 1 with a CI reaching below is sampling noise)."""
        return self.kind == "relative" and self.ci_low > 1.0

    @property
    def label(self) -> str:
        """``kind``, or ``none: <reason>`` when there is no estimate (the results table's ``risk_kind``)."""
        return f"none: {self.reason}" if self.kind == "none" else self.kind


def _is_proportion(e: Estimate) -> bool:
    return e.method.startswith("proportion") and e.n > 0 and abs(e.value * e.n - round(e.value * e.n)) < 1e-6


def _sampling_draws(e: Estimate, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draws from an estimate's sampling distribution: Jeffreys Beta(k+1/2, n-k+1/2) for a count of
    successes (its interval is close to Wilson's), else a split normal fitted to the 95% CI (a
    constant when the estimate has no interval)."""
    if _is_proportion(e):
        k = round(e.value * e.n)
        return rng.beta(k + 0.5, e.n - k + 0.5, size)
    if not (np.isfinite(e.ci_low) and np.isfinite(e.ci_high)):
        return np.full(size, e.value)
    z = rng.standard_normal(size)
    return e.value + np.where(z < 0, (e.value - e.ci_low), (e.ci_high - e.value)) * z / Z95


def risk_estimate(
    release: Estimate, original: Estimate | None, baseline: float, n_draws: int = 20000, seed: int = 0
) -> Risk:
    """The risk of one attack metric (see :class:`Risk`) with its 95% CI.

    CIs: for ``new_leak`` and ``absolute`` risks the release's interval mapped through the (monotone)
    formula, exact. For ``relative`` risks, Monte-Carlo propagation: ``n_draws`` seeded draws of the
    release and original rates from their sampling distributions (Jeffreys Beta for counts, split
    normal from the CI otherwise), the risk of each pair (``inf`` where a drawn original is at or
    below chance while the drawn release is above it), and the 2.5/97.5 percentiles, widened to
    contain the point value. ``n_draws=0`` gives the point value only.
    """
    b = baseline
    if not np.isfinite(release.value) or release.n == 0:
        return Risk(float("nan"), kind="none", reason="nothing measured on the release (n=0)")
    if not np.isfinite(b):
        return Risk(float("nan"), kind="none", reason="the attack has no chance baseline")
    o = None if original is None else original.value
    if o is not None and not np.isfinite(o):
        return Risk(float("nan"), kind="none", reason="the attack's result on the originals is undefined")
    if o is not None and o - b > 1e-12:
        value = max(0.0, (release.value - b) / (o - b))
        if n_draws <= 0:
            return Risk(value, kind="relative")
        if not np.isfinite(release.ci_low):
            return Risk(value, kind="relative", reason="the release rate has no CI")
        rng = np.random.default_rng(seed)
        r, g = _sampling_draws(release, rng, n_draws) - b, _sampling_draws(original, rng, n_draws) - b
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = np.where(g > 0, r / np.where(g > 0, g, 1.0), np.where(r > 0, np.inf, 0.0))
        lo, hi = np.percentile(np.maximum(draws, 0.0), [2.5, 97.5], method="inverted_cdf")  # inf-safe
        return Risk(value, float(min(lo, value)), float(max(hi, value)), "relative")
    if b >= 1.0:
        return Risk(float("nan"), kind="none", reason="chance baseline is 1: no attack can do better")

    def scale(x: float) -> float:
        return max(0.0, (x - b) / (1.0 - b)) if np.isfinite(x) else float("nan")

    kind = "new_leak" if o is not None else "absolute"
    return Risk(scale(release.value), scale(release.ci_low), scale(release.ci_high), kind)


def relative_risk(release: float, original: float | None, baseline: float) -> float:
    """Point value of :func:`risk_estimate` from plain numbers (``original=None``: not measured)."""
    orig = None if original is None else Estimate(original, n=1)
    return risk_estimate(Estimate(release, n=1), orig, baseline, n_draws=0).value
