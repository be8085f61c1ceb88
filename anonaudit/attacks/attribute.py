"""Attribute inference (paper 003's privacy metric): does the release still reveal a person's gender?

The intruder trains a binary classifier on its own labelled, identity-disjoint auxiliary images and
predicts the attribute of every released image that has a label.

Features (``features``):

- ``"embedding"``: face embeddings (``embedder``, default dlib; faces the detector misses are
  embedded at the typical face position, see :mod:`~anonaudit.models.faces.embedding`), classified by
  ``classifier`` = ``"logistic"`` (standardised L2-regularised logistic regression) or ``"xgboost"``.
- ``"pixels"``: the ``pixels`` embedder in colour (32x32 standardised RGB of the face-centre crop).
- ``"cnn"``: a small CNN (three conv blocks) trained from scratch for ``epochs`` (and at least 120
  optimiser steps) on 64x64 RGB crops of the face centre; it is its own classifier (``classifier`` must stay
  ``"logistic"``, the default).

Settings: ``adaptive=False`` trains on the original auxiliary images; ``adaptive=True`` trains on the
auxiliary images anonymized by the release's public method (re-created from the registry), the
"parrot" attacker of the anonymized domain; for an external release, which cannot be re-applied, on
the auxiliary people's own released files.

Metrics (higher = more successful attack): ``accuracy`` (Wilson 95% CI), ``balanced_accuracy`` and
``roc_auc`` (percentile bootstrap over images). Baselines: for accuracy, always answering the
auxiliary set's majority class, scored on the evaluation labels; 0.5 for the other two. The
"original" value is the non-adaptive attacker on the evaluation originals. Images without a usable
feature (no embedding) are given the training mean feature, i.e. classified on the prior.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..models.faces.embedding import embed, make_embedder, typical_face
from ..registry import ATTACKS
from ..stats import Estimate, bootstrap_ci, proportion
from .base import Attack, AttackerModel, AttackMetric, AttackResult
from .face_common import anonymized_auxiliary, check_disjoint

FEATURES = ("embedding", "pixels", "cnn")
CLASSIFIERS = ("logistic", "xgboost")
CROP = 0.6  # face-centre crop fraction of the pixel and CNN features (face plus some hair)


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y``."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties one half); nan unless both classes are present."""
    pos, neg = score[y == 1], score[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


class PriorClassifier:
    """Answers the training prior for every input (used when the training features carry nothing)."""

    def __init__(self, p_positive: float):
        self.p = float(p_positive)

    def predict_proba(self, x) -> np.ndarray:
        n = len(x)
        return np.column_stack([np.full(n, 1 - self.p), np.full(n, self.p)])


def crops(images: ImageSet, size: int, fraction: float = CROP) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 face-centre crops."""
    from ..models.faces.pixels import centre_box, crop_resize

    return np.stack(
        [
            np.clip(np.round(crop_resize(images[i], centre_box(images[i].shape, fraction), size)), 0, 255).astype(
                np.uint8
            )
            for i in range(len(images))
        ]
    )


class SmallCNN:
    """Three conv-BN-ReLU-pool blocks, global average pooling and a 2-way linear head (torch, CPU).

    Trains with Adam and random horizontal flips for ``epochs`` passes over the data, and for at
    least ``min_steps`` optimiser steps (a small training set needs more passes to converge).
    """

    def __init__(self, epochs: int = 10, seed: int = 0, batch_size: int = 32, lr: float = 2e-3, min_steps: int = 120):
        self.epochs = epochs
        self.seed = seed
        self.batch_size = batch_size
        self.lr = lr
        self.min_steps = min_steps

    @staticmethod
    def _net():
        from torch import nn

        def block(i, o):
            return [
                nn.Conv2d(i, o, 3, padding=1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]

        return nn.Sequential(
            *block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 2)
        )

    @staticmethod
    def _tensor(x: np.ndarray):
        import torch

        return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0).sub(0.5)

    def fit(self, x: np.ndarray, y: np.ndarray) -> SmallCNN:
        import torch

        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.net = self._net()
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        xt, yt = self._tensor(x), torch.from_numpy(y.astype(np.int64))
        self.net.train()
        steps_per_epoch = -(-len(xt) // self.batch_size)
        for _ in range(max(int(self.epochs), -(-int(self.min_steps) // steps_per_epoch))):
            order = torch.randperm(len(xt), generator=gen)
            for s in range(0, len(xt), self.batch_size):
                idx = order[s : s + self.batch_size]
                xb = xt[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.net(xb), yt[idx])
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = [torch.softmax(self.net(self._tensor(x[s : s + 256])), 1).numpy() for s in range(0, len(x), 256)]
        return np.concatenate(out) if out else np.zeros((0, 2))


@ATTACKS.register("gender")
class GenderInference(Attack):
    """Infer a binary attribute (default ``gender``) of anonymized faces with a classifier trained on auxiliary data."""

    criteria = ("inference",)
    attacker_holds = ("release", "auxiliary", "face_model")
    attacker_trains = "a classifier of the attribute on the auxiliary faces (anonymized by the method when adaptive)"

    def intruder(self) -> AttackerModel:
        """The face model only with embedding features; the method too when adaptive (it trains on its
        auxiliary faces anonymized by the method)."""
        model = super().intruder()
        holds = tuple(h for h in model.holds if self.features == "embedding" or not h.startswith("face_model"))
        return replace(model, holds=holds + (("method",) if self.adaptive else ()))

    param_alternatives = {
        "features": ("pixels",),
        "embedder": ("pixels",),
        "attribute": ("smiling",),
        "classifier": ("xgboost",),
    }
    folder_audit = {"faces": {"features": "embedding", "embedder": "dlib"}}

    def __init__(
        self,
        features: str = "embedding",
        classifier: str = "logistic",
        adaptive: bool = False,
        embedder: str | dict = "dlib",
        attribute: str = "gender",
        epochs: int = 10,
        n_boot: int = 1000,
        seed: int = 0,
    ):
        if features not in FEATURES:
            raise ConfigError(f"gender: features must be one of {FEATURES}, got {features!r}")
        if classifier not in CLASSIFIERS:
            raise ConfigError(f"gender: classifier must be one of {CLASSIFIERS}, got {classifier!r}")
        if features == "cnn" and classifier != "logistic":
            raise ConfigError("gender: features='cnn' is its own classifier; leave classifier at its default")
        self.features = features
        self.classifier = classifier
        self.adaptive = adaptive
        self.embedder = embedder
        self.attribute = attribute
        self.epochs = epochs
        self.n_boot = n_boot
        self.seed = seed

    def labels_read(self) -> tuple[str, ...]:
        """The attribute column inferred (``gender`` by default)."""
        return (self.attribute,)

    # -- data -----------------------------------------------------------------------------------
    def _labelled(self, images: ImageSet) -> tuple[ImageSet, np.ndarray]:
        idx = [i for i, v in enumerate(images.attribute(self.attribute)) if v not in (None, "")]
        return images.subset(idx), np.asarray(idx, dtype=int)

    def fit(self, auxiliary: ImageSet | None = None) -> GenderInference:
        """Keep the auxiliary images labelled with the attribute (training happens in :meth:`run`,
        when the release's method is known for the adaptive setting)."""
        if auxiliary is None:
            raise DataError(f"attack '{self.name}' needs auxiliary images labelled with '{self.attribute}' to train on")
        aux, _ = self._labelled(auxiliary)
        classes = sorted({str(v) for v in aux.attribute(self.attribute)})
        if len(classes) != 2:
            raise DataError(
                f"attack '{self.name}': '{self.attribute}' must have exactly 2 classes in the auxiliary data, found "
                f"{classes}"
            )
        self.classes_ = classes
        self.auxiliary_ = aux
        self.reference_ = auxiliary  # all the intruder's images: where faces typically are
        return self

    def _y(self, images: ImageSet) -> np.ndarray:
        return np.array(
            [self.classes_.index(str(v)) if str(v) in self.classes_ else -1 for v in images.attribute(self.attribute)]
        )

    def _features(self, images: ImageSet, desc: str) -> np.ndarray:
        if self.features == "cnn":
            return crops(images, 64)
        if self.features == "pixels":
            from ..models.faces.pixels import PixelEmbedder

            return PixelEmbedder(size=32, crop=CROP, grey=False).embed(images)
        model = make_embedder(self.embedder)
        face = typical_face(model.detector, self.reference_) if getattr(model, "detector", None) else None
        return embed(model, images, face, desc).vectors

    def _train(self, x: np.ndarray, y: np.ndarray):
        if self.features == "cnn":
            informative = x.reshape(len(x), -1).std(axis=1) > 0
            if informative.sum() < 2 or len(np.unique(y[informative])) < 2:
                return PriorClassifier(float(y.mean()))
            return SmallCNN(self.epochs, self.seed).fit(x, y)
        ok = np.all(np.isfinite(x), axis=1)
        if ok.sum() < 2 or len(np.unique(y[ok])) < 2:
            return PriorClassifier(float(y.mean()))
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.classifier == "logistic":
            from sklearn.linear_model import LogisticRegression

            clf = make_pipeline(
                SimpleImputer(strategy="mean"), StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)
            )
        else:
            from xgboost import XGBClassifier

            clf = make_pipeline(
                SimpleImputer(strategy="mean"),
                XGBClassifier(
                    n_estimators=200, max_depth=3, learning_rate=0.1, n_jobs=1, random_state=int(self.seed), verbosity=0
                ),
            )
        return clf.fit(x[ok], y[ok])

    @staticmethod
    def _score(model, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class (rows without a feature are imputed with the training mean).

        Computed in float64 and rounded to 1e-9: identical feature rows (e.g. a fully masked release)
        must give tied scores, and a float32 matrix product can differ in the last bit between rows,
        which would break the ties and move the ROC AUC away from 0.5."""
        return np.round(model.predict_proba(np.asarray(x, dtype=np.float64))[:, 1], 9)

    # -- metrics --------------------------------------------------------------------------------
    def _estimates(self, y: np.ndarray, p: np.ndarray) -> dict[str, Estimate]:
        pred = (p > 0.5).astype(int)
        acc = proportion(pred == y, f"accuracy of {self.attribute} inference, Wilson 95% CI")
        data = np.column_stack([y, pred, p])
        bal = balanced_accuracy(y, pred)
        lo_b, hi_b = bootstrap_ci(
            data,
            lambda d: balanced_accuracy(d[:, 0], d[:, 1]) if len(np.unique(d[:, 0])) == 2 else np.nan,
            int(self.n_boot),
            int(self.seed),
        )
        auc = auc_score(y, p)
        lo_a, hi_a = bootstrap_ci(data, lambda d: auc_score(d[:, 0], d[:, 2]), int(self.n_boot), int(self.seed))
        return {
            "accuracy": acc,
            "balanced_accuracy": Estimate(
                bal, lo_b, hi_b, len(y), "balanced accuracy (mean recall of both classes), bootstrap 95% CI"
            ),
            "roc_auc": Estimate(auc, lo_a, hi_a, len(y), "ROC AUC of the classifier's score, bootstrap 95% CI"),
        }

    def run(self, release: Release) -> AttackResult:
        if not hasattr(self, "auxiliary_"):
            raise DataError(f"attack '{self.name}' was not fitted: call fit(auxiliary) first")
        check_disjoint(self.auxiliary_, release, self.name)
        originals, idx = self._labelled(release.originals)
        if len(originals) == 0:
            raise DataError(f"attack '{self.name}': no evaluation image has a '{self.attribute}' label")
        anonymized = release.anonymized.subset(idx.tolist())
        y = self._y(originals)
        unknown = int((y < 0).sum())
        keep = np.flatnonzero(y >= 0)
        y = y[keep]
        y_aux = self._y(self.auxiliary_)
        notes = [
            f"{self.features} features"
            + (f" ({self.classifier})" if self.features != "cnn" else " (small CNN)")
            + f", trained on {len(self.auxiliary_)} auxiliary images ({int(y_aux.sum())} {self.classes_[1]}, "
            f"{int((y_aux == 0).sum())} {self.classes_[0]}); evaluated on {len(keep)} labelled release images"
            + (
                f" ({len(release) - len(idx)} unlabelled and {unknown} with a class unseen in training left out)"
                if len(release) - len(idx) or unknown
                else ""
            )
        ]
        x_aux = self._features(self.auxiliary_, "embed auxiliary")
        base_model = self._train(x_aux, y_aux)
        x_orig = self._features(originals, "embed originals")[keep]
        x_rel = self._features(anonymized, "embed release")[keep]
        model = base_model
        if self.adaptive:
            aux_anon, how = anonymized_auxiliary(release, self.auxiliary_)
            if aux_anon is None:
                raise DataError(
                    f"adaptive attack '{self.name}' cannot re-apply the release's method nor use its own auxiliary "
                    f"files: {how}"
                )
            model = self._train(self._features(aux_anon, "embed anonymized auxiliary"), self._y(aux_anon))
            notes.append(f"adaptive: trained on {how}")
        p_rel = self._score(model, x_rel)
        p_orig = self._score(base_model, x_orig)
        on_release, on_original = self._estimates(y, p_rel), self._estimates(y, p_orig)
        majority = int(np.mean(y_aux) > 0.5)
        baselines = {"accuracy": float(np.mean(y == majority)), "balanced_accuracy": 0.5, "roc_auc": 0.5}
        setting = (
            "adaptive attacker (trained on anonymized auxiliary images)"
            if self.adaptive
            else "attacker trained on original auxiliary images"
        )
        metrics = [
            AttackMetric(
                k, on_release[k], on_original[k], baselines[k], f"{self.attribute} {k.replace('_', ' ')}, {setting}"
            )
            for k in ("accuracy", "balanced_accuracy", "roc_auc")
        ]
        details = pd.DataFrame({
            "key": [originals.keys[i] for i in keep], "label": [self.classes_[v] for v in y],
            "p_release": p_rel, "p_original": p_orig,
        })
        return AttackResult(self.name, metrics, details, notes)
