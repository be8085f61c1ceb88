"""Audit of a per-image differential-privacy claim by a distinguishing test between neighbouring images.

A target that claims that releasing one image is ``(epsilon, delta)``-DP for images differing in at most
``m`` pixel values provides the white-box capability ``image_dp`` (:mod:`~anonaudit.anonymizers.whitebox`):
``image_dp_claim(record, shape)`` (e.g. ``dp_pix``; see :class:`~anonaudit.anonymizers.dp_pix.ImageDPClaim`)
and a ``seed`` parameter that picks its noise. For any other target the audit runner records the attack
as not applicable.
The attack (as in Jagielski, Ullman, Oprea 2020 and Nasr et al. 2021):

1. builds two neighbouring images from the first evaluated original with a protected region: ``x`` with
   ``m`` pixel values of the region (from its top-left corner, raster order, channel by channel) set to
   0, ``x'`` with the same values set to 255; nothing else differs;
2. releases each ``n_trials`` times with fresh noise (a copy of the target, its ``seed`` set per trial);
3. scores each release with the Laplace likelihood-ratio statistic
   ``sum_v |y_v - c_v| - |y_v - c'_v|`` over the values where the centres differ, ``c`` and ``c'`` the
   per-value medians of a calibration half of the releases of ``x`` and ``x'`` (the noise-free release
   when the noise is symmetric), kept where they differ by more than 4 standard errors (so values whose
   medians differ by chance add no noise): for DP-Pix this is the optimal test's statistic;
4. picks, on the calibration half, the threshold whose bound is highest, and counts on the other half the
   false positives (a release of ``x`` called ``x'``) and false negatives at that threshold;
5. with Clopper-Pearson upper bounds ``FPR_hi``, ``FNR_hi`` (each one-sided at 97.5%, so that both hold
   with 95% confidence), reports the lower bound
   ``epsilon_lb = max(log((1 - delta - FPR_hi) / FNR_hi), log((1 - delta - FNR_hi) / FPR_hi), 0)``
   (``epsilon_lower_bound``) and ``epsilon_lb`` minus the claimed epsilon
   (``epsilon_lower_bound_minus_claimed``, judged by the policy criterion ``dp-claim``), each with its
   one-sided interval ``[value, inf)`` and no chance baseline (an epsilon, not a rate).

An ``(epsilon, delta)``-DP mechanism makes every test satisfy ``FPR + e^epsilon FNR >= 1 - delta``, so
``epsilon_lb`` exceeds the true epsilon with probability at most 5%: a bound above the claimed epsilon
contradicts the claim. A bound at or below it does not prove the claim (one pair, one test).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from ..anonymizers.whitebox import require
from ..data.imageset import Box, Release
from ..errors import DataError
from ..measurement import Measurement
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate
from .base import Attack, AttackResult

#: Confidence of each of the two one-sided Clopper-Pearson bounds (both hold with 95% confidence).
ONE_SIDED_LEVEL = 0.975
METHOD = ("distinguishing test between neighbouring images (likelihood ratio, threshold from a calibration half): "
          "Clopper-Pearson bounds on FPR and FNR, one-sided 95% interval [bound, inf)")
#: Standard errors by which two medians must differ for a value to enter the test statistic.
SIGNIFICANT = 4.0


def clopper_pearson_upper(errors: int, n: int, level: float = ONE_SIDED_LEVEL) -> float:
    """One-sided Clopper-Pearson upper bound on a rate from ``errors`` of ``n`` trials."""
    if n <= 0:
        raise DataError("clopper_pearson_upper: no trials")
    return 1.0 if errors >= n else float(_st.beta.ppf(level, errors + 1, n - errors))


def epsilon_bound(fpr: float, fnr: float, delta: float = 0.0) -> float:
    """``max(log((1 - delta - fpr) / fnr), log((1 - delta - fnr) / fpr), 0)``: the epsilon a test with these
    error rates (or upper bounds on them) proves."""
    best = 0.0
    for a, b in ((fpr, fnr), (fnr, fpr)):
        if 1.0 - delta - a > 0.0:
            best = max(best, math.inf if b <= 0.0 else math.log((1.0 - delta - a) / b))
    return best


def error_counts(scores_x: np.ndarray, scores_x2: np.ndarray, threshold: float) -> tuple[int, int]:
    """``(false positives, false negatives)`` of the test "``x'`` when the score exceeds ``threshold``"."""
    return int(np.sum(scores_x > threshold)), int(np.sum(scores_x2 <= threshold))


def best_threshold(scores_x: np.ndarray, scores_x2: np.ndarray, delta: float) -> float:
    """The threshold whose Clopper-Pearson epsilon bound is highest on these (calibration) scores."""
    candidates = np.unique(np.r_[scores_x, scores_x2])
    best, best_t = -1.0, float(candidates[0]) if len(candidates) else 0.0
    for t in candidates:
        fp, fn = error_counts(scores_x, scores_x2, float(t))
        fpr_hi, fnr_hi = clopper_pearson_upper(fp, len(scores_x)), clopper_pearson_upper(fn, len(scores_x2))
        bound = epsilon_bound(fpr_hi, fnr_hi, delta)
        if bound > best:
            best, best_t = bound, float(t)
    return best_t


def differing_values(a: np.ndarray, b: np.ndarray, centre: np.ndarray, centre2: np.ndarray) -> np.ndarray:
    """Mask of the values whose medians ``centre`` (of releases ``a``) and ``centre2`` (of ``b``) differ by more
    than ``SIGNIFICANT`` standard errors (from each value's median absolute deviation): the values the
    neighbours' noise-free releases differ in, without the ones whose medians differ by chance."""
    spread = 1.4826 * (np.median(np.abs(a - centre), axis=0) ** 2 / len(a)
                       + np.median(np.abs(b - centre2), axis=0) ** 2 / len(b)) ** 0.5
    return np.abs(centre - centre2) > SIGNIFICANT * math.sqrt(math.pi / 2) * spread


def likelihood_ratio_scores(calibration_x: np.ndarray, calibration_x2: np.ndarray,
                            releases: list[np.ndarray]) -> list[np.ndarray]:
    """The Laplace likelihood-ratio statistic ``sum_v |y_v - c_v| - |y_v - c'_v|`` (higher: more like ``x'``) of
    every release in each array of ``releases``, with the centres ``c``, ``c'`` the per-value medians of the
    calibration releases of ``x`` and ``x'``, over the values where they differ (:func:`differing_values`)."""
    centre, centre2 = np.median(calibration_x, axis=0), np.median(calibration_x2, axis=0)
    differ = differing_values(calibration_x, calibration_x2, centre, centre2)
    c, c2 = centre[differ], centre2[differ]
    return [(np.abs(r[:, differ] - c) - np.abs(r[:, differ] - c2)).sum(axis=1) for r in releases]


def neighbours(image: np.ndarray, region: Box, m: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(x, x', changed)``: ``image`` with the first ``m`` values of ``region`` (raster order, channel by
    channel) set to 0 in ``x`` and 255 in ``x'``; ``changed`` is how many values that is (``m`` or the
    region's size, when smaller)."""
    ys, xs = region.slices
    x, x2 = image.copy(), image.copy()
    crop_x, crop_x2 = x[ys, xs].reshape(-1), x2[ys, xs].reshape(-1)
    changed = min(int(m), crop_x.size)
    crop_x[:changed], crop_x2[:changed] = 0, 255
    x[ys, xs] = crop_x.reshape(x[ys, xs].shape)
    x2[ys, xs] = crop_x2.reshape(x2[ys, xs].shape)
    return x, x2, changed


def distinguishing_measurements(bound: float, claimed: float, n: int, changed: int, extra: dict) -> list[Measurement]:
    """``epsilon_lower_bound`` and ``epsilon_lower_bound_minus_claimed`` (the policy criterion ``dp-claim``:
    above 0 the audit contradicts the claim), each with its one-sided 95% interval ``[value, inf)`` and no
    chance baseline (an epsilon, not a rate)."""
    what = f"telling apart releases of two images differing in {changed} pixel values"
    return [
        Measurement("epsilon_lower_bound", Estimate(bound, bound, math.inf, n, METHOD, extra=dict(extra)), None,
                    math.nan, f"dp_distinguish: epsilon proved at 95% confidence by {what} (claimed {claimed:g})"),
        Measurement("epsilon_lower_bound_minus_claimed",
                    Estimate(bound - claimed, bound - claimed, math.inf, n, METHOD, extra=dict(extra)), None, math.nan,
                    "dp_distinguish: epsilon lower bound minus the epsilon the target claims per image (above 0: the "
                    "audit contradicts the claim)"),
    ]


@ATTACKS.register("dp_distinguish")
class DPDistinguish(Attack):
    """Distinguishing test between two neighbouring images: an empirical lower bound on a per-image DP
    epsilon, at 95% confidence (``epsilon_lower_bound``); not applicable to targets that claim none."""

    criteria = ("inference",)
    attacker_holds = ("method",)
    needs = ("anonymizer", "image_dp")
    test_params = {"n_trials": 40}

    def __init__(self, n_trials: int = 2000, seed: int = 0):
        check_range(self, "n_trials", n_trials, ge=4, integer=True)
        check_range(self, "seed", seed, ge=0, integer=True)
        self.n_trials = n_trials
        self.seed = seed

    def _releases(self, target: Any, image: np.ndarray, record: Any, seeds: np.ndarray) -> np.ndarray:
        """``(len(seeds), H, W, 3)`` releases of ``image``, one per noise seed, as float."""
        mechanism = copy.copy(target)  # set_params on the copy leaves the release's target as it is
        out = []
        for s in seeds:
            mechanism.set_params(seed=int(s))
            out.append(mechanism.anonymize_image(image, record))
        return np.stack(out).astype(np.float64)

    def run(self, release: Release) -> AttackResult:
        target = release.anonymizer
        require(target, "image_dp", "attack 'dp_distinguish'")
        for i in range(len(release)):
            image, record = release.originals[i], release.originals.record(i)
            claim = target.image_dp_claim(record, image.shape)
            if claim.regions:
                break
        else:
            raise DataError(f"attack 'dp_distinguish': no evaluated image of {release.name} has a protected region")
        x, x2, changed = neighbours(image, claim.regions[0], claim.m)
        n = int(self.n_trials)
        seeds = np.random.default_rng(int(self.seed)).choice(2**62, size=4 * n, replace=False)
        # seeds: calibration x, calibration x', evaluation x, evaluation x' (n // 2 or n - n // 2 each)
        half = n // 2
        sides = [self._releases(target, im, record, s) for im, s in
                 ((x, seeds[:half]), (x2, seeds[n:n + half]), (x, seeds[2 * n:3 * n - half]),
                  (x2, seeds[3 * n:4 * n - half]))]
        cal_x, cal_x2, ev_x, ev_x2 = likelihood_ratio_scores(sides[0], sides[1], sides)
        threshold = best_threshold(cal_x, cal_x2, claim.delta)
        fp, fn = error_counts(ev_x, ev_x2, threshold)
        fpr_hi, fnr_hi = clopper_pearson_upper(fp, len(ev_x)), clopper_pearson_upper(fn, len(ev_x2))
        bound = epsilon_bound(fpr_hi, fnr_hi, claim.delta)
        extra = {"claimed_epsilon": claim.epsilon, "claimed_delta": claim.delta, "m": changed,
                 "fpr": fp / len(ev_x), "fnr": fn / len(ev_x2), "fpr_hi": fpr_hi, "fnr_hi": fnr_hi,
                 "n_trials": n, "image": record.key}
        metrics = distinguishing_measurements(bound, claim.epsilon, 2 * len(ev_x), changed, extra)
        notes = [(f"neighbours from {record.key}: {changed} pixel values of {claim.regions[0]} set to 0 vs 255; "
                  f"{n} releases of each, half to calibrate the test; FPR {fp}/{len(ev_x)}, FNR {fn}/{len(ev_x2)}")]
        details = pd.DataFrame({"image": ["x"] * len(ev_x) + ["x_prime"] * len(ev_x2), "score": np.r_[ev_x, ev_x2]})
        return AttackResult(self.name, metrics, details, notes)
