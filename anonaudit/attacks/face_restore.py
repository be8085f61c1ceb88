"""Learned restoration, then the usual face attacks: ``restore_then_reid`` and ``restore_then_gender``.

**Attacker model.** The intruder holds identity-disjoint auxiliary face photos (the audit's
auxiliary split) and the release's method in a form it can run on them
(:func:`~anonaudit.attacks.replay.attacker_anonymizer`: the target object when the release carries
one, else the public method from the registry, else the declared operator; for a ready-made
release, the release's own files of the auxiliary people). It anonymizes its photos, trains a small
residual U-Net (:mod:`anonaudit.models.restorer`, L1 loss, pix2pix-style without the adversary) to
map each anonymized face back to its original, restores every released face with it, and runs the
existing attack on the restored release:

- ``restore_then_reid``: re-identification (:class:`~anonaudit.attacks.reid.ReIdentification`,
  rank-k, TAR@FAR, ROC AUC, 1 - EER and open-set DIR; the open-set threshold is set on the restored
  auxiliary searches);
- ``restore_then_gender``: gender inference (:class:`~anonaudit.attacks.attribute.GenderInference`,
  by default adaptive: its classifier is trained on the restored auxiliary images).

**What is restored.** The centred square crop whose side is ``crop`` of the image's shorter side
(where an aligned face photo such as LFW holds the face), resized to ``size`` x ``size``; the
restored crop is resized back and pasted into the released image, the rest of which is kept.

Metrics are the inner attack's, under this attack's name (``restore_then_reid/rank1``), each with
the restorer's training seconds and steps in its ``extra``; the notes give the attacker's anonymizer
and the training cost. The trained restorer is cached (:mod:`anonaudit.models.small_nets`) by the
target, the auxiliary images, the seed and the budget.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.imageset import ImageSet, Release
from ..errors import DataError
from ..models.faces.pixels import centre_box
from ..models.restorer import Restorer, check_size, resize_to, train_restorer
from ..models.small_nets import cache_key
from ..params import check_range
from ..registry import ATTACKS
from .attribute import GenderInference
from .base import Attack, AttackResult
from .face_common import anonymized_auxiliary, check_disjoint
from .learned import budget, check_threads, images_digest, torch_threads
from .reid import ReIdentification
from .replay import attacker_anonymizer


def centre_crops(images: ImageSet, fraction: float, size: int) -> np.ndarray:
    """``(n, size, size, 3)`` uint8: each image's centred square crop (side ``fraction`` of the shorter side)."""
    out = []
    for i in range(len(images)):
        image = images[i]
        ys, xs = centre_box(image.shape, fraction).slices
        out.append(resize_to(np.ascontiguousarray(image[ys, xs]), (size, size)))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def paste_restored(images: ImageSet, restored: np.ndarray, fraction: float) -> ImageSet:
    """``images`` with each centre crop replaced by its restored version (resized back)."""
    out = []
    for i in range(len(images)):
        image = images[i].copy()
        box = centre_box(image.shape, fraction)
        ys, xs = box.slices
        image[ys, xs] = resize_to(restored[i], (box.h, box.w))
        out.append(image)
    return images.with_images(out, name=f"{images.name}:restored")


class RestoreThen(Attack):
    """Shared part: train the restorer on the attacker's anonymized auxiliary photos, restore the release,
    run :meth:`inner` on it."""

    needs = ("anonymized_auxiliary",)

    def _check_restorer(self) -> None:
        budget(self.name, self.steps, self.max_seconds, self.batch_size, self.lr)
        check_threads(self.name, self.threads)
        check_size(self.size, self.depth)
        check_range(self, "crop", self.crop, gt=0, le=1)
        check_range(self, "width", self.width, ge=1, integer=True)
        check_range(self, "depth", self.depth, ge=1, integer=True)

    def inner(self) -> Attack:
        """The attack run on the restored release."""
        raise NotImplementedError

    def fit(self, auxiliary: ImageSet | None = None) -> RestoreThen:
        """Keep the intruder's auxiliary photos (training happens in :meth:`run`, once the release's
        method is known)."""
        if auxiliary is None or len(auxiliary) == 0:
            raise DataError(f"attack '{self.name}' needs auxiliary face photos to train its restorer on")
        self.auxiliary_ = auxiliary
        return self

    def _anonymized_auxiliary(self, release: Release) -> tuple[ImageSet, ImageSet, str]:
        """The auxiliary photos that have an anonymized version, that version, and how it was made."""
        anonymizer, how = attacker_anonymizer(release)
        if anonymizer is not None:
            return self.auxiliary_, anonymizer.anonymize(self.auxiliary_, show_progress=False), how
        anon, why = anonymized_auxiliary(release, self.auxiliary_)
        if anon is None:
            raise DataError(f"attack '{self.name}' cannot make training pairs: {how}; {why}")
        held = self.auxiliary_.subset([self.auxiliary_.index_of(k) for k in anon.keys])
        return held, anon, why

    def _restorer(self, release: Release, clear: ImageSet, anon: ImageSet) -> Restorer:
        x, y = centre_crops(anon, self.crop, self.size), centre_crops(clear, self.crop, self.size)

        def pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
            idx = rng.integers(0, len(x), n)
            flip = rng.random(n) < 0.5
            xb, yb = x[idx].copy(), y[idx].copy()
            xb[flip], yb[flip] = xb[flip, :, ::-1], yb[flip, :, ::-1]
            return xb, yb

        key = cache_key(target=release.name, params=release.params, clear=images_digest(clear),
                        anonymized=images_digest(anon), crop=self.crop, seed=self.seed)
        with torch_threads(self.threads):
            return train_restorer(pairs, self.size, self.steps, int(self.seed), batch_size=self.batch_size,
                                  lr=float(self.lr), max_seconds=self.max_seconds, width=self.width,
                                  depth=self.depth, cache_key=key)

    def _restore(self, restorer: Restorer, images: ImageSet) -> ImageSet:
        with torch_threads(self.threads):
            restored = restorer.restore(list(centre_crops(images, self.crop, self.size)))
        return paste_restored(images, np.stack(restored), self.crop)

    def restored_release(self, release: Release) -> tuple[Release, Restorer, int, str]:
        """The release with every face restored (its auxiliary searches too: the auxiliary photos
        anonymized and restored), the trained restorer, the number of training photos and how they
        were anonymized."""
        if not hasattr(self, "auxiliary_"):
            raise DataError(f"attack '{self.name}' was not fitted: call fit(auxiliary) first")
        clear, anon, how = self._anonymized_auxiliary(release)
        restorer = self._restorer(release, clear, anon)
        restored = Release(release.originals, self._restore(restorer, release.anonymized), name="", params={},
                           auxiliary=self._restore(restorer, anon))
        return restored, restorer, len(clear), how

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        if hasattr(self, "auxiliary_"):
            check_disjoint(self.auxiliary_, release, self.name)
        restored, restorer, n_clear, how = self.restored_release(release)
        result = self.inner().fit(self.auxiliary_).run(restored)
        cost = {"training_seconds": round(restorer.cost.seconds, 2), "training_steps": restorer.cost.steps,
                "weights_cached": restorer.cost.cached}
        metrics = [dataclasses.replace(m, release=dataclasses.replace(m.release, extra={**m.release.extra, **cost}),
                                       description=f"{m.description}, on the release restored by a learned U-Net")
                   for m in result.metrics]
        notes = [
            (f"restorer: U-Net (width {self.width}, depth {self.depth}) on {self.size}x{self.size} centre crops "
            f"({self.crop:g} of the shorter side), trained on {n_clear} auxiliary photos anonymized with {how}; "
            f"{restorer.cost.describe()}"),
            *result.notes,
        ]
        return AttackResult(self.name, metrics, result.details, notes, result.findings)


@ATTACKS.register("restore_then_reid")
class RestoreThenReid(RestoreThen):
    """Re-identification of faces restored by a U-Net the attacker trained on its own anonymized photos."""

    requires = ("identity",)
    criteria = ("singling_out", "linkability")
    attacker_holds = ("release", "method", "auxiliary", "gallery_other", "face_model")
    attacker_trains = "a U-Net restorer on its auxiliary photos anonymized by the method, paired with the clear ones"
    param_alternatives = {"embedder": ("pixels",), "gallery": ("other_images",)}
    test_params = {"steps": 2, "size": 16, "width": 4, "depth": 1, "embedder": "pixels", "threads": 1}

    def __init__(
        self,
        steps: int = 1500,
        max_seconds: float | None = 900.0,
        batch_size: int = 16,
        lr: float = 2e-3,
        size: int = 64,
        width: int = 16,
        depth: int = 2,
        crop: float = 0.6,
        embedder: str | dict = "dlib",
        gallery: str = "other_images",
        open_set_far: float | None = 0.01,
        n_boot: int = 200,
        threads: int | None = None,
        seed: int = 0,
    ):
        self.steps, self.max_seconds, self.batch_size, self.lr = steps, max_seconds, batch_size, lr
        self.size, self.width, self.depth, self.crop = size, width, depth, crop
        self.embedder, self.gallery, self.open_set_far, self.n_boot = embedder, gallery, open_set_far, n_boot
        self.threads, self.seed = threads, seed
        self._check_restorer()
        self.inner()  # the re-identification parameters are checked by their own constructor

    def inner(self) -> ReIdentification:
        return ReIdentification(embedder=self.embedder, gallery=self.gallery, open_set_far=self.open_set_far,
                                n_boot=self.n_boot, seed=self.seed)


@ATTACKS.register("restore_then_gender")
class RestoreThenGender(RestoreThen):
    """Gender inference on faces restored by a U-Net the attacker trained on its own anonymized photos."""

    criteria = ("inference",)
    attacker_holds = ("release", "method", "auxiliary", "face_model")
    attacker_trains = ("a U-Net restorer on its auxiliary photos anonymized by the method, paired with the clear ones; "
                       "a classifier of the attribute on the auxiliary faces")
    param_alternatives = {"embedder": ("pixels",), "features": ("pixels",), "attribute": ("smiling",)}
    test_params = {"steps": 2, "size": 16, "width": 4, "depth": 1, "features": "pixels", "threads": 1}

    def __init__(
        self,
        steps: int = 1500,
        max_seconds: float | None = 900.0,
        batch_size: int = 16,
        lr: float = 2e-3,
        size: int = 64,
        width: int = 16,
        depth: int = 2,
        crop: float = 0.6,
        features: str = "embedding",
        embedder: str | dict = "dlib",
        attribute: str = "gender",
        adaptive: bool = True,
        n_boot: int = 1000,
        threads: int | None = None,
        seed: int = 0,
    ):
        self.steps, self.max_seconds, self.batch_size, self.lr = steps, max_seconds, batch_size, lr
        self.size, self.width, self.depth, self.crop = size, width, depth, crop
        self.features, self.embedder, self.attribute, self.adaptive = features, embedder, attribute, adaptive
        self.n_boot, self.threads, self.seed = n_boot, threads, seed
        self._check_restorer()
        self.inner()

    def inner(self) -> GenderInference:
        return GenderInference(features=self.features, embedder=self.embedder, attribute=self.attribute,
                               adaptive=self.adaptive, n_boot=self.n_boot, seed=self.seed)
