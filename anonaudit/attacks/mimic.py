"""What a learning intruder trains on: its own plates, anonymized the way the release was.

The learned plate attacks (:mod:`~anonaudit.attacks.parrot_ocr`, :mod:`~anonaudit.attacks.restore`)
make training pairs from plates the attacker holds: synthetic plates it renders itself
(:func:`~anonaudit.data.synthetic_plates.synthetic_plates`, as many as it likes, with a seed of its
own) and the auxiliary real plates of the audit. Each is anonymized by the release's method as
the attacker can reproduce it (:func:`mimic_release`), in order:

1. ``target``: the target object that made the release, when it anonymizes new images (a classical
   method, or a trained target whose model is published with the release: its ``anonymize`` is
   called on the attacker's images);
2. ``declared``: the degradation operator the release declares (an external release), applied by
   the classical anonymizer of that operator;
3. ``estimated``: for a release that declares nothing, a mosaic estimated blind from the released
   plate regions (:func:`~anonaudit.attacks.inversion.estimate_grid`; the median block relative
   to the plate height), applied in the plate boxes;
4. ``identity``: nothing found: the attacker trains on its plates as they are.

Every result says which, in its notes.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from ..anonymizers.base import Anonymizer
from ..data.degradation import Degradation, PixelateOperator
from ..data.imageset import ImageSet, Release
from ..data.synthetic_plates import synthetic_plates
from ..errors import ConfigError
from ..models.ocr import plate_crop
from ..models.restorer import resize_to
from ..registry import ANONYMIZERS
from .inversion import estimate_grid
from .render_match import plate_region
from .text import normalize_plate

#: Where the attacker's anonymization comes from (see the module doc).
MIMIC_SOURCES = ("target", "declared", "estimated", "identity")


@dataclass(frozen=True)
class Mimic:
    """How the attacker anonymizes its own images: ``apply`` (``None``: the identity), ``source`` (one
    of :data:`MIMIC_SOURCES`) and a description for the notes."""

    apply: Callable[[ImageSet], ImageSet] | None
    source: str
    description: str

    def __call__(self, images: ImageSet) -> ImageSet:
        return images if self.apply is None else self.apply(images)


def operator_anonymizer(op: Degradation) -> Anonymizer | None:
    """The classical anonymizer applying ``op`` exactly (same strength, region, margin), or ``None``
    when no registered anonymizer of that kind takes the operator's fields."""
    if not op.kind or op.kind not in ANONYMIZERS:
        return None
    accepted = set(inspect.signature(ANONYMIZERS.get(op.kind)).parameters)
    params = {f.name: getattr(op, f.name) for f in fields(op) if f.name in accepted}
    if "color" in params:
        params["color"] = list(params["color"])
    try:
        return ANONYMIZERS.create(op.kind, **params)
    except ConfigError:
        return None


def estimate_mosaic(release: Release) -> tuple[PixelateOperator | None, str]:
    """A mosaic estimated blind from the released plate regions: the median block over the plates
    showing a grid, relative to the plate height, applied in the boxes; ``None`` when at most half show one."""
    ratios = []
    records = release.originals.records
    for i in range(len(release)):
        image = release.anonymized[i]
        plate = plate_region(records[i], image.shape)
        grid = estimate_grid(np.ascontiguousarray(image[plate.slices]))
        if grid is not None:
            ratios.append(grid[0] / max(1, plate.h))
    if len(ratios) * 2 <= len(release):
        return None, f"no mosaic grid found in {len(release) - len(ratios)} of {len(release)} released plate regions"
    ratio = float(np.median(ratios))
    return PixelateOperator(block=round(ratio, 4), region="boxes", relative=True), (
        f"mosaic grid found in {len(ratios)} of {len(release)} released plate regions"
    )


def mimic_release(release: Release) -> Mimic:
    """How the attacker reproduces the release's anonymization (see the module doc)."""
    target = release.anonymizer
    if target is not None and getattr(target, "applies_to_new_images", False):
        # A shallow copy: the target's networks are shared, its per-run attributes are not overwritten.
        return Mimic(lambda s: copy.copy(target).anonymize(s, show_progress=False), "target",
                     f"the target's own method {target.label()} applied to the attacker's plates")
    op = release.degradation
    if op is not None:
        anonymizer = operator_anonymizer(op)
        if anonymizer is None:
            return Mimic(None, "identity", f"the declared operator {op.describe()} has no classical anonymizer to "
                         "apply it: trained on the plates as they are")
        return Mimic(lambda s: anonymizer.anonymize(s, show_progress=False), "declared",
                     f"the declared operator {op.describe()} applied to the attacker's plates")
    estimated, how = estimate_mosaic(release)
    if estimated is None:
        return Mimic(None, "identity", f"blind estimate: {how}; trained on the plates as they are (identity)")
    anonymizer = operator_anonymizer(estimated)
    return Mimic(lambda s: anonymizer.anonymize(s, show_progress=False), "estimated",
                 f"blind estimate {estimated.describe()} ({how}) applied to the attacker's plates")


@dataclass
class TrainingPlates:
    """The attacker's training plates at one size: anonymized and clean crops (uint8, (n, h, w, 3)),
    normalised texts, how many are synthetic (the first ``n_synthetic``) and auxiliary, and the mimic."""

    anonymized: np.ndarray
    clean: np.ndarray
    texts: list[str]
    n_synthetic: int
    n_auxiliary: int
    mimic: Mimic

    def fingerprint(self, *parts: np.ndarray) -> str:
        """A hash of the training crops (``parts``, default the anonymized and the clean ones) and the
        texts: the identity of what a network trained on them learns."""
        h = hashlib.blake2b(digest_size=20)
        for part in parts or (self.anonymized, self.clean):
            h.update(np.ascontiguousarray(part).tobytes())
        h.update("\n".join(self.texts).encode())
        return h.hexdigest()

    def sampler(self, auxiliary_share: float | None) -> Callable[[np.random.Generator, int], np.ndarray]:
        """Draws ``n`` indices: uniformly over all plates, or ``auxiliary_share`` of them from the auxiliary ones."""
        n_syn, n_aux = self.n_synthetic, self.n_auxiliary

        def draw(rng: np.random.Generator, n: int) -> np.ndarray:
            if auxiliary_share is None or n_aux == 0 or n_syn == 0:
                return rng.integers(n_syn + n_aux, size=n)
            from_aux = rng.random(n) < auxiliary_share
            return np.where(from_aux, n_syn + rng.integers(n_aux, size=n), rng.integers(n_syn, size=n))

        return draw


def crops(images: ImageSet, records: Sequence, size: tuple[int, int], margin: float) -> np.ndarray:
    """The plate crop of every image (the box of its record grown by ``margin``) at ``size``."""
    return np.stack([resize_to(plate_crop(images[i], records[i], margin), size) for i in range(len(images))])


def training_plates(
    release: Release,
    auxiliary: ImageSet | None,
    synthetic: int,
    synthetic_params: dict | None,
    seed: int,
    size: tuple[int, int],
    margin: float,
) -> TrainingPlates:
    """Render ``synthetic`` plates (seeded by ``seed``, ``synthetic_params`` passed to
    :func:`synthetic_plates`), add the auxiliary plates with a text, anonymize both as the release
    was (:func:`mimic_release`) and crop their plate regions at ``size``."""
    mimic = mimic_release(release)
    sets = []
    if synthetic:
        sets.append(synthetic_plates(int(synthetic), seed=int(seed), **(synthetic_params or {})))
    labelled = [] if auxiliary is None else [i for i, t in enumerate(auxiliary.texts) if normalize_plate(t)]
    if labelled:
        sets.append(auxiliary.subset(labelled))
    if not sets:
        raise ConfigError("learned plate attack: nothing to train on (synthetic=0 and no auxiliary plates with text)")
    anonymized, clean, texts = [], [], []
    for s in sets:
        released = mimic(s)
        anonymized.append(crops(released, s.records, size, margin))
        clean.append(crops(s, s.records, size, margin))
        texts += [normalize_plate(t) for t in s.texts]
    n_syn = int(synthetic) if synthetic else 0
    return TrainingPlates(np.concatenate(anonymized), np.concatenate(clean), texts, n_syn, len(texts) - n_syn, mimic)
