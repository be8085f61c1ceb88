"""Detector-miss per image: the share of images whose most prominent face was left clear, told
apart from bystander faces, on hand-countable images with several white-square 'faces'."""

from __future__ import annotations

import numpy as np
import pytest
from face_data import square_image

from anonaudit.attacks.detector_miss import DetectorMiss
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.errors import ConfigError
from anonaudit.models.faces.base import Detection, FaceDetector
from anonaudit.registry import DETECTORS
from anonaudit.stats import wilson_interval

BIG, SMALL = Box(30, 10, 28, 28), Box(4, 40, 12, 12)  # the small face sits further left


class WhiteBlobDetector(FaceDetector):
    """One detection per connected region of pure-white pixels; the further left, the more confident."""

    def detect_arrays(self, images):
        from scipy import ndimage

        out = []
        for img in images:
            labels, _ = ndimage.label(np.all(img == 255, axis=2))
            dets = []
            for ys, xs in ndimage.find_objects(labels):
                box = Box(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start, "face")
                dets.append(Detection(box, 0.99 - box.x / 1000, None))
            out.append(sorted(dets, key=lambda d: -d.score))
        return out


if "test_white_blobs" not in DETECTORS:
    DETECTORS.register("test_white_blobs")(WhiteBlobDetector)


def faces(boxes: list[Box], seed: int) -> np.ndarray:
    img = square_image(box=None, seed=seed)
    for b in boxes:
        img[b.slices] = 255
    return img


def masked(img: np.ndarray, boxes: list[Box]) -> np.ndarray:
    out = img.copy()
    for b in boxes:
        out[b.slices] = 0
    return out


@pytest.fixture
def release() -> Release:
    # (faces in the original, faces the release masks)
    plan = [([BIG, SMALL], [BIG]), ([BIG, SMALL], [SMALL]), ([BIG], []), ([BIG], [BIG]), ([], []), ([BIG, SMALL], [])]
    originals = [faces(present, i) for i, (present, _) in enumerate(plan)]
    released = [masked(img, hidden) for img, (_, hidden) in zip(originals, plan)]
    keys = [f"k{i}" for i in range(len(plan))]
    return Release(ImageSet.from_arrays(originals, keys), ImageSet.from_arrays(released, keys))


def test_main_face_left_clear_hand_counted(release):
    result = DetectorMiss(detector="test_white_blobs").run(release)
    faces_clear = result.metric("faces_left_clear")
    assert faces_clear.release.value == pytest.approx(5 / 8) and faces_clear.release.n == 8
    main = result.metric("main_face_left_clear")
    # The largest face is the main one: left clear in k1, k2, k5 of the 5 images with a face (k4 has none).
    assert main.release.value == pytest.approx(3 / 5) and main.release.n == 5
    assert (main.release.ci_low, main.release.ci_high) == pytest.approx(wilson_interval(3, 5))
    assert main.original.value == 1.0 and main.original.n == 5 and main.baseline == 0.0
    d = result.details[result.details["main_face"]].set_index("key")
    assert d["left_clear"].to_dict() == {"k0": False, "k1": True, "k2": True, "k3": False, "k5": True}
    assert (d["w"] == BIG.w).all()
    assert any(
        "main faces left clear in 3 of 5 images; other faces (bystanders) left clear: 2 of 3" in n for n in result.notes
    )


def test_main_face_by_confidence(release):
    # By score the small (left) face is the main one where there is one: k0 clear, k1 masked.
    result = DetectorMiss(detector="test_white_blobs", select="score").run(release)
    d = result.details[result.details["main_face"]].set_index("key")
    assert d["left_clear"].to_dict() == {"k0": True, "k1": False, "k2": True, "k3": False, "k5": True}
    assert result.metric("main_face_left_clear").release.value == pytest.approx(3 / 5)
    assert result.metric("faces_left_clear").release.value == pytest.approx(5 / 8)
    with pytest.raises(ConfigError, match="select must be one of"):
        DetectorMiss(select="first")
