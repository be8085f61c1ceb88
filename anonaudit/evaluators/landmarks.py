"""Landmark and head-pose preservation between original and anonymized faces (dlib 68 points).

``landmark_error``: mean distance between the 68 landmarks found on the original face and on the
anonymized face, divided by the original's inter-ocular distance (outer eye corners, the 300-W
normalisation), averaged over images with a bootstrap 95% CI; an anonymized image of another size is
compared after scaling its landmarks to the original's frame. ``pose_difference``: mean absolute
yaw/pitch/roll difference in degrees, head pose from ``cv2.solvePnP`` on the 68 landmarks with a
generic 3D face. Both are lower-is-better. Each also reports its parts as named measurements:
``landmark_error_<part>`` for the jaw, eyebrows, nose, eyes and mouth points of the 68-point scheme
(same normalisation), ``pose_difference_<yaw|pitch|roll>`` in degrees. Images where no face is found
(on the original, or on the anonymized image when its own detection is used), and pairs whose pose
cannot be solved, are counted in the details (``Estimate.extra``) of the main measurement.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.imageset import Box, Release
from ..errors import ConfigError
from ..measurement import Measurement
from ..registry import EVALUATORS
from ..stats import mean_estimate
from .base import Evaluator

#: The 68-point (iBUG 300-W) landmark groups reported as parts of the landmark error.
LANDMARK_PARTS = {
    "jaw": slice(0, 17),
    "eyebrows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "mouth": slice(48, 68),
}


class FaceLandmarkEvaluator(Evaluator):
    """Shared part: find the main face on both sides, get 68 landmarks, score the pair.

    ``box="own"`` detects the face again on the anonymized image (a face the anonymizer destroyed
    counts as ``no_face_anonymized``); ``box="original"`` places the landmark predictor in the
    original's face box on both images (measures landmark drift even where detection fails).
    """

    higher_is_better = False
    method = ""
    #: names of the per-pair parts ``score`` returns, and how each part's mean is described
    parts: tuple[str, ...] = ()
    part_method = ""

    param_alternatives = {"select": ("first", "best"), "box": ("original",)}

    def __init__(self, detector: str = "dlib_hog", select: str = "largest", box: str = "own"):
        if box not in ("own", "original"):
            raise ConfigError(f"{type(self).__name__}: box must be 'own' or 'original', got {box!r}")
        self.detector = detector
        self.select = select
        self.box = box
        self._scores: list[float]
        self._parts: list[np.ndarray]
        self.add_state("_scores", [], merge="cat")
        self.add_state("_parts", [], merge="cat")
        for counter in ("_no_face_original", "_no_face_anonymized", "_unscored", "_pairs"):
            self.add_state(counter, 0, merge="sum")
        super().__init__()

    def score(
        self, original: np.ndarray, anonymized: np.ndarray, shape_o: tuple, shape_a: tuple
    ) -> tuple[float, np.ndarray] | None:
        """``(score, one value per part)`` of one pair of 68-point landmark sets (None: not computable)."""
        raise NotImplementedError

    def _main_boxes(self, images) -> list[Box | None]:
        from ..models.faces.align import main_face
        from ..models.faces.embedders import make_detector

        dets = make_detector(self.detector).detect(images)
        faces = [main_face(d, images[i].shape, self.select) for i, d in enumerate(dets)]
        return [f.box if f is not None else None for f in faces]

    def update(self, release: Release) -> None:
        from ..models.faces.dlib_models import face_landmarks68

        self._pairs += len(release)
        boxes_o = self._main_boxes(release.originals)
        boxes_a = boxes_o if self.box == "original" else [
            b if bo is not None else None for b, bo in zip(self._main_boxes(release.anonymized), boxes_o)
        ]
        lm_o = face_landmarks68(release.originals, boxes_o)
        lm_a = face_landmarks68(release.anonymized, boxes_a)
        for i in range(len(release)):
            if lm_o[i] is None:
                self._no_face_original += 1
            elif lm_a[i] is None:
                self._no_face_anonymized += 1
            else:
                scored = self.score(lm_o[i], lm_a[i], release.originals[i].shape, release.anonymized[i].shape)
                if scored is None:
                    self._unscored += 1
                else:
                    self._scores.append(scored[0])
                    self._parts.append(scored[1])

    def details(self) -> dict:
        """Counts of the pairs scored and not scored, shown next to the main value."""
        return {
            "pairs": self._pairs,
            "no_face_original": self._no_face_original,
            "no_face_anonymized": self._no_face_anonymized,
            "unscored": self._unscored,
            "detector": self.detector,
            "box": self.box,
        }

    def compute(self) -> list[Measurement]:
        main = dataclasses.replace(mean_estimate(self._scores, method=self.method), extra=self.details())
        parts = np.stack(self._parts) if self._parts else np.zeros((0, len(self.parts)))
        return [self.measurement(main)] + [
            self.measurement(
                mean_estimate(parts[:, j], method=self.part_method.format(part=part)), f"{self.name}_{part}"
            )
            for j, part in enumerate(self.parts)
        ]


@EVALUATORS.register("landmark_error")
class LandmarkError(FaceLandmarkEvaluator):
    """Normalised mean error (NME) of the anonymized face's 68 landmarks against the original's."""

    method = "mean 68-point landmark distance / inter-ocular distance (outer eye corners), bootstrap 95% CI"
    parts = tuple(LANDMARK_PARTS)
    part_method = "mean distance of the {part} landmarks / inter-ocular distance (outer eye corners), bootstrap 95% CI"

    def score(self, original, anonymized, shape_o, shape_a):
        from ..models.faces.dlib_models import OUTER_EYE_CORNERS

        a, b = OUTER_EYE_CORNERS
        iod = float(np.linalg.norm(original[a] - original[b]))
        # a release at another resolution is compared in the original's pixel frame
        anonymized = anonymized * np.array([shape_o[1] / shape_a[1], shape_o[0] / shape_a[0]])
        err = np.linalg.norm(original - anonymized, axis=1) / max(iod, 1e-6)
        return float(err.mean()), np.array([err[sl].mean() for sl in LANDMARK_PARTS.values()])


@EVALUATORS.register("pose_difference")
class PoseDifference(FaceLandmarkEvaluator):
    """Mean absolute head-pose difference (yaw, pitch, roll averaged), degrees."""

    method = "mean |yaw, pitch, roll difference| in degrees (solvePnP, 68 points, generic 3D face), bootstrap 95% CI"
    parts = ("yaw", "pitch", "roll")
    part_method = "mean |{part} difference| in degrees (solvePnP, 68 points, generic 3D face), bootstrap 95% CI"

    def score(self, original, anonymized, shape_o, shape_a):
        from ..models.faces.pose import angle_difference, head_pose

        try:
            diff = angle_difference(head_pose(original, shape_o), head_pose(anonymized, shape_a))
        except ValueError:  # no pose in front of the camera fits these landmarks
            return None
        return float(diff.mean()), diff
