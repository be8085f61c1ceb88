"""The learned face attackers' anonymizer: how the intruder makes anonymized photos of its own.

A learned attacker (the parrot classifier, the restorer) trains on photos it anonymized itself, so
it needs the release's method in a form that runs on new images. In order of preference:

1. the target object itself, when the release carries one that anonymizes new images (the method
   is published with its code and, for a trained method, its weights);
2. the public method re-created from the registry with the release's parameters
   (:func:`~anonaudit.attacks.face_common.public_anonymizer`);
3. the declared degradation operator (:mod:`anonaudit.data.degradation`) as the classical
   anonymizer that applies it. An operator declared inside boxes is applied inside each photo's own
   boxes, or, for photos that carry none, inside the median released box (relative to the image size):
   the attacker places the region where the release placed it.

Without any of these the attacker cannot make training data, and says why.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from ..data.degradation import Degradation
from ..data.imageset import Box, ImageSet, Release
from ..registry import ANONYMIZERS
from .face_common import public_anonymizer

#: Declared operator kind -> the registered classical anonymizer that applies it.
OPERATOR_ANONYMIZERS = {
    "gaussian_blur": "gaussian_blur",
    "box_blur": "box_blur",
    "pixelate": "pixelate",
    "mask": "mask",
    "noise": "noise",
}


def typical_box(images: ImageSet) -> tuple[float, float, float, float] | None:
    """Median first box of ``images``' records relative to the image size ``(x, y, w, h)``, or None."""
    rel = []
    for i, record in enumerate(images.records):
        if record.boxes:
            h, w = images[i].shape[:2]
            b = record.boxes[0]
            rel.append((b.x / w, b.y / h, b.w / w, b.h / h))
    return tuple(float(v) for v in np.median(np.asarray(rel), axis=0)) if rel else None


class OperatorAnonymizer:
    """A declared operator applied to new photos (inside their boxes, or the release's typical box)."""

    def __init__(self, operator: Degradation, box: tuple[float, float, float, float] | None):
        params = {f.name: getattr(operator, f.name) for f in dataclasses.fields(operator)}
        cls = ANONYMIZERS.get(OPERATOR_ANONYMIZERS[operator.kind])
        accepted = set(inspect.signature(cls.__init__).parameters)
        if "color" in params:
            params["color"] = list(params["color"])
        self.method = ANONYMIZERS.create(cls.name, **{k: v for k, v in params.items() if k in accepted})
        self.operator = operator
        self.box = box

    def label(self) -> str:
        return self.method.label()

    def _marked(self, images: ImageSet) -> ImageSet:
        if self.operator.region != "boxes" or self.box is None:
            return images
        records = []
        for i, record in enumerate(images.records):
            if not record.boxes:
                h, w = images[i].shape[:2]
                x, y, bw, bh = self.box
                box = Box(round(x * w), round(y * h), max(1, round(bw * w)), max(1, round(bh * h)), "face").clip(w, h)
                record = dataclasses.replace(record, boxes=(box,))
            records.append(record)
        return ImageSet(records, [images[i] for i in range(len(images))], name=images.name)

    def anonymize(self, images: ImageSet, show_progress: bool = False) -> ImageSet:
        """The operator applied to every image (labels kept)."""
        out = self.method.anonymize(self._marked(images), show_progress=show_progress)
        return images.with_images([out[i] for i in range(len(out))], name=f"{images.name}:{self.label()}")


def attacker_anonymizer(release: Release):
    """What the intruder anonymizes its own photos with (see the module docstring) and how it got it;
    ``(None, reason)`` when it has nothing that anonymizes new images."""
    target = release.anonymizer
    if target is not None and getattr(target, "applies_to_new_images", False):
        return target, f"the target's own anonymizer {target.label()} (the published method)"
    anonymizer, why = public_anonymizer(release)
    if anonymizer is not None:
        return anonymizer, f"the public method {anonymizer.label()}, re-created from the registry"
    op = release.degradation
    if op is not None and op.kind in OPERATOR_ANONYMIZERS:
        replay = OperatorAnonymizer(op, typical_box(release.anonymized))
        return replay, f"the declared operator {op.describe()}"
    declared = "declares no operator" if op is None else f"declares {op.kind}, which has no classical anonymizer"
    return None, f"{why}; and the release {declared}"
