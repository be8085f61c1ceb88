"""Real-vs-fake judges, paper 000's own evaluation: can classifiers tell anonymized regions from real ones?

Paper 000 declares its generated plates safe because an ensemble of two real-vs-fake classifiers
has zero false negatives. ``RealFakeJudges`` ("real_fake_judges") reproduces that protocol with
stronger judges and honest error bars:

1. Training data: the intruder's auxiliary images (label real) and the same images anonymized by
   the release's method (label anonymized). They come from the release's own files of the auxiliary
   people (an external release), the public method re-applied (classical methods) or, for a trained
   target, the target object the release carries (the developer's evaluation, as in the paper).
2. Every judge sees the plate / face regions (the originals' boxes; the whole image without boxes),
   resized to ``size``. Judges (``judges``): ``logistic`` (standardised L2 logistic regression on
   HOG features), ``random_forest`` (scikit-learn, HOG + RGB colour histograms), ``xgboost`` (HOG +
   colour histograms) and ``cnn`` (the small three-block CNN of the attribute attack, on the crops).
3. Operating point: ``calibration`` of the auxiliary images are held out; each judge's threshold is
   the ``1 - fpr`` quantile of its "anonymized" probability on the held-out REAL images, so every
   judge flags about ``fpr`` of real images. The ensemble averages the judges' probabilities (soft
   vote) and is calibrated the same way.
4. On the evaluation release: the false-negative rate of each judge and of the ensemble, the share of
   anonymized images judged real (Wilson 95% CI), and, in each estimate's details, the false-positive
   rate on the evaluation originals.

Reading the numbers: an FNR near ``1 - fpr`` (the no-information judge, ``no_information_fnr`` in
the details) means the judges cannot tell anonymized from real regions; an FNR near 0 means every
anonymized region is spotted (a solid mask). This is a DETECTABILITY measure, not a readability or
re-identification one: a judge that spots every fake says nothing about whether the plate can be
read, so audit configs run it next to OCR re-reading on the same release. Higher FNR is "better"
for a release that wants to pass as real; its rows carry no privacy risk (no chance baseline is set,
so the headline never counts them as a leak).
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Record, Release
from ..errors import ConfigError, DataError
from ..params import check_range
from ..registry import ATTACKS
from ..stats import proportion
from .attribute import SmallCNN
from .base import Attack, AttackMetric, AttackResult
from .face_common import anonymized_auxiliary
from .memorization import plate_crops

JUDGES = ("logistic", "random_forest", "xgboost", "cnn")


def region_crops(images: ImageSet, records: list[Record] | None = None, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """``(n_regions, h, w, 3)`` uint8: every box of every image (the whole image without boxes), resized to
    ``size`` (w, h)."""
    colour, _, _ = plate_crops(images, records)
    if not colour:
        return np.zeros((0, size[1], size[0], 3), np.uint8)
    return np.stack(
        [
            cv2.resize(c, size, interpolation=cv2.INTER_AREA if c.shape[1] > size[0] else cv2.INTER_LINEAR)
            for c in colour
        ]
    )


def hog_features(crops: np.ndarray) -> np.ndarray:
    """HOG descriptors (9 orientations, 8x8-pixel cells, 2x2-cell blocks) of the grey crops."""
    from skimage.feature import hog

    return np.stack(
        [
            hog(
                cv2.cvtColor(c, cv2.COLOR_RGB2GRAY),
                orientations=9,
                pixels_per_cell=(8, 8),
                cells_per_block=(2, 2),
                feature_vector=True,
            )
            for c in crops
        ]
    ).astype(np.float32)


def colour_histograms(crops: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-channel RGB histograms (``bins`` each), normalised to sum 1 per channel."""
    out = np.empty((len(crops), 3 * bins), np.float32)
    for i, c in enumerate(crops):
        for ch in range(3):
            h = np.bincount((c[..., ch].ravel().astype(np.int64) * bins) // 256, minlength=bins)
            out[i, ch * bins : (ch + 1) * bins] = h / max(1, h.sum())
    return out


def _make_judge(name: str, seed: int, epochs: int):
    """An unfitted judge: (estimator, which features it reads)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)), "hog"
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=200, min_samples_leaf=2, n_jobs=1, random_state=seed), "hog+hist"
    if name == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(
            n_estimators=200, max_depth=3, learning_rate=0.1, n_jobs=1, random_state=seed, verbosity=0
        ), "hog+hist"
    return SmallCNN(epochs=epochs, seed=seed), "pixels"


@ATTACKS.register("real_fake_judges")
class RealFakeJudges(Attack):
    """Paper 000's real-vs-fake judges: per-judge and ensemble false-negative rates (anonymized judged real)."""

    # Judges that tell generated regions from real ones let an intruder isolate which records of a
    # mixed release are real (and which were replaced).
    criteria = ("singling_out",)
    attacker_holds = ("release", "method", "auxiliary")
    attacker_trains = "real-vs-fake judges on its auxiliary images, clear and anonymized by the method"
    needs = ("anonymized_auxiliary",)

    def __init__(
        self,
        judges: tuple[str, ...] | list[str] = JUDGES,
        size: int | tuple[int, int] | list[int] = 64,
        fpr: float = 0.05,
        calibration: float = 0.3,
        epochs: int = 10,
        seed: int = 0,
    ):
        unknown = [j for j in judges if j not in JUDGES]
        if not judges or unknown:
            raise ConfigError(f"real_fake_judges: judges must be a non-empty subset of {JUDGES}, got {list(judges)!r}")
        check_range(self, "fpr", fpr, gt=0, lt=0.5)
        check_range(self, "calibration", calibration, gt=0, lt=1)
        self.judges = judges
        self.size = size
        self.fpr = fpr
        self.calibration = calibration
        self.epochs = epochs
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> RealFakeJudges:
        """Keep the intruder's images (the judges train in :meth:`run`, once the release's method is known)."""
        if auxiliary is None or len(auxiliary) < 4:
            raise DataError(
                f"attack '{self.name}' needs at least 4 auxiliary images (real examples to train and calibrate "
                "the judges)"
            )
        self.auxiliary_ = auxiliary
        return self

    def _wh(self) -> tuple[int, int]:
        s = self.size
        w, h = (int(s), int(s)) if isinstance(s, (int, np.integer)) else (int(s[0]), int(s[1]))
        if w < 16 or h < 16:
            raise ConfigError(f"real_fake_judges: size must be at least 16x16 (HOG cells and CNN pooling), got {s!r}")
        return w, h

    @staticmethod
    def _features(crops: np.ndarray, kind: str) -> np.ndarray:
        if kind == "pixels":
            return crops
        hog = hog_features(crops)
        return hog if kind == "hog" else np.hstack([hog, colour_histograms(crops)])

    def _training_fakes(self, release: Release) -> tuple[ImageSet, str]:
        fakes, how = anonymized_auxiliary(release, self.auxiliary_)
        if fakes is not None:
            return fakes, how
        target = release.anonymizer
        if target is None or not getattr(target, "applies_to_new_images", False):
            raise DataError(
                f"attack '{self.name}' needs anonymized auxiliary images to train on: {how}, and the release carries "
                "no target object"
            )
        # A shallow copy: the target's networks are shared, its per-run attributes (e.g. candidates_) are not
        # overwritten.
        made = copy.copy(target).anonymize(self.auxiliary_, show_progress=False)
        return (
            made,
            f"the auxiliary images anonymized by the trained target {target.label()} (the developer's own evaluation)",
        )

    def run(self, release: Release) -> AttackResult:
        if not hasattr(self, "auxiliary_"):
            raise DataError(f"attack '{self.name}' was not fitted: call fit(auxiliary) first")
        size = self._wh()
        fakes, how = self._training_fakes(release)
        aux = self.auxiliary_.subset([self.auxiliary_.index_of(k) for k in fakes.keys])
        rng = np.random.default_rng(int(self.seed))
        order = rng.permutation(len(aux))
        n_cal = max(2, int(round(float(self.calibration) * len(aux))))
        if len(aux) - n_cal < 2:
            raise DataError(
                f"attack '{self.name}': {len(aux)} auxiliary images with anonymized versions are too few to train and "
                "calibrate"
            )
        cal, fit = sorted(order[:n_cal].tolist()), sorted(order[n_cal:].tolist())
        real_fit = region_crops(aux.subset(fit), size=size)
        fake_fit = region_crops(fakes.subset(fit), aux.subset(fit).records, size)
        real_cal = region_crops(aux.subset(cal), size=size)
        eval_real = region_crops(release.originals, size=size)
        eval_fake = region_crops(release.anonymized, release.originals.records, size)
        x_crops = np.concatenate([real_fit, fake_fit])
        y = np.r_[np.zeros(len(real_fit), int), np.ones(len(fake_fit), int)]

        q = 1.0 - float(self.fpr)
        scores: dict[
            str, tuple[np.ndarray, np.ndarray, np.ndarray]
        ] = {}  # judge -> (calibration reals, eval reals, eval fakes)
        notes = [
            (
                f"judges trained on {len(real_fit)} real and {len(fake_fit)} anonymized regions of {len(fit)} "
                "auxiliary images "
                f"({how}); thresholds at {self.fpr:g} FPR on {len(real_cal)} held-out real regions; evaluated on "
                f"{len(eval_fake)} anonymized and {len(eval_real)} real regions of the release"
            ),
            (
                "detectability, not readability: a judge that spots anonymized regions says nothing about whether they "
                "can be read or recognised (see the OCR / re-identification rows of the same release)"
            ),
        ]
        for name in self.judges:
            if name == "xgboost":
                try:
                    import xgboost  # noqa: F401
                except ImportError:
                    notes.append("xgboost judge left out: xgboost is not installed (pip install 'anonaudit[faces]')")
                    continue
            model, kind = _make_judge(name, int(self.seed), int(self.epochs))
            model.fit(self._features(x_crops, kind), y)
            scores[name] = tuple(
                model.predict_proba(self._features(c, kind))[:, 1] for c in (real_cal, eval_real, eval_fake)
            )
        scores["ensemble"] = tuple(np.mean([s[i] for s in scores.values()], axis=0) for i in range(3))

        metrics, details = [], {"region": np.arange(len(eval_fake))}
        for name, (cal_s, real_s, fake_s) in scores.items():
            threshold = float(np.quantile(cal_s, q))
            judged_real = fake_s <= threshold
            est = proportion(judged_real, "proportion of anonymized regions judged real, Wilson 95% CI")
            est.extra.update(fpr_on_originals=float(np.mean(real_s > threshold)), threshold=threshold,
                             no_information_fnr=q, calibrated_fpr=float(self.fpr))
            what = (
                ("soft vote (mean probability) of " + ", ".join(n for n in scores if n != "ensemble"))
                if name == "ensemble"
                else f"{name} judge"
            )
            metrics.append(
                AttackMetric(
                    f"fnr_{name}",
                    est,
                    None,
                    float("nan"),
                    f"false-negative rate of the {what}: anonymized regions judged real at {self.fpr:g} FPR on real "
                    "regions "
                    f"(no-information judge: {q:g}); detectability, not readability",
                    higher_is_better=True,
                )
            )
            details[f"p_{name}"] = fake_s
        return AttackResult(self.name, metrics, pd.DataFrame(details), notes)
