"""Face detectors (MTCNN, dlib HOG) on real LFW faces: boxes, landmarks, ordering, clipping, memo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import anonaudit.models.faces  # noqa: F401  (registers detectors)
from anonaudit.data.imageset import ImageSet
from anonaudit.models.faces.base import FaceDetector
from anonaudit.models.faces.mtcnn import box_from_corners
from anonaudit.registry import DETECTORS

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
needs_lfw = pytest.mark.shared_data("lfw")


pytestmark = pytest.mark.usefixtures("one_torch_thread")



def test_both_detectors_are_registered():
    assert {"mtcnn", "dlib_hog"} <= set(DETECTORS.names())


def test_box_from_corners_is_the_covering_integer_box_clipped():
    assert box_from_corners(10.2, 5.7, 50.1, 60.0, 100, 100).slices == (slice(5, 60), slice(10, 51))
    clipped = box_from_corners(-4.5, 80.2, 30.0, 130.9, 40, 100)
    assert (clipped.x, clipped.y, clipped.w, clipped.h) == (0, 80, 30, 20)


@needs_lfw
@pytest.mark.parametrize("name", ["mtcnn", "dlib_hog"])
def test_detects_the_centred_lfw_face_with_plausible_landmarks(name, faces):
    dets = DETECTORS.create(name).detect(faces)
    assert len(dets) == len(faces)
    for img, found in zip(faces, dets):
        assert found, "LFW's centred face must be found"
        assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
        h, w = img.shape[:2]
        best = max(found, key=lambda d: d.box.area)
        b = best.box
        assert b.x <= w / 2 <= b.x + b.w and b.y <= h / 2 <= b.y + b.h  # deep-funneled LFW centres the face
        assert 60 <= b.w <= 200
        lm = best.landmarks
        assert lm.shape == (5, 2)
        left_eye, right_eye, nose, mouth_l, mouth_r = lm
        assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
        assert np.all((lm[:, 0] >= b.x) & (lm[:, 0] <= b.x + b.w) & (lm[:, 1] >= b.y) & (lm[:, 1] <= b.y + b.h))
        for d in found:
            assert d.box.x >= 0 and d.box.y >= 0 and d.box.x + d.box.w <= w and d.box.y + d.box.h <= h


@needs_lfw
def test_mtcnn_and_dlib_landmarks_agree(faces):
    a = DETECTORS.create("mtcnn").detect(faces)
    b = DETECTORS.create("dlib_hog").detect(faces)
    for da, db in zip(a, b):
        la = max(da, key=lambda d: d.box.area).landmarks
        lb = max(db, key=lambda d: d.box.area).landmarks
        iod = np.linalg.norm(la[1] - la[0])
        assert np.linalg.norm(la[:2] - lb[:2], axis=1).max() < 0.2 * iod  # eye centres of two independent models


@pytest.mark.parametrize("name", ["mtcnn", "dlib_hog"])
def test_no_face_in_a_flat_image(name):
    flat = ImageSet.from_arrays([np.full((120, 100, 3), 128, np.uint8), np.zeros((64, 64, 3), np.uint8)])
    assert DETECTORS.create(name).detect(flat) == [[], []]


@needs_lfw
@pytest.mark.parametrize("name", ["mtcnn", "dlib_hog"])
def test_face_cut_by_the_border_gets_a_clipped_box(name, faces):
    img = faces[0]
    cut = np.ascontiguousarray(img[115:, 20:])  # face's upper half removed, image 135 x 230
    found = DETECTORS.create(name).detect(ImageSet.from_arrays([cut]))[0]
    for d in found:
        assert d.box.x >= 0 and d.box.y >= 0
        assert d.box.x + d.box.w <= cut.shape[1] and d.box.y + d.box.h <= cut.shape[0]


@needs_lfw
def test_mtcnn_batches_of_mixed_sizes_equal_single_image_runs(faces):
    det = DETECTORS.create("mtcnn")
    images = [faces[0], np.ascontiguousarray(faces[1][20:230, 30:220])]
    batched = det.detect_arrays(images)
    single = [det.detect_arrays([im])[0] for im in images]
    for b, s in zip(batched, single):
        assert [d.box for d in b] == [d.box for d in s]
        np.testing.assert_allclose([d.score for d in b], [d.score for d in s], atol=1e-5)


@needs_lfw
def test_detections_are_memoised_per_image_content(faces):
    calls: list[int] = []

    class Counting(type(DETECTORS.create("dlib_hog"))):
        name = "dlib_hog"

        def detect_arrays(self, images):
            calls.append(len(images))
            return super().detect_arrays(images)

    det: FaceDetector = Counting(upsample=0)
    twice = ImageSet.from_arrays([faces[3], faces[3].copy()], keys=["a", "b"])
    first = det.detect(twice)
    again = det.detect(ImageSet.from_arrays([faces[3]]))
    assert calls == [1]  # identical pixels are computed once, and never again
    assert [d.box for d in first[0]] == [d.box for d in first[1]] == [d.box for d in again[0]]
