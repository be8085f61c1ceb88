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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..models.faces.embedding import embed, make_embedder, typical_face
from ..registry import ATTACKS
from ..stats import Estimate, negatives_needed, proportion, unresolved_rate
from .base import Attack, AttackMetric, AttackResult, FileFinding
from .face_common import anonymized_auxiliary, check_disjoint, public_anonymizer

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


@dataclass
class Protocol:
    """One comparison of probes with a gallery: all its metrics and per-probe ranks."""

    rank: dict[int, Estimate]
    chance: dict[int, float]
    tar: Estimate
    auc: Estimate
    ranks: np.ndarray
    evaluated: np.ndarray


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
    return Protocol(rank_est, chance, tar, auc, ranks, evaluated)


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

    param_alternatives = {"embedder": ("pixels",), "gallery": ("other_images",), "projection": ("lda",)}

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
        seed: int = 0,
    ):
        if gallery not in GALLERIES:
            raise ConfigError(f"reid: gallery must be one of {GALLERIES}, got {gallery!r}")
        if projection not in PROJECTIONS:
            raise ConfigError(f"reid: projection must be one of {PROJECTIONS}, got {projection!r}")
        if not 0.0 < float(far) < 1.0:
            raise ConfigError(f"reid: far must be in (0, 1), got {far!r}")
        self.embedder = embedder
        self.gallery = gallery
        self.parrot = parrot
        self.projection = projection
        self.far = far
        self.impostors_per_probe = impostors_per_probe
        self.fallback = fallback
        self.n_boot = n_boot
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
        return out
