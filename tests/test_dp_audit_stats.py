"""The one-run privacy audit's statistics (Steinke, Nasr, Jagielski 2023): the bound's known answers
(perfect guesses in closed form, random guesses at chance, monotone in the correct count, delta's term
and the union bound over the number of guesses)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as st

from anonaudit.metrics.dp_audit import (
    default_k_grid,
    epsilon_lower_bound,
    guesses_from_scores,
    one_run_audit,
    p_value,
    perfect_guess_bound,
)


@pytest.mark.parametrize("r", [10, 50, 200])
def test_perfect_guesses_give_the_closed_form(r: int):
    # r correct of r with delta = 0: the p-value is q^r, q = e^eps / (1 + e^eps); it equals beta at
    # eps = -log(beta^(-1/r) - 1), worked here without the module: r = 10 gives 1.0519
    expected = -math.log(0.05 ** (-1.0 / r) - 1.0)
    assert epsilon_lower_bound(1000, r, r) == pytest.approx(expected, abs=1e-9)
    assert perfect_guess_bound(r) == pytest.approx(expected, abs=1e-12)
    if r == 10:
        assert expected == pytest.approx(1.0519, abs=1e-4)


def test_one_perfect_guess_proves_nothing_at_95_percent():
    # one guess, right: q = 1 / (1 + e^-eps) < 0.05 only for eps < log(0.05 / 0.95) < 0: no epsilon >= 0 is rejected
    assert -math.log(0.05 ** -1.0 - 1.0) < 0
    assert epsilon_lower_bound(10, 1, 1) == perfect_guess_bound(1) == 0.0


def test_p_value_is_the_binomial_tail_without_delta():
    q = 1 / (1 + math.exp(-0.7))
    assert p_value(500, 40, 30, 0.7) == pytest.approx(st.binom.sf(29, 40, q), rel=1e-12)
    assert p_value(500, 40, 0, 0.7) == 1.0  # at least 0 correct: certain


def test_p_value_delta_term_is_the_papers():
    # Theorem 3.1: + 2 m delta max_i (f(v - i) - f(v)) / i, f the binomial tail, written out term by term
    m, r, v, eps, delta = 300, 60, 45, 1.0, 1e-4
    q = 1 / (1 + math.exp(-eps))
    f = [st.binom.sf(x - 1, r, q) for x in range(v + 1)]
    alpha = max((f[v - i] - f[v]) / i for i in range(1, v + 1))
    assert p_value(m, r, v, eps, delta) == pytest.approx(f[v] + 2 * m * delta * alpha, rel=1e-9)


def test_delta_loosens_the_bound():
    tight, loose = epsilon_lower_bound(1000, 100, 90), epsilon_lower_bound(1000, 100, 90, delta=1e-4)
    assert 0 < loose < tight


def test_bound_is_the_largest_rejected_epsilon():
    eps = epsilon_lower_bound(1000, 100, 80)
    assert p_value(1000, 100, 80, eps) < 0.05 <= p_value(1000, 100, 80, eps + 1e-6)


def test_bound_is_monotone_in_the_correct_count():
    bounds = [epsilon_lower_bound(1000, 100, v) for v in range(101)]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(bounds))
    assert bounds[50] == 0.0 and bounds[100] == pytest.approx(perfect_guess_bound(100))
    assert bounds[70] > 0  # 70 of 100 rejects randomized response at eps = 0 (coin flips)


def test_random_guesses_give_zero_in_at_least_95_percent_of_seeds():
    # scores independent of the inclusion: the bound is a false positive with probability <= 5%, grid included
    zeros_grid = zeros_one_k = 0
    seeds = 400
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        included, scores = rng.random(200) < 0.5, rng.normal(size=200)
        zeros_grid += one_run_audit(scores, included).epsilon_lower_bound == 0
        zeros_one_k += one_run_audit(scores, included, ks=(50,)).epsilon_lower_bound == 0
    assert zeros_grid >= 0.95 * seeds
    assert zeros_one_k >= 0.95 * seeds


def test_guesses_top_k_in_bottom_k_out():
    guesses = guesses_from_scores(np.array([0.3, 2.0, -1.0, 0.5, -3.0, 0.0]), 2)
    assert guesses.tolist() == [0, 1, -1, 1, -1, 0]
    with pytest.raises(ValueError, match="2k = 8 guesses on 6 scored canaries"):
        guesses_from_scores(np.zeros(6), 4)
    # a canary the signal cannot score is never guessed
    assert guesses_from_scores(np.array([np.nan, 1.0, np.nan, -1.0, 0.0]), 1).tolist() == [0, 1, 0, -1, 0]
    with pytest.raises(ValueError, match="2k = 4 guesses on 3 scored canaries"):
        guesses_from_scores(np.array([np.nan, 1.0, np.nan, -1.0, 0.0]), 2)


def test_grid_search_is_tested_at_the_union_bound():
    rng = np.random.default_rng(0)
    included = rng.random(400) < 0.5
    scores = included + rng.normal(scale=0.8, size=400)  # a real but imperfect signal
    audit = one_run_audit(scores, included)
    grid = default_k_grid(400)
    assert [g.k for g in audit.per_k] == list(grid) == [8, 20, 40, 80, 120, 200]
    assert audit.level_per_k == pytest.approx(0.05 / len(grid))
    best = max(audit.per_k, key=lambda g: g.epsilon)
    assert (audit.k, audit.guesses, audit.correct) == (best.k, 2 * best.k, best.correct)
    assert audit.epsilon_lower_bound == pytest.approx(
        epsilon_lower_bound(400, best.guesses, best.correct, beta=0.05 / len(grid)))
    # the same k alone, tested at 5%, gives a larger bound: the grid costs confidence, honestly paid
    alone = one_run_audit(scores, included, ks=(best.k,))
    assert alone.epsilon_lower_bound > audit.epsilon_lower_bound > 0


def test_on_a_tie_the_most_guesses_are_reported():
    rng = np.random.default_rng(3)
    included, scores = rng.random(200) < 0.5, rng.normal(size=200)
    audit = one_run_audit(scores, included)
    assert audit.epsilon_lower_bound == 0 and audit.k == 100 and audit.guesses == 200
    assert audit.correct == int(np.sum(guesses_from_scores(scores, 100) == np.where(included, 1, -1)))


def test_perfect_scores_reach_the_closed_form_at_the_grids_level():
    included = np.arange(100) % 2 == 0
    audit = one_run_audit(included.astype(float), included, ks=(50,))
    assert audit.correct == audit.guesses == 100
    assert audit.epsilon_lower_bound == pytest.approx(perfect_guess_bound(100), abs=1e-9)


def test_unscored_canaries_count_in_m_but_are_never_guessed():
    included = np.arange(40) % 2 == 0
    scores = np.where(np.arange(40) < 20, included.astype(float), np.nan)  # half the canaries unscored
    audit = one_run_audit(scores, included)
    assert audit.m == 40 and [g.k for g in audit.per_k] == list(default_k_grid(20))
    assert audit.correct == audit.guesses == 20  # the 20 scored canaries, all guessed right


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"0 <= correct \(5\) <= guesses \(4\)"):
        p_value(10, 4, 5, 1.0)
    with pytest.raises(ValueError, match="same length"):
        one_run_audit([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="beta must be in"):
        epsilon_lower_bound(10, 4, 4, beta=0.0)
