"""Detector-miss audit: which faces did the anonymizer leave untouched?

A region anonymizer only protects the faces its own detector finds. This attack finds the faces in
the *originals* with a strong detector (default MTCNN) and checks each face box in the release: a
face is **left clear** when the released box is still structurally the same as the original, i.e.
the SSIM of the two grey-level boxes is at least ``threshold`` (default 0.95; ``measure="mad"``
instead uses the mean absolute difference in 0..255 grey levels, at most ``threshold``). SSIM is
used by default because it tolerates what does not hide a face (re-compression, a global brightness
change) and flags what does (blur, pixelation, masking); mild noise below about 2 grey levels keeps
a face "clear", which is the point: such a face is as recognisable as the original.

Metrics (higher = more leakage): ``faces_left_clear`` (share of detected faces, Wilson 95% CI;
baseline 0 = every face changed, original 1) counts every face, bystanders in the background
included; ``main_face_left_clear`` (share of images with a face, Wilson 95% CI, baseline 0, original
1) counts each image once, by its most prominent face in the original (``select="largest"``: the
largest box, ties by score; ``"score"``: the most confident detection; ``"center"``: the one nearest
the image centre), so a missed main subject is told apart from untouched bystanders. When the release was produced by a
face-region
anonymizer (records carry ``attributes["anonymized_faces"]``), also ``images_missed_by_anonymizer``:
the share of images with a face (per the strong detector) in which the anonymizer changed nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..anonymizers.face_regions import ANONYMIZED_FACES
from ..data.imageset import Box, Release
from ..errors import ConfigError, MismatchError
from ..models.faces.align import main_face
from ..registry import ATTACKS
from ..stats import Estimate, proportion
from .base import Attack, AttackMetric, AttackResult

MEASURES = ("ssim", "mad")
SELECT = ("largest", "score", "center")


def grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def box_similarity(original: np.ndarray, anonymized: np.ndarray, box: Box, measure: str) -> float:
    """SSIM (``skimage.metrics.structural_similarity``, data range 255, 7x7 window or the largest odd
    window that fits) or mean absolute difference of the grey-level ``box`` of both images."""
    ys, xs = box.slices
    a, b = grey(original[ys, xs]), grey(anonymized[ys, xs])
    if measure == "mad":
        return float(np.mean(np.abs(a - b)))
    from skimage.metrics import structural_similarity

    side = min(a.shape)
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(structural_similarity(a, b, data_range=255.0, win_size=win))


@ATTACKS.register("detector_miss")
class DetectorMiss(Attack):
    """Share of faces found in the originals (by a strong detector) that the release left clear."""

    criteria = ("singling_out", "linkability")  # a face left clear can be recognised
    attacker_holds = ("release",)

    param_alternatives = {"measure": ("mad",), "select": ("score", "center")}
    folder_audit = {"faces": {"detector": "mtcnn"}}

    def __init__(
        self, detector: str = "mtcnn", measure: str = "ssim", threshold: float | None = None, min_score: float = 0.9,
        select: str = "largest",
    ):
        if measure not in MEASURES:
            raise ConfigError(f"detector_miss: measure must be one of {MEASURES}, got {measure!r}")
        if select not in SELECT:
            raise ConfigError(f"detector_miss: select must be one of {SELECT}, got {select!r}")
        self.detector = detector
        self.measure = measure
        self.threshold = threshold
        self.min_score = min_score
        self.select = select

    @property
    def threshold_value(self) -> float:
        if self.threshold is not None:
            return float(self.threshold)
        return 0.95 if self.measure == "ssim" else 2.0

    def _clear(self, value: float) -> bool:
        return value >= self.threshold_value if self.measure == "ssim" else value <= self.threshold_value

    def run(self, release: Release) -> AttackResult:
        from ..models.faces.embedders import make_detector

        detections = make_detector(self.detector).detect(release.originals)
        rows = []
        for i, dets in enumerate(detections):
            original, anonymized = release.pair(i)
            if original.shape != anonymized.shape:
                raise MismatchError(
                    f"detector_miss compares face boxes pixel by pixel: '{release.keys[i]}' is {original.shape[1]}x"
                    f"{original.shape[0]} in the originals but {anonymized.shape[1]}x{anonymized.shape[0]} in "
                    "the release"
                )
            kept = [d for d in dets if d.score >= self.min_score and d.box.area > 0]
            main = main_face(kept, original.shape, self.select)
            for d in kept:
                value = box_similarity(original, anonymized, d.box, self.measure)
                rows.append(
                    {
                        "key": release.keys[i],
                        "x": d.box.x,
                        "y": d.box.y,
                        "w": d.box.w,
                        "h": d.box.h,
                        "score": d.score,
                        self.measure: value,
                        "left_clear": self._clear(value),
                        "main_face": d is main,
                    }
                )
        details = pd.DataFrame(
            rows, columns=["key", "x", "y", "w", "h", "score", self.measure, "left_clear", "main_face"]
        )
        with_face = details["key"].nunique() if len(details) else 0
        rule = f"{self.measure.upper()} {'>=' if self.measure == 'ssim' else '<='} {self.threshold_value:g}"
        notes = [
            (
                f"{len(details)} faces (score >= {self.min_score:g}) found by {self.detector} in {with_face} of "
                f"{len(release)} originals; a face is left clear when its box has {rule}"
            )
        ]
        clear = proportion(details["left_clear"].to_numpy(bool), f"share of faces left clear ({rule}), Wilson 95% CI")
        n = len(details)
        metrics = [
            AttackMetric(
                "faces_left_clear",
                clear,
                Estimate(1.0, 1.0, 1.0, n, "every original face is clear"),
                0.0,
                "faces found in the originals that the release left clear",
            )
        ]
        main = details[details["main_face"].astype(bool)]
        metrics.append(
            AttackMetric(
                "main_face_left_clear",
                proportion(
                    main["left_clear"].to_numpy(bool),
                    f"share of images whose main face ({self.select}) was left clear ({rule}), Wilson 95% CI",
                ),
                Estimate(1.0, 1.0, 1.0, len(main), "every original face is clear"),
                0.0,
                f"images whose most prominent face ({self.select}) the release left clear",
            )
        )
        others = details[~details["main_face"].astype(bool)]
        notes.append(
            f"main faces left clear in {int(main['left_clear'].sum())} of {len(main)} images; other faces "
            f"(bystanders) left clear: {int(others['left_clear'].sum())} of {len(others)}"
        )
        counts = release.anonymized.attribute(ANONYMIZED_FACES)
        if all(c is not None for c in counts) and with_face:
            face_keys = set(details["key"])
            missed = [int(counts[i]) == 0 for i, k in enumerate(release.keys) if k in face_keys]
            metrics.append(
                AttackMetric(
                    "images_missed_by_anonymizer",
                    proportion(
                        missed, "share of images with a face where the anonymizer's detector found none, Wilson 95% CI"
                    ),
                    Estimate(1.0, 1.0, 1.0, len(missed), "nothing is anonymized in the originals"),
                    0.0,
                    "images released unchanged because the anonymizer's detector found no face",
                )
            )
            notes.append(
                f"the anonymizer's detector found no face in {sum(missed)} of {len(missed)} images with a face: "
                "released as they are"
            )
        return AttackResult(self.name, metrics, details, notes)
