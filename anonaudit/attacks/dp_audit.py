"""Privacy auditing in one training run (Steinke, Nasr, Jagielski 2023): an empirical lower bound on
the epsilon of a trained target's training, checked against the epsilon the target claims.

The attack trains the target's method once more (white-box capability ``retrain``: the target's
public parameters, its DP settings included, trained with its recipe) on its own training images
plus ``m`` canaries, each included independently with probability 1/2. The canaries are evaluated
images the target never trained on. The retrained model scores every canary with the membership
signal of the white-box protocol (:func:`~anonaudit.anonymizers.whitebox.membership_signal`: the critic,
or minus the log reconstruction error, standardised per model; higher = more likely IN). It guesses
IN for the ``k`` highest scores and OUT for the ``k`` lowest, abstains on the rest, and turns the
number of correct guesses into the largest epsilon that the training's (epsilon, delta)-DP
hypothesis is rejected at, with 95% confidence (:mod:`anonaudit.metrics.dp_audit`: Theorem 3.1 of
the paper, ``k`` from a small grid under a union bound). ``delta`` is the target's ``dp_delta``
when it claims DP, else 0.

Metrics (an epsilon, not a rate: no chance baseline and no risk):

- ``epsilon_lower_bound``: the bound, with the one-sided 95% confidence interval ``[bound, inf)`` of
  the training's epsilon;
- ``epsilon_lower_bound_minus_claimed``: the bound minus the target's claimed ``dp_epsilon``, with
  ``[difference, inf)``. Above 0, the audit contradicts the claim (the policy criterion
  ``dp-claim``); without a claim it is not measured (n=0, with the reason), so the criterion is
  NOT TESTED.

What the bound means: with probability at least 95% over the canaries' inclusion and the training's
randomness, the audited training is not (epsilon, delta)-DP for any epsilon below the bound. A bound
above the claim therefore shows an error in the implementation or in the privacy analysis. A bound at
or below the claim does not prove the claim: one run, one signal, a few hundred canaries. The audited
run is the retrained copy, not the target's own training: the bound speaks for the method, its
settings and its code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..anonymizers.whitebox import SIGNALS, capabilities, default_signal, membership_signal
from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..measurement import Measurement
from ..metrics.dp_audit import OneRunAudit, guesses_from_scores, one_run_audit
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate
from .base import Attack, AttackResult

#: Fewest canaries an audit runs with: 8 guessed perfectly prove at most epsilon 0.79 at 95% (0.40 over the
#: default grid of guess counts).
MIN_CANARIES = 8
METHOD = ("one-run privacy audit (Steinke, Nasr, Jagielski 2023, Theorem 3.1): largest epsilon rejected by the "
          "correct guesses on random canaries; one-sided interval [bound, inf) at the audit's confidence, the number "
          "of guesses chosen from a grid under a union bound")


def _join(first: ImageSet, second: ImageSet, name: str) -> ImageSet:
    """The images of ``first`` then ``second`` in one set (keys must differ)."""
    return ImageSet(first.records + second.records, [first[i] for i in range(len(first))]
                    + [second[i] for i in range(len(second))], name=name)


@ATTACKS.register("dp_audit")
class OneRunDPAudit(Attack):
    """Retrain the target once with random canaries; the epsilon its guesses prove, against the claim."""

    criteria = ("inference",)
    attacker_holds = ("training_recipe", "training_candidates", "white_box")
    attacker_trains = "the target's method once more, on its training images plus random canaries"
    param_alternatives = {"signal": ("reconstruction",), "k": ([2, 4],)}
    test_params = {"n_canaries": 16}

    def __init__(self, n_canaries: int = 256, signal: str | None = None, k: list[int] | None = None,
                 confidence: float = 0.95, seed: int = 0):
        check_range(self, "n_canaries", n_canaries, ge=MIN_CANARIES, integer=True)
        if signal is not None and signal not in SIGNALS:
            raise ConfigError(f"dp_audit: signal must be None (the target's) or one of {sorted(SIGNALS)}, got "
                              f"{signal!r}")
        if k is not None and (not isinstance(k, (list, tuple)) or not k
                              or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in k)):
            raise ConfigError(f"dp_audit: k must be None (the default grid) or a list of integers >= 1, got {k!r}")
        check_range(self, "confidence", confidence, gt=0, lt=1)
        check_range(self, "seed", seed, integer=True)
        self.n_canaries = n_canaries
        self.signal = signal
        self.k = k
        self.confidence = confidence
        self.seed = seed

    @property
    def needs(self) -> tuple[str, ...]:
        """The target object, its training keys, ``retrain`` and, when named, the signal's capability."""
        return ("anonymizer", "training_keys", "retrain", *((SIGNALS[self.signal],) if self.signal else ()))

    def not_applicable(self, release: Release) -> str:
        """Also not applicable to a retrainable method that offers no membership signal at all."""
        if reason := super().not_applicable(release):
            return reason
        target = release.anonymizer
        have = capabilities(target) if target is not None and target.applies_to_new_images else None
        if self.signal is None and have is not None and "retrain" in have and not set(SIGNALS.values()) & have:
            return (f"not applicable: target {target.label()} provides neither a critic nor a reconstruction "
                    "(needs: critic or reconstruct)")
        return ""

    def fit(self, auxiliary: ImageSet | None = None) -> OneRunDPAudit:
        self.auxiliary_ = auxiliary
        return self

    # -- the run --------------------------------------------------------------------------------
    def _training_images(self, release: Release) -> ImageSet:
        """The target's training images, found among the auxiliary images or the originals."""
        trained = set(release.training_keys or ())
        for pool in (getattr(self, "auxiliary_", None), release.originals):
            if pool is not None and (idx := [i for i, key in enumerate(pool.keys) if key in trained]):
                return pool.subset(idx)
        raise DataError(f"attack '{self.name}': none of the target's {len(trained)} training images is among the "
                        "auxiliary images or the originals (a checkpoint trained elsewhere: audit it with its "
                        "training data as auxiliary data)")

    def _canaries(self, release: Release, training: ImageSet, rng: np.random.Generator,
                  claimed: bool) -> tuple[ImageSet, list[str]]:
        """``(canaries, notes)``: up to ``n_canaries`` evaluated images the target did not train on, drawn by
        ``rng``. Against a DP claim, only images that are one training example each (the claim's privacy
        unit: a region GAN counts each plate or face) may be canaries: a canary of several examples would
        test group privacy, which the claim does not bound."""
        used = set(training.keys)
        pool = [i for i, key in enumerate(release.originals.keys) if key not in used]
        notes = []
        count = getattr(release.anonymizer, "dp_examples", None)
        if claimed and callable(count):
            single = [i for i in pool if count(release.originals.subset([i])) == 1]
            if len(single) < len(pool):
                notes.append(f"{len(pool) - len(single)} of {len(pool)} candidate canaries left out: not one "
                             "training example each (the DP claim's privacy unit)")
            pool = single
        if len(pool) < MIN_CANARIES:
            raise DataError(f"attack '{self.name}': {len(pool)} evaluated images outside the training set can be "
                            f"canaries; at least {MIN_CANARIES} are needed")
        pick = sorted(rng.choice(pool, min(len(pool), int(self.n_canaries)), replace=False).tolist())
        return release.originals.subset(pick, name="dp_audit canaries"), notes

    def run(self, release: Release) -> AttackResult:
        target = release.anonymizer
        if target is None or "retrain" not in capabilities(target):
            raise DataError(f"attack '{self.name}' needs a target that can be retrained (white-box capability "
                            "retrain)")
        signal = self.signal or default_signal(target)
        claim = getattr(target, "dp_epsilon", None)
        rng = np.random.default_rng(int(self.seed))
        training = self._training_images(release)
        canaries, canary_notes = self._canaries(release, training, rng, claim is not None)
        included = rng.random(len(canaries)) < 0.5  # drawn before training, independently per canary
        data = _join(training, canaries.subset(np.flatnonzero(included).tolist()), "dp_audit training set")
        audited = target.retrained(data, int(self.seed))
        scores = membership_signal(audited, canaries, signal)
        delta = float(getattr(target, "dp_delta", 0.0)) if claim is not None else 0.0
        audit = one_run_audit(scores, included, self.k, float(self.confidence), delta)
        spent = (getattr(audited, "privacy_", None) or {}).get("epsilon_spent")
        extra = {"canaries": audit.m, "included": int(included.sum()), "scored": int(np.isfinite(scores).sum()),
                 "k": audit.k, "guesses": audit.guesses, "correct": audit.correct,
                 "k_grid": ",".join(str(g.k) for g in audit.per_k), "level_per_k": audit.level_per_k,
                 "confidence": audit.confidence, "delta": delta, "signal": signal,
                 "claimed_epsilon": "none" if claim is None else float(claim),
                 **({} if spent is None else {"epsilon_spent_by_the_audited_run": float(spent)})}
        metrics = claim_measurements(audit, claim, extra, self.name)
        notes = [(f"retrained {target.name} on its {len(training)} training images and {int(included.sum())} of "
                  f"{len(canaries)} canaries (each in with probability 1/2); {signal} signal; {audit.correct} of "
                  f"{audit.guesses} guesses correct at k = {audit.k} (grid {extra['k_grid']}, each at level "
                  f"{audit.level_per_k:.3g}); epsilon >= {audit.epsilon_lower_bound:.3g} at {audit.confidence:.0%} "
                  f"(delta {delta:g})" + ("" if claim is None else f"; claimed epsilon {float(claim):g}")),
                 *canary_notes]
        details = pd.DataFrame({"key": canaries.keys, "included": included, "score": scores,
                                "guess": guesses_from_scores(scores, audit.k)})
        return AttackResult(self.name, metrics, details, notes)


def claim_measurements(audit: OneRunAudit, claim: float | None, extra: dict[str, Any],
                       name: str = "dp_audit") -> list[Measurement]:
    """The attack's two measurements of ``audit`` (see the module doc): ``epsilon_lower_bound`` and
    ``epsilon_lower_bound_minus_claimed`` (not measured when ``claim`` is None), each with its one-sided
    95% interval ``[value, inf)`` and no chance baseline; ``extra`` goes into both estimates."""
    bound = audit.epsilon_lower_bound
    lower = Measurement(
        "epsilon_lower_bound", Estimate(bound, bound, math.inf, audit.m, METHOD, extra=dict(extra)), None,
        float("nan"), f"{name}: epsilon of the target's training proved at {audit.confidence:.0%} confidence by one "
        "retraining with random canaries (an epsilon, not a rate: no chance baseline)")
    if claim is None:
        excess = Estimate(float("nan"), n=0, method=METHOD, standard=False, extra=dict(extra),
                          reason="the target claims no epsilon (dp_epsilon is None): no claim to check the lower "
                                 "bound against")
    else:
        diff = bound - float(claim)
        excess = Estimate(diff, diff, math.inf, audit.m, METHOD, extra=dict(extra))
    minus = Measurement(
        "epsilon_lower_bound_minus_claimed", excess, None, float("nan"),
        f"{name}: epsilon lower bound minus the epsilon the target claims (above 0: the audit contradicts the claim)")
    return [lower, minus]
