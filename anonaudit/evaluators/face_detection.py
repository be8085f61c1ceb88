"""Face detection rate after anonymization (paper 004, Table 1): is the face still a face?

``face_detection_rate``: the share of anonymized images in which ``detector`` (``"mtcnn"`` or
``"dlib_hog"``, as in the paper) finds at least one face, with a Wilson 95% CI. Higher is better
utility (downstream face pipelines still work). The same rate on the originals is reported as
``extra["original"]`` (the paper's "Original" row).
"""

from __future__ import annotations

from ..data.imageset import Release
from ..registry import EVALUATORS
from ..stats import Estimate, proportion
from .base import Evaluator


@EVALUATORS.register("face_detection_rate")
class FaceDetectionRate(Evaluator):
    """Share of anonymized images with >= 1 detected face (and the same on the originals)."""

    higher_is_better = True

    def __init__(self, detector: str = "mtcnn", min_score: float = 0.0):
        self.detector = detector
        self.min_score = min_score
        super().__init__()

    def reset(self) -> None:
        self._anonymized: list[bool] = []
        self._original: list[bool] = []

    def _found(self, images) -> list[bool]:
        from ..models.faces.embedders import make_detector

        dets = make_detector(self.detector).detect(images)
        return [any(d.score >= self.min_score for d in ds) for ds in dets]

    def update(self, release: Release) -> None:
        self._anonymized += self._found(release.anonymized)
        self._original += self._found(release.originals)

    def compute(self) -> Estimate:
        est = proportion(self._anonymized, f"share of anonymized images with >= 1 face found by {self.detector}, Wilson 95% CI")
        original = proportion(self._original)
        extra = {
            "original": original.value,
            "original_ci_low": original.ci_low,
            "original_ci_high": original.ci_high,
            "detected": int(sum(self._anonymized)),
            "metric_name": f"face_detection_rate_{self.detector}",
        }
        return Estimate(est.value, est.ci_low, est.ci_high, est.n, est.method, extra=extra)
