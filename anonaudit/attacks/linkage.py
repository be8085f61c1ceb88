"""Linkage and singling out on a release: linkable surrogates, effective k, and the anonymeter framing.

- ``linkability`` (pair matching): can two anonymized images of the same person be linked to each
  other (surrogate identities that stay consistent across a person's photos)? Every pair of released
  images is scored by the cosine similarity of their face embeddings (``embedder``; faces the
  detector misses are embedded at the typical face position); genuine pairs share an identity.
  Metrics: ``pair_roc_auc`` (chance 0.5) and ``pair_tar@far=<far>`` (chance ``far``), bootstrap 95% CIs
  over probe images, the same on the originals as the upper bound (the re-identification attack's
  pair statistics, :mod:`anonaudit.attacks.reid`).
- ``k_anonymity`` (effective k): a k-anonymity release (MIKU, DIRECT) claims every released image is
  shared by at least K people. The equivalence classes an attacker can tell apart are the groups of
  identical released images (within ``tolerance`` grey levels of mean absolute difference on 32x32
  thumbnails; 0 = identical pixels). ``below_k``: share of released images in a class smaller than the
  claimed K (Wilson CI; originals: every distinct image is its own class); the effective k (smallest
  class) and the class sizes are in the details. ``rank1_reid``: rank-1 re-identification of each
  released image against a gallery of the originals (``embedder``, default standardised pixels),
  against the k-anonymity bound 1/K (``exceeds_k_bound`` in the details when the CI is above it);
  chance is one over the gallery's identities.
- ``anonymeter_linkability`` (the anonymeter framing, Giomi et al. 2023, for images): every image is
  split in two halves (``split``: top/bottom or left/right) standing for two pieces of knowledge an
  intruder holds about a person. The main attack links the halves of a TARGET image (an original that
  is in the release) when both halves have the same nearest released image; the same attack on
  CONTROL images (the intruder's own images, not in the release) measures what the release's general
  structure gives; the naive baseline picks released images at random (1/n). The control rate is the
  metric's baseline and the same attack through the originals (released unchanged) its upper bound,
  so the row's risk is ``(main - control) / (original - control)``; anonymeter's own
  ``(main - control) / (1 - control)`` is in the details (equal when the originals link every
  target). "The attacker guesses well" (control) is thus separated from "the release leaks"
  (main). Ties are broken at random (seeded).
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..models.faces.embedding import embed, make_embedder, typical_face
from ..params import check_range
from ..registry import ATTACKS
from ..stats import proportion
from .base import Attack, AttackMetric, AttackResult
from .reid import cosine, identification_ranks, verification_estimates, verification_pairs


def _embeddings(spec, images: ImageSet, reference: ImageSet | None, desc: str) -> np.ndarray:
    model = make_embedder(spec)
    face = typical_face(model.detector, reference or images) if getattr(model, "detector", None) else None
    return embed(model, images, face, desc).vectors


@ATTACKS.register("linkability")
class Linkability(Attack):
    """Pair matching on the release: are two anonymized images of the same person linkable?"""

    requires = ("identity",)
    criteria = ("linkability",)
    attacker_holds = ("release", "face_model")

    param_alternatives = {"embedder": ("pixels",)}

    def __init__(
        self,
        embedder: str | dict = "dlib",
        far: float = 0.01,
        impostors_per_probe: int = 500,
        n_boot: int = 200,
        seed: int = 0,
    ):
        check_range(self, "far", far, gt=0, lt=1)
        self.embedder = embedder
        self.far = far
        self.impostors_per_probe = impostors_per_probe
        self.n_boot = n_boot
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> Linkability:
        self.auxiliary_ = auxiliary  # where faces typically are, for the fallback crop
        return self

    def _pairs(self, images: ImageSet, ids: list[str], desc: str):
        vectors = _embeddings(self.embedder, images, getattr(self, "auxiliary_", None), desc)
        sim = cosine(vectors, vectors)
        np.fill_diagonal(sim, -np.inf)  # an image is not paired with itself
        pairs = verification_pairs(sim, ids, ids, int(self.impostors_per_probe), int(self.seed))
        return verification_estimates(pairs, float(self.far), int(self.n_boot), int(self.seed))

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        ids = [str(i) for i in release.originals.identities]
        if len(set(ids)) == len(ids):
            raise DataError(f"attack '{self.name}': no person has two images in the release: no pair to link")
        tar_r, auc_r = self._pairs(release.anonymized, ids, "embed release")
        tar_o, auc_o = self._pairs(release.originals, ids, "embed originals")
        what = "pairs of released images of the same person vs different people, cosine similarity of face embeddings"
        metrics = [
            AttackMetric("pair_roc_auc", auc_r, auc_o, 0.5, f"linkability ROC AUC: {what}"),
            AttackMetric(f"pair_tar@far={self.far:g}", tar_r, tar_o, float(self.far),
                         f"same-person pairs linked at {self.far:g} false links: {what}"),
        ]
        notes = [(f"{auc_r.extra.get('genuine_pairs', 0)} same-person and {auc_r.extra.get('impostor_pairs', 0)} "
                 f"different-person pairs among {len(release)} released images of {len(set(ids))} people")]
        return AttackResult(self.name, metrics, pd.DataFrame({"key": release.keys, "identity": ids}), notes)


def thumbnails(images: ImageSet, size: int = 32) -> np.ndarray:
    """``(n, size*size)`` float32 grey thumbnails in grey levels (0-255)."""
    return np.stack([cv2.resize(cv2.cvtColor(images[i], cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA)
                     .astype(np.float32).ravel() for i in range(len(images))])


def equivalence_classes(images: ImageSet, tolerance: float = 0.0) -> np.ndarray:
    """Class label of each image: identical pixels (``tolerance=0``), or connected within ``tolerance``
    grey levels of mean absolute difference of 32x32 thumbnails."""
    if tolerance <= 0:
        labels: dict[str, int] = {}
        return np.array([labels.setdefault(images.hash(i), len(labels)) for i in range(len(images))])
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    t = thumbnails(images)
    close = np.zeros((len(t), len(t)), bool)
    for s in range(0, len(t), 256):
        close[s : s + 256] = np.abs(t[s : s + 256, None, :] - t[None, :, :]).mean(axis=2) <= float(tolerance)
    return connected_components(csr_matrix(close), directed=False)[1]


@ATTACKS.register("k_anonymity")
class EffectiveK(Attack):
    """Effective k of a k-anonymity release (classes of identical images) and rank-1 re-ID against 1/K."""

    criteria = ("singling_out",)
    attacker_holds = ("release", "gallery_originals", "face_model")

    test_params = {"k": 2}  # the claim a k-anonymity release would carry in its params

    def __init__(self, k: int | None = None, tolerance: float = 0.0, embedder: str | dict = "pixels", seed: int = 0):
        check_range(self, "k", k, ge=2, integer=True, optional=True)  # null: the release's own 'k'
        self.k = k
        self.tolerance = tolerance
        self.embedder = embedder
        self.seed = seed

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        """A claimed K: the release's own ``k`` parameter unless ``k`` is given here."""
        return ("k",) if self.k is None else ()

    def run(self, release: Release) -> AttackResult:
        k = self.k if self.k is not None else release.params.get("k")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
            raise DataError(
                f"attack '{self.name}': the release '{release.name}' claims no k (no 'k' parameter); set k to audit a "
                "claimed K"
            )
        k = int(k)
        cls_r = equivalence_classes(release.anonymized, float(self.tolerance))
        cls_o = equivalence_classes(release.originals, float(self.tolerance))
        size_r, size_o = np.bincount(cls_r)[cls_r], np.bincount(cls_o)[cls_o]
        below = proportion(size_r < k, "proportion of released images in a class smaller than K, Wilson 95% CI")
        below.extra.update(
            claimed_k=k,
            effective_k=int(size_r.min()),
            median_class=float(np.median(np.bincount(cls_r))),
            classes=int(cls_r.max()) + 1,
        )

        ids = release.originals.identities
        ids = [str(v) for v in ids] if all(v not in (None, "") for v in ids) else release.keys
        gallery = _embeddings(self.embedder, release.originals, None, "embed originals")
        probes = _embeddings(self.embedder, release.anonymized, release.originals, "embed release")
        ranks_r, n_ids = identification_ranks(cosine(probes, gallery), ids, ids, int(self.seed))
        ranks_o, _ = identification_ranks(cosine(gallery, gallery), ids, ids, int(self.seed))
        rank1 = proportion(
            ranks_r == 1, "proportion of released images whose top-ranked original is their own person, Wilson 95% CI"
        )
        rank1.extra.update(k_bound=1.0 / k, exceeds_k_bound=bool(rank1.ci_low > 1.0 / k))
        metrics = [
            AttackMetric(
                "below_k",
                below,
                proportion(size_o < k),
                0.0,
                f"released images in an equivalence class (identical images) smaller than the claimed K={k}; "
                f"effective k = {int(size_r.min())}",
            ),
            AttackMetric(
                "rank1_reid",
                rank1,
                proportion(ranks_o == 1),
                float(np.mean(1.0 / np.maximum(n_ids, 1))),
                "rank-1 re-identification against a gallery of the originals; k-anonymity bounds it by 1/K = "
                f"{1 / k:.3g}",
            ),
        ]
        details = pd.DataFrame({"key": release.keys, "class": cls_r, "class_size": size_r, "rank": ranks_r})
        notes = [(f"{int(cls_r.max()) + 1} equivalence classes among {len(release)} released images "
                 f"(sizes {int(size_r.min())} to {int(size_r.max())}) against the claimed K={k}")]
        return AttackResult(self.name, metrics, details, notes)


def _halves(images: ImageSet, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey thumbnails of the two halves of every image, ``(n, d)`` each."""
    t = thumbnails(images, size).reshape(len(images), size, size)
    a, b = (
        (t[:, : size // 2], t[:, size // 2 :])
        if split == "horizontal"
        else (t[:, :, : size // 2], t[:, :, size // 2 :])
    )
    return a.reshape(len(t), -1), b.reshape(len(t), -1)


def _nearest(queries: np.ndarray, refs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Index of each query's nearest reference row (squared L2), ties broken at random."""
    out = np.empty(len(queries), int)
    rn = (refs ** 2).sum(axis=1)
    for s in range(0, len(queries), 256):
        q = queries[s : s + 256]
        d = rn[None, :] - 2.0 * q @ refs.T
        for j, row in enumerate(d):
            best = np.flatnonzero(row <= row.min() + 1e-6 * max(1.0, abs(row.min())))
            out[s + j] = best[rng.integers(len(best))]
    return out


@ATTACKS.register("anonymeter_linkability")
class AnonymeterLinkability(Attack):
    """The anonymeter framing for images: main attack on targets vs the same attack on control images vs random."""

    criteria = ("linkability",)
    attacker_holds = ("release", "partial_originals", "auxiliary")

    def __init__(self, split: str = "horizontal", size: int = 32, max_records: int = 500, seed: int = 0):
        if split not in ("horizontal", "vertical"):
            raise ConfigError(
                "anonymeter_linkability: split must be 'horizontal' (top/bottom) or 'vertical' (left/right), got "
                f"{split!r}"
            )
        check_range(self, "size", size, ge=4, integer=True)
        if size % 2:
            raise ConfigError(f"anonymeter_linkability: size must be even, got {size!r}")
        self.split = split
        self.size = size
        self.max_records = max_records
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> AnonymeterLinkability:
        if auxiliary is None or len(auxiliary) == 0:
            raise DataError(
                f"attack '{self.name}' needs auxiliary images as control records (people not in the release)"
            )
        self.auxiliary_ = auxiliary
        return self

    def _linked(self, records: ImageSet, rel_a: np.ndarray, rel_b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a, b = _halves(records, self.split, int(self.size))
        return _nearest(a, rel_a, rng) == _nearest(b, rel_b, rng)

    def run(self, release: Release) -> AttackResult:
        if not hasattr(self, "auxiliary_"):
            raise DataError(f"attack '{self.name}' was not fitted: call fit(auxiliary) first")
        rng = np.random.default_rng(int(self.seed))
        n = min(len(release), len(self.auxiliary_), int(self.max_records))
        targets = np.sort(rng.choice(len(release), n, replace=False))
        controls = np.sort(rng.choice(len(self.auxiliary_), n, replace=False))
        rel_a, rel_b = _halves(release.anonymized, self.split, int(self.size))
        orig_a, orig_b = _halves(release.originals, self.split, int(self.size))
        main = self._linked(release.originals.subset(targets.tolist()), rel_a, rel_b, rng)
        control = self._linked(self.auxiliary_.subset(controls.tolist()), rel_a, rel_b, rng)
        on_originals = self._linked(release.originals.subset(targets.tolist()), orig_a, orig_b, rng)
        method = "proportion of records whose two halves link to the same released image, Wilson 95% CI"
        main_e, control_e = proportion(main, method), proportion(control, method)
        naive = 1.0 / len(release)
        anonymeter = (main_e.value - control_e.value) / (1.0 - control_e.value) if control_e.value < 1 else float("nan")
        main_e.extra.update(
            control_rate=control_e.value,
            control_ci_low=control_e.ci_low,
            control_ci_high=control_e.ci_high,
            naive_baseline=naive,
            main_above_naive=bool(main_e.ci_low > naive),
            anonymeter_risk=anonymeter,
        )
        halves = "top/bottom" if self.split == "horizontal" else "left/right"
        metrics = [
            AttackMetric(
                "linkability",
                main_e,
                proportion(on_originals, method),
                control_e.value,
                f"anonymeter linkability: {halves} halves of target images linked through the release; baseline = the "
                "same attack on "
                f"control images not in the release ({control_e.value:.3g}); naive random guess {naive:.3g}; "
                "anonymeter's risk "
                f"(main - control) / (1 - control) = {anonymeter:.3g}",
            )
        ]
        notes = [f"{n} target and {n} control images, {len(release)} released images"]
        if not main_e.ci_low > naive:
            notes.append(
                "the main attack does not beat the naive random guess: the risk says little (anonymeter's warning)"
            )
        details = pd.DataFrame({"key": [release.keys[i] for i in targets], "linked": main})
        return AttackResult(self.name, metrics, details, notes)
