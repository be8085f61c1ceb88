"""Face detection rate after anonymization (paper 004, Table 1): is the face still a face?

``face_detection_rate``: the share of anonymized images in which ``detector`` (``"mtcnn"`` or
``"dlib_hog"``, as in the paper) finds at least one face, with a Wilson 95% CI. Higher is better
utility (downstream face pipelines still work). The measurement is named
``face_detection_rate_<detector>``; its ``original`` is the same rate on the originals (the paper's
"Original" row).
"""

from __future__ import annotations

import dataclasses

from ..data.imageset import Release
from ..measurement import Measurement
from ..registry import EVALUATORS
from ..stats import proportion
from .base import Evaluator


@EVALUATORS.register("face_detection_rate")
class FaceDetectionRate(Evaluator):
    """Share of anonymized images with >= 1 detected face (and the same on the originals)."""

    higher_is_better = True
    folder_audit = {"faces": {"detector": "mtcnn"}}

    def __init__(self, detector: str = "mtcnn", min_score: float = 0.0):
        self.detector = detector
        self.min_score = min_score
        self._anonymized: list[bool]
        self._original: list[bool]
        self.add_state("_anonymized", [], merge="cat")
        self.add_state("_original", [], merge="cat")
        super().__init__()

    def _found(self, images) -> list[bool]:
        from ..models.faces.embedders import make_detector

        dets = make_detector(self.detector).detect(images)
        return [any(d.score >= self.min_score for d in ds) for ds in dets]

    def update(self, release: Release) -> None:
        self._anonymized += self._found(release.anonymized)
        self._original += self._found(release.originals)

    def compute(self) -> Measurement:
        est = proportion(
            self._anonymized, f"share of anonymized images with >= 1 face found by {self.detector}, Wilson 95% CI"
        )
        est = dataclasses.replace(est, extra={"detected": int(sum(self._anonymized))})
        original = proportion(
            self._original, f"share of original images with >= 1 face found by {self.detector}, Wilson 95% CI"
        )
        return self.measurement(est, f"face_detection_rate_{self.detector}", original=original)
