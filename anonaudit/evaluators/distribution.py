"""Distribution-level realism of the anonymized images: FID, KID, Inception Score, and honest
non-standard Frechet distances.

``fid``, ``kid`` and ``inception_score`` use the standard FID Inception-v3 (pytorch-fid weights,
model cache entry ``inception-fid``; see :mod:`anonaudit.models.inception`); without the weights
they raise :class:`ModelUnavailableError` naming ``anonaudit models fetch inception-fid``, which the
audit records as "unavailable". Reference set = the originals, compared set = the anonymized
images. Inception outputs are cached per image content, so the originals are embedded once for
every target of an audit.

``frechet_distance`` is the same Frechet distance on other features (a face embedder from the
``EMBEDDERS`` registry, 16x16 pixels, or any feature function). It reports itself as
``FD-<features>`` with ``standard=False``: it is not FID and not comparable with published FIDs.

Feature means and covariances stream in float64 (:class:`FeatureStats`); a uniform reservoir of at
most ``max_pairs`` (original, anonymized) feature pairs is kept for the bootstrap CI and for KID.
The FID (and FD-<features>) CI is a bootstrap over image pairs with few resamples (``n_bootstrap``,
20 by default, each a full Frechet distance). Resampling duplicates images, which shrinks the fitted
covariances' rank and biases every resampled distance upward (at n below the feature dimension by
more than the spread), so a plain percentile interval would lie above the point estimate: the
percentile interval is shifted down by the bootstrap bias ``mean(resampled) - estimate``. It is
indicative only. FID itself is biased upward at small n (Chong & Forsyth, 2020):
compare FIDs only at equal n; KID, which is unbiased, is reported alongside.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError, DataError
from ..measurement import Measurement
from ..memo import Memo
from ..metrics.frechet import FeatureStats, frechet_distance, frechet_distance_from_features
from ..metrics.inception_score import SplitInceptionScore
from ..metrics.mmd import KIDResult, kid, mmd2_unbiased, polynomial_kernel
from ..metrics.reservoir import PairReservoir
from ..params import check_range
from ..registry import EMBEDDERS, EVALUATORS
from ..stats import Estimate
from .fidelity import ProgressEvaluator, default_device

FID_BIAS_NOTE = "FID is biased upward at small n (compare only at equal n); KID is unbiased"
INCEPTION_BATCH = 32


def inception_outputs(images: ImageSet, device: str | None = None) -> np.ndarray:
    """``(n, 2048 + 1008)`` float32: pool3 features then unbiased logits, cached per image content."""
    import torch

    from ..models.inception import POOL3_DIM, images_to_tensor, load_fid_inception

    dev = default_device(device)
    model, digest = load_fid_inception(dev)
    memo = Memo(f"inception-fid:{digest[:16]}:pool3+logits_unbiased:pytorch-fid-preprocessing")

    def compute(todo: list[int]) -> list[np.ndarray]:
        rows: list[np.ndarray] = []
        with torch.no_grad():
            for s in range(0, len(todo), INCEPTION_BATCH):
                x = images_to_tensor([images[i] for i in todo[s : s + INCEPTION_BATCH]]).to(dev)
                pool3, logits = model(x)
                rows.extend(torch.cat([pool3, logits], 1).float().cpu().numpy())
        return rows

    out = memo.get_or_compute([images.hash(i) for i in range(len(images))], compute)
    arr = np.stack(out).astype(np.float32) if out else np.zeros((0, POOL3_DIM + 1008), np.float32)
    return arr


def _percentile_ci(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _bias_shifted_ci(value: float, boots: np.ndarray) -> tuple[float, float]:
    """Percentile 95% CI of the bootstrap distances shifted by their bias ``mean(boots) - value``
    (clipped at 0). Resampling with replacement duplicates images and inflates a Frechet distance,
    often by more than the interval's half-width when n is below the feature dimension, which puts a
    plain percentile (or basic) interval entirely off the estimate."""
    finite = boots[np.isfinite(boots)]
    lo, hi = _percentile_ci(finite)
    if not np.isfinite(lo):
        return lo, hi
    bias = float(finite.mean()) - value
    return max(0.0, lo - bias), max(0.0, hi - bias)


def kid_with_ci(
    x: np.ndarray, y: np.ndarray, subsets: int, subset_size: int, n_bootstrap: int, seed: int
) -> tuple[KIDResult, float, float]:
    """KID (subset mean and std) and a percentile-bootstrap 95% CI over paired rows.

    Each bootstrap resample draws row pairs with replacement and evaluates the full-sample unbiased
    MMD^2, excluding pairs of positions that drew the same row (the U-statistic's diagonal).
    """
    m = min(subset_size, len(x), len(y))
    result = kid(x, y, subsets=subsets, subset_size=m, seed=seed)
    if n_bootstrap < 2 or len(x) != len(y) or len(x) < 3:
        return result, float("nan"), float("nan")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    rng = np.random.default_rng(seed + 1)
    w = rng.multinomial(len(x), np.full(len(x), 1.0 / len(x)), size=n_bootstrap).astype(np.float64)
    w = w[(w > 0).sum(axis=1) >= 2]  # a resample of one distinct pair has no within-set term
    lo, hi = _percentile_ci(mmd2_unbiased(kxx, kyy, kxy, w, w))
    return result, lo, hi


class PairedFeatureEvaluator(ProgressEvaluator):
    """Streams features of originals and anonymized images; pairs where either side has no
    features (NaN rows, e.g. no face found) are dropped and counted."""

    higher_is_better = False
    max_pairs: int
    n_bootstrap: int
    seed: int
    _stats_original: FeatureStats
    _stats_anonymized: FeatureStats
    _reservoir: PairReservoir
    _no_features_original: int
    _no_features_anonymized: int

    def __init__(self) -> None:
        """Declares the state; subclasses set ``max_pairs`` and ``seed`` first."""
        self.add_state("_stats_original", FeatureStats(), merge=FeatureStats.merged)
        self.add_state("_stats_anonymized", FeatureStats(), merge=FeatureStats.merged)
        self.add_state("_reservoir", PairReservoir(self.max_pairs, seed=self.seed), merge=PairReservoir.merged)
        self.add_state("_no_features_original", 0, merge="sum")
        self.add_state("_no_features_anonymized", 0, merge="sum")
        super().__init__()

    def features(self, images: ImageSet) -> np.ndarray:
        """``(n, dim)`` features of ``images``; NaN rows where none exist."""
        raise NotImplementedError

    def update(self, release: Release) -> None:
        fo, fa = self.features(release.originals), self.features(release.anonymized)
        ok_o, ok_a = np.all(np.isfinite(fo), axis=1), np.all(np.isfinite(fa), axis=1)
        self._no_features_original += int((~ok_o).sum())
        self._no_features_anonymized += int((ok_o & ~ok_a).sum())
        ok = ok_o & ok_a
        self._stats_original.update(fo[ok])
        self._stats_anonymized.update(fa[ok])
        self._reservoir.update(fo[ok], fa[ok])

    @property
    def n_pairs(self) -> int:
        return self._stats_original.n

    def _require(self, at_least: int) -> None:
        if self.n_pairs < at_least:
            raise DataError(f"{self.name}: needs at least {at_least} image pairs with features, got {self.n_pairs} "
                            f"({self._no_features_original} originals and {self._no_features_anonymized} "
                            "anonymized images had none)")

    def frechet(self) -> tuple[float, float, float, dict]:
        """Point estimate, bootstrap CI and details of the Frechet distance between the two sides."""
        self._require(2)
        x, y = self._reservoir.arrays()
        original, anonymized = self._stats_original, self._stats_anonymized
        value = frechet_distance(original.mean, original.cov, anonymized.mean, anonymized.cov)
        boot = []
        rng = np.random.default_rng(self.seed)
        if len(x) >= 3:
            for _ in range(self.n_bootstrap):
                w = rng.multinomial(len(x), np.full(len(x), 1.0 / len(x))).astype(np.float64)
                boot.append(frechet_distance_from_features(x, y, w, w))
        lo, hi = _bias_shifted_ci(value, np.asarray(boot))
        extra = {
            "bootstrap_ci": "percentile, shifted by the bootstrap bias (resampling with replacement inflates a "
                            "Frechet distance, so the plain percentile interval can miss the point estimate)",
            "bootstrap_resamples": len(boot),
            "bootstrap_pairs": len(x),
            "no_features_original": self._no_features_original,
            "no_features_anonymized": self._no_features_anonymized,
        }
        return value, lo, hi, extra


class _InceptionFeatures:
    device: str | None

    def features(self, images: ImageSet) -> np.ndarray:
        from ..models.inception import POOL3_DIM

        return inception_outputs(images, self.device)[:, :POOL3_DIM]


@EVALUATORS.register("fid")
class FID(_InceptionFeatures, PairedFeatureEvaluator):
    """Frechet Inception Distance between the originals and the anonymized images.

    Standard FID: pytorch-fid Inception-v3 pool3 (2048-d), resize to 299 bilinear, [-1, 1] input.
    ``compute()`` also returns ``kid`` on the same features (mean and std over subsets, bootstrap
    CI) when at least two pairs are kept.
    """

    param_alternatives = {"device": ("cpu",)}

    def __init__(self, device: str | None = None, max_pairs: int = 2000, n_bootstrap: int = 20, seed: int = 0,
                 kid_subsets: int = 100, kid_subset_size: int = 1000):
        _check_common(self, max_pairs, n_bootstrap)
        self.device = device
        self.max_pairs = max_pairs
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        super().__init__()

    def compute(self) -> list[Measurement]:
        value, lo, hi, extra = self.frechet()
        extra.update(note=FID_BIAS_NOTE)
        fid = Estimate(
            value,
            lo,
            hi,
            self.n_pairs,
            f"FID (pytorch-fid Inception-v3 pool3), originals vs anonymized; CI: bootstrap over image pairs, "
            f"{extra['bootstrap_resamples']} resamples, shifted by the resampling bias (indicative)",
            extra=extra,
        )
        out = [self.measurement(fid, "fid")]
        x, y = self._reservoir.arrays()
        if len(x) >= 2:
            k, klo, khi = kid_with_ci(x, y, self.kid_subsets, self.kid_subset_size, 200, self.seed)
            out.append(
                self.measurement(
                    Estimate(
                        k.mean,
                        klo,
                        khi,
                        len(x),
                        f"KID on the same features, {self.kid_subsets} subsets of {k.subset_size}; "
                        "CI: percentile bootstrap over image pairs, 200 resamples",
                        extra={"std": k.std, "subset_size": k.subset_size},
                    ),
                    "kid",
                )
            )
        return out


@EVALUATORS.register("kid")
class KID(_InceptionFeatures, PairedFeatureEvaluator):
    """Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, on Inception pool3 features.

    ``subsets`` subsets of ``subset_size`` images (capped at the number of pairs kept), mean and std
    over subsets as torchmetrics; CI: percentile bootstrap (``n_bootstrap`` resamples) over pairs.
    KID is computed on the reservoir of at most ``max_pairs`` pairs (all of them when fewer).
    """

    param_alternatives = {"device": ("cpu",)}

    def __init__(self, device: str | None = None, subsets: int = 100, subset_size: int = 1000, max_pairs: int = 2000,
                 n_bootstrap: int = 200, seed: int = 0):
        _check_common(self, max_pairs, n_bootstrap)
        self.device = device
        self.subsets = subsets
        self.subset_size = subset_size
        self.max_pairs = max_pairs
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        super().__init__()

    def compute(self) -> Measurement:
        self._require(2)
        x, y = self._reservoir.arrays()
        k, lo, hi = kid_with_ci(x, y, self.subsets, self.subset_size, self.n_bootstrap, self.seed)
        extra = {"std": k.std, "subsets": self.subsets, "subset_size": k.subset_size, "n_images_seen": self.n_pairs}
        return self.measurement(
            Estimate(
                k.mean,
                lo,
                hi,
                len(x),
                f"KID (unbiased MMD^2, cubic polynomial kernel, Inception pool3), mean over {self.subsets} "
                f"subsets of {k.subset_size}; CI: percentile bootstrap over image pairs, {self.n_bootstrap} resamples",
                extra=extra,
            ),
            "kid",
        )


@EVALUATORS.register("inception_score")
class InceptionScore(ProgressEvaluator):
    """Inception Score of the anonymized images (FID Inception, 1008-class unbiased logits).

    Mean and std over ``splits`` round-robin splits; CI: t-interval over the splits. The
    measurement's ``original`` is the Inception Score of the originals (same procedure).
    """

    higher_is_better = True

    param_alternatives = {"device": ("cpu",)}

    def __init__(self, splits: int = 10, device: str | None = None):
        check_range(self, "splits", splits, ge=1, integer=True)
        self.splits = splits
        self.device = device
        self._anonymized: SplitInceptionScore
        self._original: SplitInceptionScore
        self.add_state("_anonymized", SplitInceptionScore(splits), merge=SplitInceptionScore.merged)
        self.add_state("_original", SplitInceptionScore(splits), merge=SplitInceptionScore.merged)
        super().__init__()

    def update(self, release: Release) -> None:
        from ..models.inception import POOL3_DIM

        self._original.update(inception_outputs(release.originals, self.device)[:, POOL3_DIM:])
        self._anonymized.update(inception_outputs(release.anonymized, self.device)[:, POOL3_DIM:])

    def compute(self) -> Measurement:
        method = (
            f"Inception Score (FID Inception-v3, unbiased logits), {self.splits} splits; CI: t-interval over splits"
        )
        mean, std, lo, hi = self._anonymized.compute()
        o_mean, o_std, o_lo, o_hi = self._original.compute()
        return self.measurement(
            Estimate(mean, lo, hi, self._anonymized.n, method, extra={"std": std, "splits": self.splits}),
            "inception_score",
            original=Estimate(o_mean, o_lo, o_hi, self._original.n, method, extra={"std": o_std}),
        )


def pixels16(images: list[np.ndarray]) -> np.ndarray:
    """Each image area-resized to 16x16 RGB, scaled to [0, 1] and flattened (768-d)."""
    import cv2

    return (
        np.stack([cv2.resize(im, (16, 16), interpolation=cv2.INTER_AREA).reshape(-1) for im in images]).astype(
            np.float32
        )
        / 255.0
    )


BUILTIN_FEATURES: dict[str, tuple[Callable[[list[np.ndarray]], np.ndarray], str]] = {
    "pixels16": (pixels16, "16x16 area-downsampled RGB pixels"),
}


@EVALUATORS.register("frechet_distance")
class FrechetDistance(PairedFeatureEvaluator):
    """Frechet distance on non-Inception features, reported as ``FD-<label>`` with ``standard=False``.

    ``embedder``: ``"pixels16"`` (16x16 downsampled pixels; offline, works for plates), a name in
    the ``EMBEDDERS`` registry (``"dlib"``, ``"facenet"``, ``"arcface_r50"``, ...: face embeddings,
    images without a face are dropped pairwise and counted), or a callable mapping a list of RGB
    uint8 images to an ``(n, dim)`` array (NaN rows for "no features"). ``features_name`` names the
    features in the metric name (default: the embedder's name).
    """

    param_alternatives = {"embedder": ("pixels",), "features_name": ("custom",)}
    folder_audit = {"plates": {}}

    def __init__(self, embedder: str | Callable = "pixels16", features_name: str | None = None, max_pairs: int = 2000,
                 n_bootstrap: int = 20, seed: int = 0):
        _check_common(self, max_pairs, n_bootstrap)
        if not (isinstance(embedder, str) or callable(embedder)):
            raise ConfigError(f"frechet_distance: embedder must be a name or a callable, got {embedder!r}")
        self.embedder = embedder
        self.features_name = features_name
        self.max_pairs = max_pairs
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self._fn: tuple[Callable[[ImageSet], np.ndarray], str] | None = None  # built on first use (a cache)
        super().__init__()

    @property
    def feature_label(self) -> str:
        if self.features_name:
            return self.features_name
        return self.embedder if isinstance(self.embedder, str) else getattr(self.embedder, "__name__", "custom")

    def _feature_fn(self) -> tuple[Callable[[ImageSet], np.ndarray], str]:
        if self._fn is None:
            self._fn = self._make_feature_fn()
        return self._fn

    def _make_feature_fn(self) -> tuple[Callable[[ImageSet], np.ndarray], str]:
        e = self.embedder
        if callable(e):
            return (lambda images: np.asarray(e([images[i] for i in range(len(images))]), np.float64)), "user-supplied"
        if e in BUILTIN_FEATURES:
            fn, desc = BUILTIN_FEATURES[e]
            return (lambda images: fn([images[i] for i in range(len(images))])), desc
        if e not in EMBEDDERS:
            from ..models import faces  # noqa: F401  (registers the face embedders)
        model = EMBEDDERS.create(e)
        return model.embed, f"'{e}' face-embedding"

    def features(self, images: ImageSet) -> np.ndarray:
        fn, _ = self._feature_fn()
        out = np.asarray(fn(images), np.float64)
        if out.ndim != 2 or len(out) != len(images):
            raise DataError(
                f"FD-{self.feature_label}: features must be (n_images, dim), got shape {out.shape} for "
                f"{len(images)} images"
            )
        return out

    def compute(self) -> Measurement:
        _, desc = self._feature_fn()
        name = f"FD-{self.feature_label}"
        reason = (
            f"{name} uses {desc} features, not Inception-v3 pool3: it is not FID and not comparable with "
            "published FID values"
        )
        if self.n_pairs < 2 and self._no_features_anonymized > 0:
            # e.g. face embeddings of a release in which no face is found any more: undefined, not an error
            extra = {
                "no_features_original": self._no_features_original,
                "no_features_anonymized": self._no_features_anonymized,
            }
            return self.measurement(Estimate(
                float("nan"), n=self.n_pairs, standard=False, reason=reason, extra=extra,
                method=f"undefined: {self._no_features_anonymized} anonymized images have no {desc} features "
                       f"(and {self._no_features_original} originals), fewer than 2 pairs left"), name)
        value, lo, hi, extra = self.frechet()
        extra.update(note="not FID: Frechet distance on other features, lower = closer distributions")
        return self.measurement(
            Estimate(
                value,
                lo,
                hi,
                self.n_pairs,
                f"Frechet distance on {desc} features, originals vs anonymized; CI: bootstrap over "
                f"image pairs, {extra['bootstrap_resamples']} resamples, shifted by the resampling bias (indicative)",
                standard=False,
                reason=reason,
                extra=extra,
            ),
            name,
        )


def _check_common(owner: object, max_pairs: int, n_bootstrap: int) -> None:
    check_range(owner, "max_pairs", max_pairs, ge=2, integer=True)
    check_range(owner, "n_bootstrap", n_bootstrap, ge=0, integer=True)
