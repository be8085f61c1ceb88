"""Re-identification: can an intruder tell who is in an anonymized face image?

Probes are the anonymized images, the gallery is the intruder's collection of identified photos,
and similarity is the cosine of face embeddings (``embedder``, default dlib's ResNet, offline).

Gallery protocols (``gallery``):

- ``"originals"``: the gallery holds the evaluation originals themselves, so every probe's own
  source photo is in it (the intruder found the published photo's source, e.g. on social media).
- ``"other_images"``: for each probe, the gallery is every original *except* the probe's own, so a
  probe can only be matched through other photos of the same person. Probes whose person has no
  other photo are left out of the rates (counted in the notes) but stay in the gallery of others.

The attack on the originals (the upper bound) always uses ``"other_images"``: with the probe's own
photo in the gallery an unprotected image would match itself trivially. Under ``gallery="originals"``
a weak anonymizer can therefore score above the "original" value; the risk is then clipped to 1.

Metrics (higher = more successful attack), each on the release and on the originals:

- ``rank1``, ``rank5``: identification rate: the probe's identity is among the top k identities
  ranked by their best-matching gallery image (ties broken at random, seeded). Wilson 95% CI over
  probes; chance is ``min(k, N) / N`` for ``N`` gallery identities.
- ``tar@far=0.001``: verification true-accept rate at the threshold where at most 0.1% of impostor
  pairs are accepted; chance is the FAR.
- ``roc_auc``: ROC AUC of genuine (same person) vs impostor probe-gallery similarities; chance 0.5.
  Up to ``impostors_per_probe`` impostor pairs per probe are drawn at random (seeded); both
  verification CIs are percentile bootstraps over probes (pairs of one probe are not independent).
- ``1-eer``: one minus the equal error rate of verification (the EER is where the false-accept and
  the false-reject rate are equal on the ROC curve, linear between thresholds; 0.5 at chance), with
  a percentile-bootstrap CI over probes (``parrot_1-eer`` likewise). Reported only where the sample
  resolves it: at an EER ``e`` the sample needs >= ``1/e`` genuine and >= ``1/e`` impostor pairs (at
  least one error of each kind); otherwise NaN with the pairs it needs
  (:func:`~anonaudit.stats.unresolved_rate`).
- ``dir@far=F`` (open-set identification, ``open_set_far=F``): the intruder does not know whether a
  probe's person is in the gallery at all, so it rejects a probe whose best match score is not
  above a threshold, set on its own identity-disjoint auxiliary images: they are searches of people
  who are not in the gallery (anonymized as the release is, see below), and the threshold accepts at
  most a share ``F`` of them. The detection-and-identification rate (DIR) is the share of probes
  ranked first *and* accepted (Wilson 95% CI over probes, the threshold taken as fixed). It needs
  >= ``1/F`` auxiliary images (:func:`~anonaudit.stats.negatives_needed`), else it is NaN with the
  number needed. Chance: ``F`` times the rank-1 chance (a probe carrying nothing is accepted like a
  non-mated search and ranked first by luck). The auxiliary searches of the release are the
  auxiliary images anonymized with the attacker's anonymizer (:mod:`anonaudit.attacks.replay`: the
  target object, the public method or the declared operator), or the release's own files of them;
  those of the originals (upper bound) are the clear auxiliary images.

Where the embedder's detector finds no face (strong blur, pixelation, masks), the image is embedded
at the typical face position of the intruder's own images (``fallback=True``, see
:mod:`~anonaudit.models.faces.embedding`); images that still have no embedding score 0 against every
gallery image, i.e. they are ranked as random guesses.

``parrot=True`` adds the parrot attacker: it re-applies the release's public anonymizer (from the
registry, with the release's parameters) to the gallery and compares anonymized probes with
anonymized gallery images (``parrot_*`` metrics). With ``projection="lda"`` each attacker first
learns a linear discriminant projection on the auxiliary (identity-disjoint) images, the direct one
on the originals, the parrot one on auxiliary images anonymized by the same method (a
Fisherface-style adaptation to the anonymized domain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..models.faces.embedding import embed, make_embedder, typical_face
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate, negatives_needed, proportion, unresolved_rate
from .base import Attack, AttackerModel, AttackMetric, AttackResult, FileFinding
from .face_common import anonymized_auxiliary, check_disjoint, public_anonymizer
from .replay import attacker_anonymizer

GALLERIES = ("originals", "other_images")
PROJECTIONS = ("none", "lda")


# -- metrics on a similarity matrix ----------------------------------------------------------------
def identity_scores(sim: np.ndarray, gallery_ids: list[str]) -> tuple[np.ndarray, list[str]]:
    """``(P, K)`` best similarity of each probe to each of the ``K`` gallery identities (max over its images).

    ``-inf`` entries of ``sim`` are excluded gallery images; an identity with none left scores ``-inf``.
    """
    ids = np.asarray(gallery_ids, dtype=object)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    scores = np.maximum.reduceat(sim[:, order], starts, axis=1)
    return scores, [str(i) for i in sorted_ids[starts]]


def reid_findings(
    keys: Sequence[str], ids: Sequence[str], protocol: Protocol, prefix: str, who: str
) -> list[FileFinding]:
    """One ``reidentified`` finding per probe ranked first (its rank-k metrics); the identity is the
    finding's example (shown only with ``--embed-examples``)."""
    n_ids = len(set(ids))
    metrics = tuple(f"{prefix}rank{k}" for k in sorted(protocol.rank))
    return [
        FileFinding(
            key,
            "reidentified",
            f"rank 1 of {n_ids} identities, {who} (identity withheld; rerun with --embed-examples)",
            metrics,
            example=f"rank 1 of {n_ids} identities, {who}: {identity}",
        )
        for key, identity, rank in zip(keys, ids, protocol.ranks)
        if rank == 1
    ]


def identification_ranks(
    sim: np.ndarray, probe_ids: list[str], gallery_ids: list[str], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """1-based rank of each probe's true identity among gallery identities, and ``N`` per probe.

    Identities are ranked by their best similarity; ties are broken uniformly at random (seeded), so
    a probe with no information is ranked like a random guess. Rank 0 means the probe's identity has
    no image in its gallery.
    """
    scores, ids = identity_scores(sim, gallery_ids)
    col = {k: j for j, k in enumerate(ids)}
    available = np.isfinite(scores)
    n_ids = available.sum(axis=1)
    rng = np.random.default_rng(seed)
    ranks = np.zeros(len(probe_ids), dtype=int)
    for p, pid in enumerate(probe_ids):
        j = col.get(pid)
        if j is None or not available[p, j]:
            continue
        t = scores[p, j]
        greater = int((scores[p] > t).sum())
        ties = int((scores[p] == t).sum()) - 1
        ranks[p] = 1 + greater + int(rng.integers(0, ties + 1))
    return ranks, n_ids


@dataclass
class Pairs:
    """Probe-gallery pairs for verification: similarity, genuine flag and the probe they belong to."""

    scores: np.ndarray
    genuine: np.ndarray
    probe: np.ndarray


def verification_pairs(
    sim: np.ndarray, probe_ids: list[str], gallery_ids: list[str], impostors_per_probe: int | None = None, seed: int = 0
) -> Pairs:
    """Every genuine pair and up to ``impostors_per_probe`` random impostor pairs per probe.

    ``-inf`` entries of ``sim`` (excluded gallery images) are not pairs.
    """
    rng = np.random.default_rng(seed)
    g = np.asarray(gallery_ids, dtype=object)
    scores, genuine, probe = [], [], []
    for p, pid in enumerate(probe_ids):
        allowed = np.isfinite(sim[p])
        same = allowed & (g == pid)
        other = np.flatnonzero(allowed & (g != pid))
        if impostors_per_probe is not None and len(other) > impostors_per_probe:
            other = np.sort(rng.choice(other, size=impostors_per_probe, replace=False))
        gen = np.flatnonzero(same)
        scores += [sim[p, gen], sim[p, other]]
        genuine += [np.ones(len(gen), bool), np.zeros(len(other), bool)]
        probe += [np.full(len(gen) + len(other), p)]
    if not scores:
        return Pairs(np.zeros(0), np.zeros(0, bool), np.zeros(0, int))
    return Pairs(np.concatenate(scores).astype(np.float64), np.concatenate(genuine), np.concatenate(probe))


class _Grouped:
    """Pairs grouped by equal score (ascending), as sparse ``group x probe`` count matrices for the
    genuine and the impostor pairs, so AUC and TAR for many probe weightings (bootstrap resamples)
    are a few matrix products and cumulative sums."""

    def __init__(self, pairs: Pairs):
        from scipy.sparse import csr_matrix

        order = np.argsort(pairs.scores, kind="stable")
        s, gen, probe = pairs.scores[order], pairs.genuine[order], pairs.probe[order]
        group = np.cumsum(np.r_[False, s[1:] != s[:-1]]) if len(s) else np.zeros(0, int)
        shape = (int(group[-1]) + 1 if len(s) else 0, int(probe.max(initial=-1)) + 1)
        ones = np.ones(len(s))
        self.gen = csr_matrix((ones[gen], (group[gen], probe[gen])), shape=shape)
        self.imp = csr_matrix((ones[~gen], (group[~gen], probe[~gen])), shape=shape)

    def stats(self, weights: np.ndarray, far: float) -> tuple[np.ndarray, np.ndarray]:
        """``(TAR at FAR, AUC)`` for each column of ``weights`` (``n_probes x k``, pair weight = its probe's)."""
        gen = np.asfortranarray(self.gen @ weights)  # column-contiguous: cumulative sums run down columns
        imp = np.asfortranarray(self.imp @ weights)
        wg, wi = gen.sum(axis=0), imp.sum(axis=0)
        cum_imp = np.cumsum(imp, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (gen * (cum_imp - 0.5 * imp)).sum(axis=0) / (wg * wi)
            # Lowest threshold group whose impostor weight strictly above it is at most far * total.
            j = np.argmax(wi[None, :] - cum_imp <= far * wi[None, :] * (1 + 1e-12), axis=0)
            tar = (wg - np.cumsum(gen, axis=0)[j, np.arange(gen.shape[1])]) / wg
        bad = (wg <= 0) | (wi <= 0)
        auc[bad], tar[bad] = np.nan, np.nan
        return tar, auc


def _unit_weights(pairs: Pairs) -> np.ndarray:
    w = np.zeros((int(pairs.probe.max(initial=-1)) + 1, 1))
    w[np.unique(pairs.probe), 0] = 1.0
    return w


def roc_auc(pairs: Pairs) -> float:
    """ROC AUC of genuine vs impostor scores (ties count one half), as ``sklearn.metrics.roc_auc_score``."""
    return float(_Grouped(pairs).stats(_unit_weights(pairs), 0.5)[1][0])


def tar_at_far(pairs: Pairs, far: float) -> float:
    """Share of genuine pairs scoring above the lowest threshold that accepts at most ``far`` of impostors."""
    return float(_Grouped(pairs).stats(_unit_weights(pairs), far)[0][0])


def verification_estimates(
    pairs: Pairs, far: float, n_boot: int = 200, seed: int = 0, chunk: int = 16
) -> tuple[Estimate, Estimate]:
    """``(TAR@FAR, AUC)`` with percentile-bootstrap 95% CIs resampling probes."""
    probes = np.unique(pairs.probe)
    n_gen = int(pairs.genuine.sum())
    if n_gen == 0 or n_gen == len(pairs.scores):
        nan = Estimate(float("nan"), n=n_gen, method="no genuine or no impostor pairs")
        return nan, nan
    grouped = _Grouped(pairs)
    tar, auc = (float(v[0]) for v in grouped.stats(_unit_weights(pairs), far))
    rng = np.random.default_rng(seed)
    size = int(pairs.probe.max()) + 1
    boots_t, boots_a = [], []
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        draws = rng.choice(probes, size=(k, len(probes)))
        w = np.stack([np.bincount(d, minlength=size) for d in draws], axis=1).astype(float)
        t, a = grouped.stats(w, far)
        boots_t.append(t)
        boots_a.append(a)
    bt, ba = np.concatenate(boots_t), np.concatenate(boots_a)
    lo_t, hi_t = np.nanpercentile(bt, [2.5, 97.5])
    lo_a, hi_a = np.nanpercentile(ba, [2.5, 97.5])
    n_imp = len(pairs.scores) - n_gen
    need = negatives_needed(far)
    extra = {"genuine_pairs": n_gen, "impostor_pairs": n_imp, "probes": len(probes), "impostor_pairs_needed": need}
    method = (
        f"{{}}; {n_gen} genuine / {n_imp} impostor pairs of {len(probes)} probes; bootstrap over probes "
        f"({n_boot}), 95% CI"
    )
    auc_estimate = Estimate(auc, float(lo_a), float(hi_a), n_gen, method.format("ROC AUC"), extra=extra)
    if n_imp < need:  # the threshold would admit no impostor: TAR at a FAR of 0, not the one named
        return unresolved_rate(f"TAR at FAR={far:g}", "impostor pairs", n_imp, need, extra), auc_estimate
    return Estimate(
        tar, float(lo_t), float(hi_t), n_gen, method.format(f"TAR at FAR={far:g}"), extra=extra
    ), auc_estimate


# -- equal error rate and open-set identification ----------------------------------------------
def _eer_columns(grouped: _Grouped, weights: np.ndarray) -> np.ndarray:
    """EER for each column of ``weights``: where the false-accept and the false-reject rate are equal
    on the ROC curve, its vertices being the thresholds "accept scores >= a group's value" (and
    "accept none"), linear between them (a tie is split at random, as the AUC counts ties one half)."""
    gen = np.asarray(grouped.gen @ weights)
    imp = np.asarray(grouped.imp @ weights)
    wg, wi = gen.sum(axis=0), imp.sum(axis=0)
    zero = np.zeros((1, gen.shape[1]))
    below_gen = np.vstack([zero, np.cumsum(gen, axis=0)])  # genuine weight below threshold j (j = 0..G)
    above_imp = wi[None, :] - np.vstack([zero, np.cumsum(imp, axis=0)])
    with np.errstate(invalid="ignore", divide="ignore"):
        frr, far = below_gen / wg, above_imp / wi
        gap = far - frr  # 1 at "accept all", -1 at "accept none", falling in between
        cols = np.arange(gap.shape[1])
        j = np.maximum(np.argmax(gap <= 0, axis=0), 1)  # the first vertex at or past the crossing
        g0, g1 = gap[j - 1, cols], gap[j, cols]
        t = np.where(g0 - g1 > 0, g0 / (g0 - g1), 1.0)
        eer = far[j - 1, cols] + t * (far[j, cols] - far[j - 1, cols])
    eer[(wg <= 0) | (wi <= 0)] = np.nan
    return eer


def equal_error_rate(pairs: Pairs) -> float:
    """The EER of genuine vs impostor scores (see :func:`_eer_columns`)."""
    return float(_eer_columns(_Grouped(pairs), _unit_weights(pairs))[0])


def eer_estimate(pairs: Pairs, n_boot: int = 200, seed: int = 0) -> Estimate:
    """``1 - EER`` with a percentile-bootstrap 95% CI over probes, or the unresolved estimate when the
    sample holds fewer than ``1/EER`` genuine or impostor pairs."""
    n_gen = int(pairs.genuine.sum())
    n_imp = len(pairs.scores) - n_gen
    if n_gen == 0 or n_imp == 0:
        return Estimate(float("nan"), n=n_gen, method="no genuine or no impostor pairs")
    grouped = _Grouped(pairs)
    eer = float(_eer_columns(grouped, _unit_weights(pairs))[0])
    have = min(n_gen, n_imp)
    extra = {"genuine_pairs": n_gen, "impostor_pairs": n_imp, "eer": eer}
    if eer <= 0 or have < negatives_needed(eer):
        need = negatives_needed(eer) if eer > 0 else have + 1
        return unresolved_rate("1 - EER", "genuine and as many impostor pairs", have, need, extra,
                               unit=f"EER {eer:.4g}: fewer errors than one of each kind")
    probes = np.unique(pairs.probe)
    rng = np.random.default_rng(seed)
    size = int(pairs.probe.max()) + 1
    draws = rng.choice(probes, size=(int(n_boot), len(probes)))
    w = np.stack([np.bincount(d, minlength=size) for d in draws], axis=1).astype(float)
    boots = 1.0 - _eer_columns(grouped, w)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if n_boot else (float("nan"), float("nan"))
    method = (f"1 - EER of verification; {n_gen} genuine / {n_imp} impostor pairs of {len(probes)} probes; "
              f"bootstrap over probes ({n_boot}), 95% CI")
    return Estimate(1.0 - eer, float(lo), float(hi), n_gen, method, extra=extra)


def open_set_threshold(nonmated_best: np.ndarray, far: float) -> float:
    """The score a probe's best match must exceed to be accepted, so that at most a share ``far`` of
    the non-mated searches' best scores ``nonmated_best`` exceed it (ties at it are rejected)."""
    s = np.sort(np.asarray(nonmated_best, dtype=float))[::-1]
    allowed = int(np.floor(far * len(s) + 1e-9))
    return float(s[allowed]) if allowed < len(s) else float("-inf")


def best_scores(probes: np.ndarray, gallery: np.ndarray, exclude_own: bool = False) -> np.ndarray:
    """Each probe's best cosine similarity to the gallery (``exclude_own``: not to gallery image i)."""
    sim = cosine(probes, gallery)
    if exclude_own:
        np.fill_diagonal(sim, -np.inf)
    return sim.max(axis=1) if sim.shape[1] else np.full(len(sim), -np.inf)


def dir_estimate(on: Protocol, best: np.ndarray, nonmated_best: np.ndarray | None, far: float, why: str = ""
                 ) -> Estimate:
    """Open-set detection-and-identification rate at ``far``: share of evaluated probes ranked first
    whose best score exceeds the threshold set on the non-mated searches (Wilson 95% CI)."""
    name = f"DIR at FAR={far:g}"
    if nonmated_best is None:
        return Estimate(float("nan"), n=0, method=name, standard=False, reason=f"{name}: {why}")
    need = negatives_needed(far)
    if len(nonmated_best) < need:
        return unresolved_rate(name, "non-mated searches", len(nonmated_best), need, unit="auxiliary images")
    threshold = open_set_threshold(nonmated_best, far)
    hit = (on.ranks == 1) & (best > threshold)
    accepted_nm = float(np.mean(nonmated_best > threshold))
    estimate = proportion(hit[on.evaluated], f"{name} (open-set identification rate over probes), Wilson 95% CI, "
                                             "threshold set on the auxiliary images taken as fixed")
    return dataclasses.replace(estimate, extra={"threshold": round(threshold, 6), "nonmated": len(nonmated_best),
                                                "nonmated_accepted": round(accepted_nm, 6)})


@dataclass
class Protocol:
    """One comparison of probes with a gallery: all its metrics and per-probe ranks."""

    rank: dict[int, Estimate]
    chance: dict[int, float]
    tar: Estimate
    auc: Estimate
    ranks: np.ndarray
    evaluated: np.ndarray
    eer: Estimate
    best: np.ndarray


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix of L2-normalised rows; rows without an embedding (NaN) score 0."""
    return np.nan_to_num(a, nan=0.0) @ np.nan_to_num(b, nan=0.0).T


def compare(
    probes: np.ndarray,
    gallery: np.ndarray,
    ids: list[str],
    exclude_own: bool,
    far: float,
    impostors_per_probe: int | None,
    n_boot: int,
    seed: int,
    ranks_at: tuple[int, ...] = (1, 5),
) -> Protocol:
    """Probe ``i`` and gallery image ``i`` are photos of ``ids[i]``; ``exclude_own`` drops the pair (i, i)."""
    sim = cosine(probes, gallery)
    if exclude_own:
        np.fill_diagonal(sim, -np.inf)
    ranks, n_ids = identification_ranks(sim, ids, ids, seed)
    evaluated = ranks > 0
    rank_est, chance = {}, {}
    for k in ranks_at:
        rank_est[k] = proportion(ranks[evaluated] <= k, f"rank-{k} identification rate over probes, Wilson 95% CI")
        chance[k] = (
            float(np.mean(np.minimum(k, n_ids[evaluated]) / n_ids[evaluated])) if evaluated.any() else float("nan")
        )
    keep = np.flatnonzero(evaluated)
    pairs = verification_pairs(sim[keep], [ids[i] for i in keep], ids, impostors_per_probe, seed)
    pairs.probe = keep[pairs.probe] if len(pairs.probe) else pairs.probe
    tar, auc = verification_estimates(pairs, far, n_boot, seed)
    eer = eer_estimate(pairs, n_boot, seed)
    best = sim.max(axis=1) if sim.shape[1] else np.full(len(sim), -np.inf)
    return Protocol(rank_est, chance, tar, auc, ranks, evaluated, eer, best)


def fit_lda(vectors: np.ndarray, identities: list[str]):
    """A shrinkage LDA on identities with >= 2 images, or None when there are too few."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    ok = np.all(np.isfinite(vectors), axis=1)
    ids = np.asarray(identities, dtype=object)
    counts = pd.Series(ids[ok]).value_counts()
    keep = ok & np.isin(ids, counts[counts >= 2].index.to_numpy())
    if len(np.unique(ids[keep])) < 3:
        return None
    return LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(vectors[keep], ids[keep])


def project(lda, vectors: np.ndarray) -> np.ndarray:
    """LDA projection of L2-normalised rows, re-normalised; NaN rows stay NaN."""
    if lda is None:
        return vectors
    ok = np.all(np.isfinite(vectors), axis=1)
    z = lda.transform(np.nan_to_num(vectors, nan=0.0))
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    z[~ok] = np.nan
    return z.astype(np.float32)


@ATTACKS.register("reid")
class ReIdentification(Attack):
    """Re-identification of anonymized faces against a gallery of identified originals."""

    requires = ("identity",)
    criteria = ("singling_out", "linkability")
    attacker_holds = ("release", "gallery_originals", "face_model")

    def intruder(self) -> AttackerModel:
        """The gallery it holds (``gallery``); the method too with the parrot gallery and with the open
        set (its threshold is set on auxiliary images anonymized by the method); auxiliary images and a
        trained projection with ``projection="lda"``."""
        model = super().intruder()
        gallery = "gallery_originals" if self.gallery == "originals" else "gallery_other"
        holds = tuple(gallery if h == "gallery_originals" else h for h in model.holds)
        holds += ("method",) if self.parrot or self.open_set_far is not None else ()
        holds += ("auxiliary",) if self.open_set_far is not None and self.projection != "lda" else ()
        if self.projection == "lda":
            return replace(model, holds=holds + ("auxiliary",),
                           trains="a linear discriminant projection of the embeddings on its auxiliary faces")
        return replace(model, holds=holds)

    param_alternatives = {"embedder": ("pixels",), "gallery": ("other_images",), "projection": ("lda",)}
    folder_audit = {"faces": {"embedder": "dlib", "gallery": "other_images", "parrot": True}}

    def __init__(
        self,
        embedder: str | dict = "dlib",
        gallery: str = "originals",
        parrot: bool = False,
        projection: str = "none",
        far: float = 1e-3,
        impostors_per_probe: int = 500,
        fallback: bool = True,
        n_boot: int = 200,
        open_set_far: float | None = 0.01,
        seed: int = 0,
    ):
        if gallery not in GALLERIES:
            raise ConfigError(f"reid: gallery must be one of {GALLERIES}, got {gallery!r}")
        if projection not in PROJECTIONS:
            raise ConfigError(f"reid: projection must be one of {PROJECTIONS}, got {projection!r}")
        check_range(self, "far", far, gt=0, lt=1)
        check_range(self, "open_set_far", open_set_far, gt=0, lt=1, optional=True)
        self.embedder = embedder
        self.gallery = gallery
        self.parrot = parrot
        self.projection = projection
        self.far = far
        self.impostors_per_probe = impostors_per_probe
        self.fallback = fallback
        self.n_boot = n_boot
        self.open_set_far = open_set_far
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> ReIdentification:
        """Keep the intruder's auxiliary images: the typical face position for the fallback crop is
        estimated on them, and ``projection="lda"`` is fitted on their identities."""
        if self.projection == "lda" and (auxiliary is None or not auxiliary.has_labels("identity")):
            raise DataError("reid with projection='lda' needs identity-labelled auxiliary images to fit on")
        self.auxiliary_: ImageSet | None = auxiliary
        return self

    def _embed(self, model, images: ImageSet, reference: ImageSet, desc: str):
        face = None
        if self.fallback and hasattr(model, "detector") and getattr(model, "detector", None):
            face = typical_face(model.detector, reference, getattr(model, "select", "largest"))
        return embed(model, images, face, desc)

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        aux_set = getattr(self, "auxiliary_", None)  # run without fit: an intruder with no images of their own
        if aux_set is not None:
            check_disjoint(aux_set, release, self.name)
        elif self.projection == "lda":
            raise DataError("reid with projection='lda' was not fitted: call fit(auxiliary) first")
        model = make_embedder(self.embedder)
        ids = [str(i) for i in release.originals.identities]
        notes: list[str] = []
        reference = aux_set if aux_set is not None else release.originals  # the intruder's own images
        gal = self._embed(model, release.originals, reference, "embed originals")
        prb = self._embed(model, release.anonymized, reference, "embed release")
        g_vec, p_vec = gal.vectors, prb.vectors
        lda = None
        if self.projection == "lda":
            aux = self._embed(model, aux_set, aux_set, "embed auxiliary")
            lda = fit_lda(aux.vectors, [str(i) for i in aux_set.identities])
            g_vec, p_vec = project(lda, g_vec), project(lda, p_vec)
        kw = {
            "far": float(self.far),
            "impostors_per_probe": self.impostors_per_probe,
            "n_boot": int(self.n_boot),
            "seed": int(self.seed),
        }
        direct = compare(p_vec, g_vec, ids, self.gallery == "other_images", **kw)
        original = compare(g_vec, g_vec, ids, True, **kw)
        notes.append(
            f"gallery={self.gallery}: {int(direct.evaluated.sum())} of {len(ids)} probes ranked against "
            f"{len(set(ids))} gallery identities; originals (upper bound) under other_images: "
            f"{int(original.evaluated.sum())} probes with another photo of the same person"
        )
        notes.append(
            f"embedder {model.name}: {int(prb.fallback.sum())} release and {int(gal.fallback.sum())} original images "
            f"had no detected face and were embedded at the typical face position; {int(prb.missing.sum())} release "
            f"images have no embedding (scored as random guesses)"
        )
        metrics = self._metrics(direct, original, "")
        if self.open_set_far is not None:
            metrics.append(self._open_set(model, release, aux_set, g_vec, direct, original, lda, notes))
        details = pd.DataFrame({
            "key": release.keys, "identity": ids, "rank": direct.ranks, "rank_original": original.ranks,
            "fallback_crop": prb.fallback, "no_embedding": prb.missing,
        })
        findings = reid_findings(release.keys, ids, direct, "", "direct attacker (original gallery)")
        if self.parrot:
            anonymizer, why = public_anonymizer(release)
            if anonymizer is None:
                notes.append(f"parrot attacker skipped: {why}")
            else:
                parrot = self._parrot(model, anonymizer, release, reference, prb.vectors, ids, kw, notes)
                metrics += self._metrics(parrot, original, "parrot_")
                details["rank_parrot"] = parrot.ranks
                findings += reid_findings(release.keys, ids, parrot, "parrot_", "parrot attacker (anonymized gallery)")
        return AttackResult(self.name, metrics, details, notes, findings)

    def _nonmated(self, model, images: ImageSet, aux_set: ImageSet, gallery: np.ndarray, lda) -> np.ndarray:
        """Best gallery score of each auxiliary image (a search of a person not in the gallery)."""
        vectors = self._embed(model, images, aux_set, "embed auxiliary searches").vectors
        return best_scores(project(lda, vectors) if lda is not None else vectors, gallery)

    def _open_set(self, model, release: Release, aux_set: ImageSet | None, gallery: np.ndarray, direct: Protocol,
                  original: Protocol, lda, notes: list[str]) -> AttackMetric:
        """The ``dir@far`` metric: thresholds set on the auxiliary images, anonymized for the release."""
        far = float(self.open_set_far)
        name = f"dir@far={far:g}"
        chance = far * direct.chance[1]
        if aux_set is None:
            why = "no auxiliary images to set the threshold on (the attack was not fitted)"
            return AttackMetric(name, dir_estimate(direct, direct.best, None, far, why), None, chance,
                                "open-set identification")
        anonymizer, how = attacker_anonymizer(release)
        searches = anonymizer.anonymize(aux_set, show_progress=False) if anonymizer is not None else None
        if searches is None:
            searches, how = anonymized_auxiliary(release, aux_set)
        nonmated = None if searches is None else self._nonmated(model, searches, aux_set, gallery, lda)
        on_release = dir_estimate(direct, direct.best, nonmated, far, f"no anonymized auxiliary searches: {how}")
        on_originals = dir_estimate(original, original.best, self._nonmated(model, aux_set, aux_set, gallery, lda),
                                    far)
        notes.append(f"open set: threshold at FAR={far:g} set on {len(aux_set)} auxiliary images (identity-disjoint), "
                     f"anonymized with {how}" if searches is not None else f"open set on the release skipped: {how}")
        return AttackMetric(name, on_release, on_originals, chance,
                            f"open-set identification rate at FAR={far:g}: probes ranked first and above the threshold "
                            "set on the auxiliary images, direct attacker")

    def _parrot(
        self,
        model,
        anonymizer,
        release: Release,
        reference: ImageSet,
        probes: np.ndarray,
        ids: list[str],
        kw: dict,
        notes: list[str],
    ) -> Protocol:
        gallery_anon = anonymizer.anonymize(release.originals, show_progress=False)
        gal = self._embed(model, gallery_anon, reference, "embed anonymized gallery")
        g_vec = gal.vectors
        if self.projection == "lda":
            aux_anon, how = anonymized_auxiliary(release, self.auxiliary_)
            if aux_anon is None:
                raise DataError(f"reid: the parrot projection has no anonymized auxiliary images: {how}")
            aux = self._embed(model, aux_anon, self.auxiliary_, "embed anonymized auxiliary")
            lda = fit_lda(aux.vectors, [str(i) for i in aux_anon.identities])
            g_vec, probes = project(lda, g_vec), project(lda, probes)
            notes.append(f"parrot projection: LDA fitted on {how}")
        same = sum(np.array_equal(a, b) for a, b in zip(gallery_anon, release.anonymized))
        notes.append(
            f"parrot attacker re-applied {anonymizer.label()} to the gallery; {same} of {len(release)} re-anonymized "
            "originals are pixel-identical to their released version"
        )
        return compare(probes, g_vec, ids, self.gallery == "other_images", **kw)

    def _metrics(self, on: Protocol, original: Protocol, prefix: str) -> list[AttackMetric]:
        who = "parrot attacker (anonymized gallery)" if prefix else "direct attacker (original gallery)"
        out = [
            AttackMetric(
                f"{prefix}rank{k}", on.rank[k], original.rank[k], on.chance[k], f"rank-{k} identification, {who}"
            )
            for k in sorted(on.rank)
        ]
        out.append(
            AttackMetric(
                f"{prefix}tar@far={self.far:g}",
                on.tar,
                original.tar,
                float(self.far),
                f"verification TAR at FAR={self.far:g}, {who}",
            )
        )
        out.append(AttackMetric(f"{prefix}roc_auc", on.auc, original.auc, 0.5, f"verification ROC AUC, {who}"))
        out.append(AttackMetric(f"{prefix}1-eer", on.eer, original.eer, 0.5,
                                f"one minus the equal error rate of verification, {who}"))
        return out
