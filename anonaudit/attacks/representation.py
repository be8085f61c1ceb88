"""Attacks on a released representation: attribute inference by fresh attackers (paper 003's privacy
score) and face matching through other photos (paper 003's utility task, the suite's linkability).

Some methods release a feature vector per image instead of (or besides) an image: AIA (paper 003)
releases its representation g. Their privacy claim is about that vector, so it is attacked directly:
the intruder obtains the released representations of its own labelled, identity-disjoint auxiliary
images (the method is public and applies to any image: ``release.anonymizer.represent``), trains
FRESH classifiers on them (not the method's own training adversary, which the method was tuned to
beat) and predicts the attribute of every released representation.

Several attacker classes are tried (``classifiers``: standardised logistic regression, an MLP,
gradient-boosted trees); the intruder picks the one with the best cross-validated ``select_by``
score on its own auxiliary data (folds grouped by identity when the images carry identities),
refits it on all of them and attacks the release with it: the choice never looks at the evaluation
images. The default selects by ROC AUC: with unbalanced classes (LFW is three quarters male) the
accuracy at the 0.5 threshold of every attacker sits near the majority baseline and would pick by
noise, while the AUC ranks what the representation tells about the attribute.

Metrics (higher = more successful attack): ``accuracy`` (Wilson 95% CI), ``balanced_accuracy`` and
``roc_auc`` (percentile bootstrap). Baselines: always answering the auxiliary majority class, scored
on the evaluation labels (accuracy), 0.5 for the other two. Upper bound ("original"): the same
procedure on the original images' greyscale pixels (``pixel_size`` x ``pixel_size``, whole image).
A release without a representation (every image-only method) is not applicable.

``representation_reid`` matches each released representation with the person's OTHER released
representations (cosine of g standardised with the intruder's own images' statistics), exactly the
1-to-1 face matching AIA keeps g useful for: its verification ROC AUC and TAR at a fixed FAR are the
paper's utility measured on g, and the same numbers are a linkability risk. Upper bound: the same
protocol on the originals' greyscale pixels; chance: rank-k of a random guess, FAR, 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..params import check_range
from ..registry import ATTACKS
from .attribute import GenderInference
from .base import Attack, AttackerModel, AttackMetric, AttackResult
from .face_common import check_disjoint
from .reid import compare

REPRESENTATION_CLASSIFIERS = ("logistic", "mlp", "boosting")
SELECTION_SCORES = ("roc_auc", "accuracy")


def representation_missing(release: Release) -> str:
    """Why ``release`` has no representation to attack ("" when its target has ``represent``)."""
    if not callable(getattr(release.anonymizer, "represent", None)):
        return f"{release.name or 'the release'} releases images only: no representation to attack"
    return ""


def greyscale_pixels(images: ImageSet, size: int) -> np.ndarray:
    """The images' standardised ``size x size`` greyscale pixels (whole image): the upper bounds' features."""
    from ..models.faces.pixels import PixelEmbedder

    return PixelEmbedder(size=int(size), crop=1.0, grey=True).embed(images)


def make_classifier(kind: str, n_train: int, seed: int):
    """A fresh scikit-learn classifier of ``kind`` (:data:`REPRESENTATION_CLASSIFIERS`)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        return make_pipeline(
            StandardScaler(),
            MLPClassifier((256,), alpha=1e-3, max_iter=500, early_stopping=n_train >= 100, random_state=int(seed)),
        )
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=int(seed))


def cv_score(
    kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int, scoring: str = "roc_auc"
) -> float:
    """Mean held-out ``scoring`` (a scikit-learn scorer name) of ``kind`` over up to ``folds``
    stratified folds grouped by ``groups`` (nan when a class has fewer than 2 groups: no fold could
    hold both classes out)."""
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score

    k = min(int(folds), *(len(np.unique(groups[y == c])) for c in (0, 1)))
    if k < 2:
        return float("nan")
    split = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed))
    return float(
        np.mean(cross_val_score(make_classifier(kind, len(x), seed), x, y, groups=groups, cv=split, scoring=scoring))
    )


@ATTACKS.register("representation_gender")
class RepresentationInference(GenderInference):
    """Infer a binary attribute (default ``gender``) from released representations with the best of
    several fresh attackers (see the module docstring)."""

    criteria = ("inference",)
    needs = ("representation",)
    attacker_holds = ("representations", "method", "auxiliary")
    attacker_trains = "fresh classifiers of the attribute on the representations of its auxiliary images"

    def intruder(self) -> AttackerModel:
        """The class declarations (no face model, no adaptive training here)."""
        return Attack.intruder(self)

    param_alternatives = {"attribute": ("smiling",)}

    def __init__(
        self,
        classifiers: tuple[str, ...] = REPRESENTATION_CLASSIFIERS,
        folds: int = 5,
        select_by: str = "roc_auc",
        pixel_size: int = 32,
        attribute: str = "gender",
        n_boot: int = 1000,
        seed: int = 0,
    ):
        bad = (
            [c for c in classifiers if c not in REPRESENTATION_CLASSIFIERS]
            if isinstance(classifiers, (list, tuple))
            else [classifiers]
        )
        if bad or not classifiers:
            raise ConfigError(
                f"representation_gender: classifiers must be a non-empty list of {REPRESENTATION_CLASSIFIERS}, got "
                f"{classifiers!r}"
            )
        check_range(self, "folds", folds, ge=2, integer=True)
        if select_by not in SELECTION_SCORES:
            raise ConfigError(f"representation_gender: select_by must be one of {SELECTION_SCORES}, got {select_by!r}")
        check_range(self, "pixel_size", pixel_size, ge=2, integer=True)
        self.classifiers = classifiers
        self.folds = folds
        self.select_by = select_by
        self.pixel_size = pixel_size
        self.attribute = attribute
        self.n_boot = n_boot
        self.seed = seed

    def not_applicable(self, release: Release) -> str:
        return representation_missing(release)

    def _pixels(self, images: ImageSet) -> np.ndarray:
        return greyscale_pixels(images, self.pixel_size)

    def _attack(
        self, x_aux: np.ndarray, y_aux: np.ndarray, groups: np.ndarray, x_eval: np.ndarray
    ) -> tuple[np.ndarray, str, dict]:
        """Pick the attacker by grouped CV on the auxiliary features, refit it on all of them, score ``x_eval``."""
        scores = {c: cv_score(c, x_aux, y_aux, groups, self.folds, self.seed, self.select_by) for c in self.classifiers}
        ranked = [c for c in self.classifiers if np.isfinite(scores[c])]
        best = max(ranked, key=lambda c: scores[c]) if ranked else self.classifiers[0]
        model = make_classifier(best, len(x_aux), self.seed).fit(x_aux, y_aux)
        return self._score(model, x_eval), best, scores

    def run(self, release: Release) -> AttackResult:
        if not hasattr(self, "auxiliary_"):
            raise DataError(f"attack '{self.name}' was not fitted: call fit(auxiliary) first")
        if reason := self.not_applicable(release):
            raise DataError(f"attack '{self.name}': {reason}")
        check_disjoint(self.auxiliary_, release, self.name)
        originals, _ = self._labelled(release.originals)
        y = self._y(originals)
        keep = np.flatnonzero(y >= 0)
        if len(keep) == 0:
            raise DataError(
                f"attack '{self.name}': no evaluation image has a '{self.attribute}' label seen in the auxiliary data"
            )
        originals, y = originals.subset(keep.tolist()), y[keep]
        y_aux = self._y(self.auxiliary_)
        aux_ids = self.auxiliary_.identities
        groups = np.array([str(v) if v not in (None, "") else f"\0{k}" for v, k in zip(aux_ids, self.auxiliary_.keys)])

        method = release.anonymizer
        p_rel, best, cv_rel = self._attack(
            np.asarray(method.represent(self.auxiliary_), dtype=np.float64),
            y_aux,
            groups,
            np.asarray(method.represent(originals), dtype=np.float64),
        )
        p_orig, best_o, cv_orig = self._attack(self._pixels(self.auxiliary_), y_aux, groups, self._pixels(originals))
        on_release, on_original = self._estimates(y, p_rel), self._estimates(y, p_orig)
        majority = int(np.mean(y_aux) > 0.5)
        baselines = {"accuracy": float(np.mean(y == majority)), "balanced_accuracy": 0.5, "roc_auc": 0.5}
        def shown(s: dict[str, float]) -> str:
            return ", ".join(f"{c} {v:.3f}" for c, v in s.items())

        notes = [
            (
                f"fresh attackers trained on the released representations of {len(self.auxiliary_)} auxiliary images "
                f"({int(y_aux.sum())} {self.classes_[1]}, {int((y_aux == 0).sum())} {self.classes_[0]}); "
                f"grouped {self.folds}-fold CV {self.select_by}: {shown(cv_rel)}; attacking with {best}; {len(y)} "
                "labelled release images"
            ),
            (
                f"upper bound: the same procedure on the originals' {self.pixel_size}x{self.pixel_size} "
                "greyscale pixels "
                f"(CV {self.select_by}: {shown(cv_orig)}; attacking with {best_o})"
            ),
        ]
        metrics = [
            AttackMetric(
                k,
                on_release[k],
                on_original[k],
                baselines[k],
                f"{self.attribute} {k.replace('_', ' ')} of the best fresh attacker on the released representation",
            )
            for k in ("accuracy", "balanced_accuracy", "roc_auc")
        ]
        details = pd.DataFrame(
            {"key": originals.keys, "label": [self.classes_[v] for v in y], "p_release": p_rel, "p_original": p_orig}
        )
        return AttackResult(self.name, metrics, details, notes)


def _unit_rows(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Rows of ``x`` standardised with ``mean`` / ``std`` (constant dimensions left at 0) and L2-normalised."""
    z = (np.asarray(x, dtype=np.float64) - mean) / np.where(std > 0, std, 1.0)
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.where(norm > 0, norm, 1.0)


@ATTACKS.register("representation_reid")
class RepresentationMatching(Attack):
    """Match released representations of the same person through their other photos (see the module docstring)."""

    requires = ("identity",)
    criteria = ("singling_out", "linkability")
    needs = ("representation",)
    attacker_holds = ("representations", "method", "auxiliary")

    def __init__(
        self, far: float = 1e-3, impostors_per_probe: int = 500, pixel_size: int = 32, n_boot: int = 200, seed: int = 0
    ):
        check_range(self, "far", far, gt=0, lt=1)
        check_range(self, "pixel_size", pixel_size, ge=2, integer=True)
        self.far = far
        self.impostors_per_probe = impostors_per_probe
        self.pixel_size = pixel_size
        self.n_boot = n_boot
        self.seed = seed

    def not_applicable(self, release: Release) -> str:
        return representation_missing(release)

    def fit(self, auxiliary: ImageSet | None = None) -> RepresentationMatching:
        """Keep the intruder's images: g (and the pixels) are standardised with their statistics
        (without any, with the release's own)."""
        self.auxiliary_: ImageSet | None = auxiliary if auxiliary is not None and len(auxiliary) else None
        return self

    def run(self, release: Release) -> AttackResult:
        if reason := self.not_applicable(release):
            raise DataError(f"attack '{self.name}': {reason}")
        self.check_labels(release)
        aux = getattr(self, "auxiliary_", None)
        if aux is not None:
            check_disjoint(aux, release, self.name)
        ids = [str(i) for i in release.originals.identities]
        kw = {
            "far": float(self.far),
            "impostors_per_probe": self.impostors_per_probe,
            "n_boot": int(self.n_boot),
            "seed": int(self.seed),
        }
        method = release.anonymizer
        protocols = {}
        for side, features in (
            ("release", method.represent),
            ("original", lambda s: greyscale_pixels(s, self.pixel_size)),
        ):
            x = np.asarray(features(release.originals), dtype=np.float64)
            ref = x if aux is None else np.asarray(features(aux), dtype=np.float64)
            z = _unit_rows(x, ref.mean(0), ref.std(0))
            protocols[side] = compare(z, z, ids, True, **kw)
        on, orig = protocols["release"], protocols["original"]
        who = "released representations matched through the person's other photos"
        metrics = [
            AttackMetric(f"rank{k}", on.rank[k], orig.rank[k], on.chance[k], f"rank-{k} identification, {who}")
            for k in sorted(on.rank)
        ]
        metrics.append(
            AttackMetric(
                f"tar@far={self.far:g}",
                on.tar,
                orig.tar,
                float(self.far),
                f"verification TAR at FAR={self.far:g}, {who}",
            )
        )
        metrics.append(AttackMetric("roc_auc", on.auc, orig.auc, 0.5, f"verification ROC AUC (1-to-1 matching), {who}"))
        notes = [
            f"{int(on.evaluated.sum())} of {len(ids)} released representations have another photo of the same person "
            f"among {len(set(ids))} identities; standardised with "
            + (f"{len(aux)} auxiliary images' representations" if aux is not None else "the release's own statistics")
            + f"; upper bound: the originals' {self.pixel_size}x{self.pixel_size} greyscale pixels"
        ]
        details = pd.DataFrame({"key": release.keys, "identity": ids, "rank": on.ranks, "rank_original": orig.ranks})
        return AttackResult(self.name, metrics, details, notes)
