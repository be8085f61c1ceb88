"""Membership inference on trained anonymizers: was this image (or this person) in the training set?

Every attack here reads the target only through the white-box protocol
(:mod:`anonaudit.anonymizers.whitebox`) and declares what it needs in ``needs``: the target object and
its training keys, plus ``critic``, ``reconstruct`` or ``retrain`` where it reads them. The audit runner
checks them first ("not applicable: target X provides no critic (needs: ...)"); called directly on
a release that lacks them, an attack raises :class:`~anonaudit.errors.DataError` with the reason.

**Candidates.** Members are training images (found among the auxiliary images given to ``fit`` or
the release's originals); non-members are release originals that are not training images and, when
the images carry identities, whose person is not a training person (disjoint data). Both sides are
sampled to the same size (at most ``max_per_side``, by ``seed``).

**Scores** (higher = more likely a member), one attack each:

- ``membership_dcr``: distance to the closest record, GAN-Leaks style (full black box): minus the
  distance of a candidate to the nearest output of the target, i.e. the released images (a
  candidate's own anonymized image excluded) and, for generators, ``n_samples`` regions drawn from
  the generator. ``space="pixels"``: mean absolute grey distance of the regions (boxes; the whole
  image without boxes) at ``size``; ``space="embedding"``: cosine distance of face embeddings
  (``embedder`` from the EMBEDDERS registry, e.g. dlib; faces its detector misses are embedded at
  the typical face position of the intruder's images).
- ``membership_critic``: the GAN's critic / discriminator output on the candidate's regions
  (white box, LOGAN style): a critic that over-fits scores its training images higher.
- ``membership_reconstruction``: minus the reconstruction error of autoencoder targets (AIA's
  encoder/decoder, MIKU's autoencoder or PCA mapper): training images are reconstructed better.
- ``membership_lira``: the likelihood-ratio attack (Carlini et al. 2022) on the critic or
  reconstruction signal, normalised per model (:func:`~anonaudit.anonymizers.whitebox.membership_signal`:
  each model's raw score, the critic's output or minus the log reconstruction error, standardised by
  that model's own mean and standard deviation over all the candidates). ``n_shadow`` shadow models
  (``retrain``: the target's public parameters, trained exactly as the target was, in the same number
  of optimisation steps) are trained on halves of the candidates drawn in complementary pairs, half of
  the members and half of the non-members each, so every candidate is IN exactly ``n_shadow / 2``
  shadows and OUT of as many; each shadow's set is topped up with other images of the attacker's
  (auxiliary images and originals that are not candidates) to the target's training-set size.
  Online: ``log N(s; mu_in, sd_in) - log N(s; mu_out, sd_out)`` of the target's signal ``s``; offline
  (OUT only, one-sided): ``(s - mu_out) / sd_out``. Per-candidate means, one pooled standard deviation
  per side (the paper's choice for few shadows).

A candidate the signal cannot score (e.g. no region to crop) is left out of the metrics and listed in
the notes and the details (``scored`` false); no score is ever imputed.

**Metrics** (the LiRA reporting convention): ``roc_auc`` (percentile bootstrap 95% CI resampling
members and non-members separately) and ``tpr@fpr=0.001`` / ``tpr@fpr=0.01`` (true-positive rate at the
threshold that admits at most that share of non-members). TPR at FPR x is reported only when the
non-members resolve it, i.e. with at least ``ceil(1/x)`` of them (1000 and 100), so that the threshold may
admit one; below that the row is not measured (value nan, n=0, not standard; it says how many are
needed) and a policy criterion on it is NOT TESTED. A reported TPR gives the FPR achieved
(``fpr_achieved``) and a CI reflecting both counts (:func:`tpr_estimate`). Baselines: the chance attacker (AUC 0.5, TPR
= FPR); there is no
"original" (the upper bound is a perfect attack, 1), so risks are absolute. When every candidate has an
identity, the same metrics per person (``identity_*``: mean score of the person's images).
``membership_lira`` reports the online variant under these names and the offline one as ``offline_*``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
import pandas as pd

from ..anonymizers.gan_base import to_uint8
from ..anonymizers.whitebox import SIGNALS, capabilities, membership_signal, require
from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..models.faces.embedding import embed, make_embedder, typical_face
from ..registry import ATTACKS
from ..stats import Estimate, negatives_needed, unresolved_rate, wilson_interval
from .attribute import auc_score
from .base import Attack, AttackMetric, AttackResult
from .memorization import plate_crops

FPRS = (0.001, 0.01)


# -- metrics --------------------------------------------------------------------------------------
def non_members_needed(fpr: float) -> int:
    """The sample-size rule for TPR at FPR ``fpr`` (:func:`~anonaudit.stats.negatives_needed`): at
    least ``ceil(1 / fpr)`` non-members."""
    return negatives_needed(fpr)


def tpr_fpr_at(y: np.ndarray, score: np.ndarray, fpr: float) -> tuple[float, float]:
    """``(TPR, FPR achieved)`` at the strictest threshold that admits at most ``fpr`` of the negatives
    (a score must exceed every negative score above the threshold; ties count as negatives)."""
    pos, neg = score[y == 1], np.sort(score[y == 0])[::-1]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan"), float("nan")
    allowed = int(np.floor(fpr * len(neg) + 1e-9))
    threshold = neg[allowed] if allowed < len(neg) else -np.inf
    return float(np.mean(pos > threshold)), float(np.mean(neg > threshold))


def tpr_at_fpr(y: np.ndarray, score: np.ndarray, fpr: float) -> float:
    """True-positive rate of :func:`tpr_fpr_at` (whatever the number of negatives: see :func:`tpr_estimate`)."""
    return tpr_fpr_at(y, score, fpr)[0]


def tpr_estimate(
    y: np.ndarray, score: np.ndarray, fpr: float, n_boot: int, seed: int, what: str = "images"
) -> Estimate:
    """TPR at ``fpr`` with its 95% CI, reported only where the non-members resolve ``fpr``
    (:func:`non_members_needed`); below that a NOT TESTED estimate (value nan, ``n=0``, not standard)
    whose reason gives the sample size needed.

    The CI reflects both counts: the hull of the Wilson interval of the members above the observed
    threshold (the members' binomial noise, which a bootstrap misses when every resample agrees, e.g.
    TPR 0 would give [0, 0]) and the percentile bootstrap interval resampling members and non-members
    separately (the threshold re-drawn from the resampled non-members: their noise). ``extra`` holds
    the FPR achieved and both counts.
    """
    members, non_members = int((y == 1).sum()), int((y == 0).sum())
    need = non_members_needed(fpr)
    counts = {"members": members, "non_members": non_members, "non_members_needed": need}
    if non_members < need:
        return unresolved_rate(f"TPR at {fpr:g} FPR", "non-members", non_members, need, counts, unit=what)
    tpr, achieved = tpr_fpr_at(y, score, fpr)
    w_lo, w_hi = wilson_interval(round(tpr * members), members)
    b_lo, b_hi = _stratified_ci(y, score, lambda a, b: tpr_at_fpr(a, b, fpr), n_boot, seed)
    lo, hi = float(np.nanmin([w_lo, b_lo])), float(np.nanmax([w_hi, b_hi]))
    method = (
        f"TPR at {fpr:g} FPR (FPR achieved {achieved:.3g} on {non_members} non-member {what}), 95% CI: hull of the "
        f"Wilson interval over {members} member {what} and a percentile bootstrap resampling members and non-members "
        "separately"
    )
    return Estimate(tpr, lo, hi, members + non_members, method, extra={**counts, "fpr_achieved": achieved})


def _stratified_ci(y: np.ndarray, score: np.ndarray, stat, n_boot: int, seed: int) -> tuple[float, float]:
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(int(n_boot)):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        draws.append(stat(y[idx], score[idx]))
    lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def membership_metrics(y: np.ndarray, score: np.ndarray, n_boot: int = 500, seed: int = 0, prefix: str = "",
                       what: str = "images") -> list[AttackMetric]:
    """ROC AUC (stratified bootstrap CI) and TPR at 0.1% and 1% FPR (:func:`tpr_estimate`: NOT TESTED where
    the non-members do not resolve the FPR) of ``score`` (higher = member)."""
    n = len(y)
    boot = f"percentile bootstrap 95% CI over {what} (members and non-members resampled separately)"
    lo, hi = _stratified_ci(y, score, auc_score, n_boot, seed)
    out = [
        AttackMetric(
            f"{prefix}roc_auc",
            Estimate(auc_score(y, score), lo, hi, n, f"ROC AUC, {boot}"),
            None,
            0.5,
            f"membership ROC AUC over {int(y.sum())} member and {int((1 - y).sum())} non-member {what} (chance 0.5)",
        )
    ]
    for fpr in FPRS:
        out.append(AttackMetric(
            f"{prefix}tpr@fpr={fpr:g}", tpr_estimate(y, score, fpr, n_boot, seed, what), None, fpr,
            f"members detected at a threshold admitting at most {fpr:g} of non-member {what} (chance: TPR = FPR; "
            f"reported with at least {non_members_needed(fpr)} non-members, {int((1 - y).sum())} here)",
        ))
    return out


def identity_scores(
    identities: list[str | None], y: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Per-person membership (mean score of the person's images); None unless every image has an identity."""
    if any(i in (None, "") for i in identities):
        return None
    people = sorted(set(identities))
    ids = np.asarray(identities, dtype=object)
    s = np.array([np.nanmean(score[ids == p]) for p in people])
    labels = np.array([int(y[ids == p].max()) for p in people])
    if labels.sum() < 2 or (1 - labels).sum() < 2:
        return None
    return labels, s, people


# -- candidates -----------------------------------------------------------------------------------
def membership_candidates(
    release: Release, auxiliary: ImageSet | None, max_per_side: int, seed: int, attack: str
) -> tuple[ImageSet, np.ndarray, list[str]]:
    """``(candidates, y, notes)``: balanced members (1, first) and disjoint non-members (0)."""
    if release.anonymizer is None or not release.training_keys:
        raise DataError(
            f"attack '{attack}' needs a trained target: the release carries no target object or training keys "
            "(classical and external targets have no training set to infer membership of)"
        )
    trained = set(release.training_keys)
    members = None
    for pool in (auxiliary, release.originals):
        if pool is not None:
            idx = [i for i, k in enumerate(pool.keys) if k in trained]
            if idx:
                members = pool.subset(idx)
                break
    if members is None:
        raise DataError(
            f"attack '{attack}': none of the target's {len(trained)} training images is among the auxiliary images "
            "or the originals (a checkpoint trained elsewhere: audit it with its training data as auxiliary data)"
        )
    member_people = {p for p in members.identities if p not in (None, "")}
    non = [
        i
        for i, r in enumerate(release.originals.records)
        if r.key not in trained and (r.identity in (None, "") or r.identity not in member_people)
    ]
    if not non:
        raise DataError(
            f"attack '{attack}': every evaluated image is a training image (or a training person's): no non-members"
        )
    rng = np.random.default_rng(seed)
    n = min(len(members), len(non), int(max_per_side))
    if n < 2:
        raise DataError(
            f"attack '{attack}': {len(members)} members and {len(non)} non-members; at least 2 of each are needed"
        )
    pick_m = sorted(rng.choice(len(members), n, replace=False).tolist())
    pick_n = sorted(rng.choice(non, n, replace=False).tolist())
    m, o = members.subset(pick_m), release.originals.subset(pick_n)
    candidates = ImageSet(
        m.records + o.records, [m[i] for i in range(n)] + [o[i] for i in range(n)], name="membership candidates"
    )
    notes = [
        (f"{n} members (of {len(members)} training images found) and {n} non-members (of {len(non)} disjoint "
        "release images)")
    ]
    return candidates, np.r_[np.ones(n, int), np.zeros(n, int)], notes


# -- the attacks ----------------------------------------------------------------------------------
class MembershipAttack(Attack):
    """Base: candidates, one score per candidate (:meth:`scores`), LiRA-convention metrics."""

    criteria = ("inference",)
    needs = ("anonymizer", "training_keys")
    attacker_holds: tuple[str, ...] = ("training_candidates", "black_box")

    max_per_side: int
    n_boot: int
    seed: int

    def fit(self, auxiliary: ImageSet | None = None) -> MembershipAttack:
        self.auxiliary_ = auxiliary
        return self

    def scores(self, release: Release, candidates: ImageSet, y: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
        """``({variant prefix: score per candidate}, notes)``; the main variant's prefix is ""."""
        raise NotImplementedError

    def run(self, release: Release) -> AttackResult:
        candidates, y, notes = membership_candidates(release, getattr(self, "auxiliary_", None), int(self.max_per_side),
                                                     int(self.seed), self.name)
        variants, more = self.scores(release, candidates, y)
        notes += more
        metrics, details = [], {"key": candidates.keys, "member": y}
        scored = np.logical_and.reduce([np.isfinite(score) for score in variants.values()])
        if not scored.all():
            unscored = [k for k, ok in zip(candidates.keys, scored) if not ok]
            notes.append(f"{len(unscored)} of {len(y)} candidates could not be scored and are left out (never "
                         f"imputed): {', '.join(unscored[:20])}{' ...' if len(unscored) > 20 else ''}")
        kept = np.flatnonzero(scored)
        if min(int(y[kept].sum()), int((1 - y[kept]).sum())) < 2:
            raise DataError(f"attack '{self.name}': {len(kept)} of {len(y)} candidates could be scored: fewer than 2 "
                            "members or non-members")
        identities = [candidates.identities[i] for i in kept]
        for prefix, score in variants.items():
            metrics += membership_metrics(y[kept], score[kept], int(self.n_boot), int(self.seed), prefix)
            people = identity_scores(identities, y[kept], score[kept])
            if people is not None:
                metrics += membership_metrics(
                    people[0], people[1], int(self.n_boot), int(self.seed), f"{prefix}identity_", "people"
                )
            details[f"{prefix}score"] = score
        details["scored"] = scored

        for m in metrics:
            m.description = f"{self.name}: {m.description}"
        return AttackResult(self.name, metrics, pd.DataFrame(details), notes)


def _grey_regions(images: ImageSet, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(grey crops (n_regions, h*w) in [0, 1], image index of each region)``."""
    _, grey, keys = plate_crops(images, size=size)
    where = {k: i for i, k in enumerate(images.keys)}
    return grey, np.array([where[k] for k in keys], dtype=int)


def _per_image(values: np.ndarray, owner: np.ndarray, n: int, reduce=np.min) -> np.ndarray:
    out = np.full(n, np.nan)
    for i in range(n):
        v = values[owner == i]
        if len(v):
            out[i] = reduce(v)
    return out


@ATTACKS.register("membership_dcr")
class DistanceToClosestRecord(MembershipAttack):
    """GAN-Leaks-style black box: candidates close to some output of the target are called members."""

    param_alternatives = {"embedder": ("pixels",)}

    def __init__(
        self,
        space: str = "pixels",
        embedder: str | dict = "dlib",
        n_samples: int = 256,
        size: tuple[int, int] | list[int] = (96, 32),
        max_per_side: int = 64,
        n_boot: int = 500,
        seed: int = 0,
    ):
        if space not in ("pixels", "embedding"):
            raise ConfigError(f"membership_dcr: space must be 'pixels' or 'embedding', got {space!r}")
        self.space = space
        self.embedder = embedder
        self.n_samples = n_samples
        self.size = size
        self.max_per_side = max_per_side
        self.n_boot = n_boot
        self.seed = seed

    def _generated(self, target: Any) -> np.ndarray | None:
        """``(n_samples, S, S, 3)`` uint8 regions drawn from a target that provides ``generate``, else None."""
        if "generate" not in capabilities(target) or int(self.n_samples) <= 0:
            return None
        import torch

        return to_uint8(target.generate(int(self.n_samples), torch.Generator().manual_seed(int(self.seed))))


    def scores(self, release: Release, candidates: ImageSet, y: np.ndarray):
        generated = self._generated(release.anonymizer)
        # the released pixels under the originals' records: their boxes locate the regions
        released = release.originals.with_images([release.anonymized[i] for i in range(len(release))])
        own = {k: i for i, k in enumerate(released.keys)}
        outputs_of = np.array([own.get(k, -1) for k in candidates.keys])  # a non-member's own anonymized image
        if self.space == "pixels":
            size = tuple(int(v) for v in self.size)
            cand, cand_owner = _grey_regions(candidates, size)
            rel, rel_owner = _grey_regions(released, size)
            refs = [rel]
            if generated is not None:
                refs.append(
                    np.stack(
                        [
                            cv2.cvtColor(cv2.resize(g, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
                            .astype(np.float32)
                            .ravel()
                            / 255.0
                            for g in generated
                        ]
                    )
                )
            ref = np.concatenate(refs)
            ref_owner = np.r_[rel_owner, np.full(len(ref) - len(rel), -1)]
            d = np.abs(cand[:, None, :] - ref[None, :, :]).mean(axis=2)
            d[ref_owner[None, :] == outputs_of[cand_owner][:, None]] = np.inf  # never compare with one's own release
            dist = _per_image(d.min(axis=1), cand_owner, len(candidates))
            space = f"mean absolute grey distance of the regions at {size[0]}x{size[1]}"
        else:
            model = make_embedder(self.embedder)
            reference = self.auxiliary_ if getattr(self, "auxiliary_", None) is not None else candidates
            face = typical_face(model.detector, reference) if getattr(model, "detector", None) else None
            cv_ = embed(model, candidates, face, "embed candidates").vectors
            ref = embed(model, released, face, "embed release").vectors
            ref_owner = np.arange(len(ref))
            if generated is not None:
                gen_set = ImageSet.from_arrays(list(generated), [f"generated-{i:05d}" for i in range(len(generated))])
                ref = np.concatenate([ref, embed(model, gen_set, None, "embed generated").vectors])
                ref_owner = np.r_[ref_owner, np.full(len(generated), -1)]
            ok = np.all(np.isfinite(ref), axis=1)
            ref, ref_owner = ref[ok], ref_owner[ok]
            d = 1.0 - cv_ @ ref.T
            d[ref_owner[None, :] == outputs_of[:, None]] = np.inf
            dist = d.min(axis=1) if len(ref) else np.full(len(candidates), np.nan)
            embedder = self.embedder if isinstance(self.embedder, str) else self.embedder.get("name")
            space = f"cosine distance of {embedder} embeddings"
        n_gen = 0 if generated is None else len(generated)
        notes = [f"DCR in {space} to {len(release)} released images (each candidate's own excluded)"
                 + (f" and {n_gen} regions drawn from the generator" if n_gen else "")]
        return {"": -dist}, notes


@ATTACKS.register("membership_critic")
class CriticScore(MembershipAttack):
    """LOGAN-style white box: the GAN critic's score of the candidate (training images score higher)."""

    needs = ("anonymizer", "training_keys", "critic")
    attacker_holds = ("training_candidates", "white_box")

    def __init__(self, max_per_side: int = 64, n_boot: int = 500, seed: int = 0):
        self.max_per_side = max_per_side
        self.n_boot = n_boot
        self.seed = seed

    def scores(self, release: Release, candidates: ImageSet, y: np.ndarray):
        require(release.anonymizer, "critic", self.name)
        return {"": release.anonymizer.critic_scores(candidates)}, [
            "white box: the target's critic / discriminator output"
        ]


@ATTACKS.register("membership_reconstruction")
class ReconstructionLoss(MembershipAttack):
    """White box on autoencoder targets: training images are reconstructed with a smaller error."""

    needs = ("anonymizer", "training_keys", "reconstruct")
    attacker_holds = ("training_candidates", "white_box")

    def __init__(self, max_per_side: int = 64, n_boot: int = 500, seed: int = 0):
        self.max_per_side = max_per_side
        self.n_boot = n_boot
        self.seed = seed

    def scores(self, release: Release, candidates: ImageSet, y: np.ndarray):
        require(release.anonymizer, "reconstruct", self.name)
        return {"": -release.anonymizer.reconstruction_errors(candidates)}, [
            "white box: minus the target's reconstruction error"
        ]


def balanced_assignment(y: np.ndarray, n_shadow: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_shadow, n)`` booleans, True where candidate j is IN shadow k's training set.

    Shadows come in complementary pairs: shadow ``2p`` holds a random half of the members and a random
    half of the non-members (``y`` 1 and 0), shadow ``2p + 1`` the other halves. So every candidate
    is IN exactly ``n_shadow / 2`` shadows and OUT of as many, and every shadow trains on as many
    images (within one per side). ``n_shadow`` must be even.
    """
    if n_shadow < 2 or n_shadow % 2:
        raise ConfigError(f"a balanced IN/OUT assignment needs an even number of shadows, got {n_shadow}")
    y = np.asarray(y)
    inside = np.zeros((n_shadow, len(y)), bool)
    for p in range(n_shadow // 2):
        for side in (1, 0):
            idx = np.flatnonzero(y == side)
            inside[2 * p, rng.permutation(idx)[: (len(idx) + p % 2) // 2]] = True
        inside[2 * p + 1] = ~inside[2 * p]
    return inside


def gaussian_fit(values: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-candidate means of ``values`` ``(n_shadow, n)`` over the shadows where ``inside`` is True (nan
    where none is finite) and one pooled standard deviation of the residuals (degrees of freedom: the
    entries less one per candidate mean)."""
    mask = inside & np.isfinite(values)
    counts = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(counts > 0, np.where(mask, values, 0.0).sum(axis=0) / counts, np.nan)
    resid = np.where(mask, values - np.nan_to_num(mu)[None, :], 0.0)
    dof = int(mask.sum()) - int((counts > 0).sum())
    sd = float(np.sqrt((resid**2).sum() / dof)) if dof > 0 else float("nan")
    return mu, max(sd, 1e-8) if np.isfinite(sd) else sd


def lira_scores(observed: np.ndarray, shadows: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(online, offline)`` LiRA scores (higher = member) of the target's per-model standardised signal
    ``observed`` ``(n,)`` given the shadows' ``(n_shadow, n)`` and their IN masks: online, the log
    likelihood ratio ``log N(s; mu_in, sd_in) - log N(s; mu_out, sd_out)``; offline, the one-sided
    ``(s - mu_out) / sd_out``. nan where the candidate's signal (or a side's mean) is not finite."""
    from scipy.stats import norm

    mu_in, sd_in = gaussian_fit(shadows, inside)
    mu_out, sd_out = gaussian_fit(shadows, ~inside)
    online = norm.logpdf(observed, mu_in, sd_in) - norm.logpdf(observed, mu_out, sd_out)
    return online, (observed - mu_out) / sd_out


@ATTACKS.register("membership_lira")
class LikelihoodRatio(MembershipAttack):
    """LiRA (Carlini et al. 2022) with shadow models trained as the target was (online and offline)."""

    attacker_holds = ("training_candidates", "white_box", "training_recipe")
    attacker_trains = "shadow copies of the target, trained as it was, with and without each candidate"

    def __init__(self, signal: str = "critic", n_shadow: int = 8, max_per_side: int = 32, n_boot: int = 500,
                 seed: int = 0):
        if signal not in SIGNALS:
            raise ConfigError(f"membership_lira: signal must be one of {sorted(SIGNALS)}, got {signal!r}")
        if isinstance(n_shadow, bool) or not isinstance(n_shadow, int) or n_shadow < 4 or n_shadow % 2:
            raise ConfigError(
                f"membership_lira: n_shadow must be an even integer >= 4 (every candidate IN and OUT of at least 2 "
                f"shadows), got {n_shadow!r}"
            )
        self.signal = signal
        self.n_shadow = n_shadow
        self.max_per_side = max_per_side
        self.n_boot = n_boot
        self.seed = seed

    @property
    def needs(self) -> tuple[str, ...]:
        """The target object, its training keys, shadows of it (``retrain``) and the signal's capability."""
        return ("anonymizer", "training_keys", "retrain", SIGNALS[self.signal])

    def scores(self, release: Release, candidates: ImageSet, y: np.ndarray):
        target = release.anonymizer
        for capability in self.needs[1:]:
            require(target, capability, self.name)
        observed = membership_signal(target, candidates, self.signal)
        rng = np.random.default_rng(int(self.seed))
        inside = balanced_assignment(y, int(self.n_shadow), rng)
        size = len(release.training_keys)  # each shadow trains on as many images as the target
        others = population(release, getattr(self, "auxiliary_", None), set(candidates.keys))
        shadows, sizes = [], []
        for k, mask in enumerate(inside):
            data = shadow_training_set(candidates.subset(np.flatnonzero(mask).tolist()), others, size, rng)
            sizes.append(len(data))
            shadows.append(membership_signal(target.retrained(data, int(self.seed) + 1 + k), candidates, self.signal))
        online, offline = lira_scores(observed, np.stack(shadows), inside)
        self.shadow_images_ = min(sizes)
        half = int(self.n_shadow) // 2
        note = (
            f"LiRA on the {self.signal} signal, standardised per model over the {len(y)} candidates: {self.n_shadow} "
            f"shadow {target.name} models, each the target's public parameters retrained exactly as the target was "
            f"(the same number of optimisation steps) on half of the candidates (half the members, half the "
            f"non-members) and other images up to the target's {size} training images "
            f"({min(sizes)}-{max(sizes)} each; {len(others)} other images available); every candidate IN {half} and "
            f"OUT of {half}; online (IN and OUT Gaussians) under the plain metric names, offline (OUT only) as "
            "offline_*"
        )
        return {"": online, "offline_": offline}, [note]

    def run(self, release: Release) -> AttackResult:
        """As every membership attack; each metric's estimate also carries the number of shadows and the
        size of their training sets."""
        result = super().run(release)
        for m in result.metrics:
            m.release = dataclasses.replace(
                m.release, extra={**m.release.extra, "n_shadow": int(self.n_shadow),
                                  "shadows_per_side": int(self.n_shadow) // 2,
                                  "shadow_training_images": int(self.shadow_images_)}
            )
        return result


def population(release: Release, auxiliary: ImageSet | None, exclude: set[str]) -> list[tuple[ImageSet, int]]:
    """The attacker's images that are not candidates (``exclude``): the auxiliary images, then the
    release's originals, each key once, as ``(set, index)`` (read only when drawn)."""
    seen, out = set(exclude), []
    for pool in (auxiliary, release.originals):
        if pool is None:
            continue
        for i, key in enumerate(pool.keys):
            if key not in seen:
                seen.add(key)
                out.append((pool, i))
    return out


def shadow_training_set(inside: ImageSet, others: list[tuple[ImageSet, int]], size: int,
                        rng: np.random.Generator) -> ImageSet:
    """A shadow's training images: its IN candidates ``inside`` and, drawn from ``others``, as many more as
    make ``size`` (the target's training set size; fewer when ``others`` runs short)."""
    extra = max(0, min(int(size) - len(inside), len(others)))
    drawn = [others[j] for j in sorted(rng.choice(len(others), extra, replace=False).tolist())] if extra else []
    records = inside.records + [pool.record(i) for pool, i in drawn]
    images = [inside[i] for i in range(len(inside))] + [pool[i] for pool, i in drawn]
    return ImageSet(records, images, name="LiRA shadow training set")
