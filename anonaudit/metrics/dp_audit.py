"""Privacy auditing in one training run: an epsilon lower bound from guesses on random canaries.

Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run" (NeurIPS 2023). Each of
``m`` canaries is included in the training data independently with probability 1/2 (``S_i`` in
{-1, +1}); after one training run the auditor scores every canary, guesses IN (+1) for the ``k``
highest scores and OUT (-1) for the ``k`` lowest, and abstains (0) on the rest: ``r = 2k`` guesses,
``v`` of them correct. Their Theorem 3.1: if the training is (epsilon, delta)-DP then, for every
``v``,

    P[correct >= v] <= f(v) + 2 m delta max_{i = 1..m} (f(v - i) - f(v)) / i,
    f(v) = P[Binomial(r, e^eps / (1 + e^eps)) >= v]

(with delta = 0 the number of correct guesses is dominated by that of ``r`` independent guesses of
eps-DP randomized response). :func:`p_value` is that right-hand side, computed as in the paper's
appendix (the binomial tail plus the ``delta`` term); :func:`epsilon_lower_bound` inverts it: the
largest epsilon whose hypothesis "(epsilon, delta)-DP" the observed ``v`` rejects at level ``beta``
(found by bisection, as the paper's algorithm does, keeping the lower end rejected), so the bound is
below the true epsilon with probability at least ``1 - beta``.

The number of guesses must be fixed before the scores are seen for the theorem to hold.
:func:`one_run_audit` tries a small grid of ``k`` and reports the largest bound; to keep that
maximum at the stated confidence, every ``k`` of the grid is tested at ``beta / len(grid)`` (a union
bound over the grid). The paper's experiments show the bound over a range of guess counts; the
union bound is this module's way of choosing one inside the confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as st

#: Guesses per side as fractions of the number of canaries, for :func:`default_k_grid`.
K_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
#: Bisection steps of :func:`epsilon_lower_bound` (the bracket halves each step).
BISECTION_STEPS = 60


def _check_counts(m: int, r: int, v: int) -> None:
    if not 0 <= v <= r <= m:
        raise ValueError(f"one-run audit: need 0 <= correct ({v}) <= guesses ({r}) <= canaries ({m})")


def p_value(m: int, r: int, v: int, epsilon: float, delta: float = 0.0) -> float:
    """Upper bound on ``P[at least v of r guesses correct]`` for an (``epsilon``, ``delta``)-DP training
    with ``m`` canaries (Theorem 3.1 of Steinke et al. 2023; at most 1)."""
    _check_counts(m, r, v)
    if epsilon < 0 or not 0.0 <= delta <= 1.0:
        raise ValueError(f"one-run audit: need epsilon >= 0 and 0 <= delta <= 1, got {epsilon!r}, {delta!r}")
    q = float(special.expit(epsilon))  # accuracy of eps-DP randomized response, e^eps / (1 + e^eps)
    tail = float(st.binom.sf(v - 1, r, q))  # f(v) = P[Binomial(r, q) >= v]
    if delta == 0.0 or v == 0:
        return min(tail, 1.0)
    # (f(v - i) - f(v)) / i = P[v - i <= Binomial(r, q) < v] / i, maximised over i = 1..v (larger i only divide
    # the same total by more)
    below = np.cumsum(st.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * alpha, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float = 0.0, beta: float = 0.05) -> float:
    """The largest epsilon rejected at level ``beta`` by ``v`` correct of ``r`` guesses on ``m`` canaries:
    the training is not (epsilon, ``delta``)-DP for any smaller epsilon, with confidence ``1 - beta``.
    0 when even epsilon = 0 is not rejected."""
    if not 0.0 < beta < 1.0:
        raise ValueError(f"one-run audit: beta must be in (0, 1), got {beta!r}")
    if p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    low, high = 0.0, 1.0  # p_value(low) < beta <= p_value(high)
    while p_value(m, r, v, high, delta) < beta:
        low, high = high, 2.0 * high
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        if p_value(m, r, v, mid, delta) < beta:
            low = mid
        else:
            high = mid
    return low


def perfect_guess_bound(r: int, beta: float = 0.05) -> float:
    """The bound for ``r`` guesses all correct with delta = 0, in closed form: ``q^r = beta`` with
    ``q = 1 / (1 + e^-eps)`` gives ``eps = -log(beta^(-1/r) - 1)``, or 0 when that is negative (too few
    guesses to reject even eps = 0)."""
    return max(0.0, -math.log(beta ** (-1.0 / r) - 1.0))


def guesses_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """+1 (IN) for the ``k`` highest scores, -1 (OUT) for the ``k`` lowest, 0 (abstain) elsewhere; a
    canary without a finite score (nan: one the signal cannot score) is never guessed. Ties are broken
    by position, which the inclusion draw does not depend on."""
    scores = np.asarray(scores, dtype=float)
    scored = np.flatnonzero(np.isfinite(scores))
    if not 0 <= 2 * k <= len(scored):
        raise ValueError(f"one-run audit: 2k = {2 * k} guesses on {len(scored)} scored canaries")
    order = scored[np.argsort(-scores[scored], kind="stable")]
    guesses = np.zeros(len(scores), dtype=int)
    guesses[order[:k]] = 1
    guesses[order[len(order) - k:]] = -1
    return guesses


def default_k_grid(m: int) -> tuple[int, ...]:
    """Guesses per side tried by :func:`one_run_audit`: :data:`K_FRACTIONS` of ``m`` (at least one, at
    most ``m // 2``, without repeats)."""
    return tuple(sorted({min(m // 2, max(1, round(f * m))) for f in K_FRACTIONS} - {0}))


@dataclass(frozen=True)
class GuessCount:
    """The audit at one number of guesses per side ``k``: ``guesses`` = 2k made, ``correct`` of them
    right, and the bound at the per-``k`` level."""

    k: int
    guesses: int
    correct: int
    epsilon: float


@dataclass(frozen=True)
class OneRunAudit:
    """The epsilon lower bound of one training run, at ``confidence`` for the maximum over ``per_k``;
    ``k``, ``guesses`` and ``correct`` are those of the ``k`` that reached it (the largest on a tie)."""

    epsilon_lower_bound: float
    m: int
    k: int
    guesses: int
    correct: int
    confidence: float
    delta: float
    per_k: tuple[GuessCount, ...]

    @property
    def level_per_k(self) -> float:
        """The level each ``k`` is tested at: ``(1 - confidence) / len(per_k)`` (union bound)."""
        return (1.0 - self.confidence) / len(self.per_k)


def one_run_audit(scores: Sequence[float] | np.ndarray, included: Sequence[bool] | np.ndarray,
                  ks: Sequence[int] | None = None, confidence: float = 0.95, delta: float = 0.0) -> OneRunAudit:
    """The epsilon lower bound from canary ``scores`` (higher = more likely IN; nan: not scored, never
    guessed) and the canaries' random inclusion, maximised over ``ks`` (default :func:`default_k_grid` of
    the scored canaries) with a union bound, so that the reported bound holds with probability
    ``confidence``. The inclusion must have been drawn with probability 1/2, independently per canary,
    before training; ``m`` counts every canary, scored or not."""
    scores, included = np.asarray(scores, dtype=float), np.asarray(included, dtype=bool)
    if scores.shape != included.shape or scores.ndim != 1:
        raise ValueError(f"one-run audit: scores {scores.shape} and inclusion {included.shape} must be two "
                         "vectors of the same length")
    m = len(scores)
    ks = tuple(ks) if ks is not None else default_k_grid(int(np.isfinite(scores).sum()))
    if not ks:
        raise ValueError(f"one-run audit: no number of guesses to try on {m} canaries")
    beta = (1.0 - confidence) / len(ks)
    truth = np.where(included, 1, -1)
    per_k = []
    for k in ks:
        guesses = guesses_from_scores(scores, k)
        correct = int(np.sum(guesses == truth))
        per_k.append(GuessCount(k, 2 * k, correct, epsilon_lower_bound(m, 2 * k, correct, delta, beta)))
    best = max(per_k, key=lambda g: (g.epsilon, g.k))  # on a tie (e.g. every bound 0) the most guesses
    return OneRunAudit(best.epsilon, m, best.k, best.guesses, best.correct, confidence, delta, tuple(per_k))
