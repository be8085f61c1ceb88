"""Face detection rate, identity distance (paper 004's ID_DIS) and the detector-miss attack, on
hand-countable synthetic cases and on LFW with MTCNN / dlib."""

from __future__ import annotations

import numpy as np
import pytest
from face_data import lfw_people, needs_lfw, square_image, synthetic_identities

from anonaudit.anonymizers.classical import Mask, Noise
from anonaudit.anonymizers.face_regions import FaceMask, FacePixelate
from anonaudit.attacks.detector_miss import DetectorMiss, box_similarity
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.errors import ConfigError, MismatchError
from anonaudit.evaluators.face_detection import FaceDetectionRate
from anonaudit.evaluators.identity import IdentityDistance
from anonaudit.registry import ATTACKS, EVALUATORS
from anonaudit.stats import wilson_interval

BIG, SMALL = Box(10, 12, 30, 30), Box(20, 20, 12, 12)


def _squares(boxes: list[Box | None]) -> ImageSet:
    return ImageSet.from_arrays(
        [square_image(box=b, seed=i) for i, b in enumerate(boxes)], [f"k{i}" for i in range(len(boxes))]
    )


def _blackout(images: ImageSet, which: set[int]) -> ImageSet:
    out = []
    for i in range(len(images)):
        img = images[i].copy()
        if i in which:
            img[np.all(img == 255, axis=2)] = 0
        out.append(img)
    return images.with_images(out)


# -- face detection rate -------------------------------------------------------------------------
def test_detection_rate_counts_images_with_a_face():
    originals = _squares([BIG] * 5)
    release = Release(originals, _blackout(originals, {1, 3}))
    ev = EVALUATORS.create("face_detection_rate", detector="test_white_square")
    m = ev(release, batch_size=2)  # streamed in batches
    est = m.release
    assert est.value == pytest.approx(3 / 5) and est.n == 5
    assert (est.ci_low, est.ci_high) == pytest.approx(wilson_interval(3, 5))
    assert est.extra["detected"] == 3 and m.metric == "face_detection_rate_test_white_square"
    assert (m.original.value, m.original.n) == (1.0, 5) and m.original.ci_low == pytest.approx(wilson_interval(5, 5)[0])
    assert m.higher_is_better


# -- identity distance ---------------------------------------------------------------------------
def test_identity_distance_known_answers_with_pixel_embeddings():
    faces = synthetic_identities(4, 2, seed=5)
    inverted = faces.with_images([255 - faces[i] for i in range(len(faces))])
    grey = np.full((64, 64, 3), 100, np.uint8)
    partly_blank = faces.with_images([faces[i] if i % 2 else grey for i in range(len(faces))])
    ev = IdentityDistance(embedder="pixels")
    same = ev(Release(faces, faces)).release
    assert same.value == pytest.approx(0.0, abs=1e-6) and same.n == 8
    # Grey inversion negates every standardised pixel vector: cosine -1, distance 2.
    opposite = ev(Release(faces, inverted))
    assert opposite.release.value == pytest.approx(2.0, abs=1e-6) and opposite.metric == "identity_distance"
    assert opposite.original.value == 0.0 and opposite.original.n == 8  # an embedding's distance to itself
    blank = ev(Release(faces, partly_blank)).release
    assert blank.n == 4 and blank.extra["no_face_anonymized"] == 4 and blank.extra["no_face_original"] == 0
    assert not same.standard and "ArcFace" in same.reason


def test_identity_distance_parameters():
    with pytest.raises(ConfigError):
        IdentityDistance(box="somewhere")
    faces = synthetic_identities(2, 1, seed=1)
    with pytest.raises(ConfigError, match="detecting embedder"):
        IdentityDistance(embedder="pixels", box="original")(Release(faces, faces))


# -- detector-miss attack --------------------------------------------------------------------------
def test_faces_left_clear_hand_counted():
    originals = _squares([BIG, BIG, BIG, BIG, None])
    release = Release(originals, _blackout(originals, {0, 1, 2}))
    result = ATTACKS.create("detector_miss", detector="test_white_square").run(release)
    m = result.metric("faces_left_clear")
    assert m.release.value == pytest.approx(1 / 4) and m.release.n == 4  # the face-less image is not counted
    assert m.baseline == 0.0 and m.original.value == 1.0
    assert (m.release.ci_low, m.release.ci_high) == pytest.approx(wilson_interval(1, 4))
    assert list(result.details["left_clear"]) == [False, False, False, True]


def test_missed_by_the_anonymizers_own_detector():
    # The anonymizer's detector misses faces under 20 px; the strong detector finds them all.
    originals = _squares([BIG, SMALL, BIG, SMALL, SMALL, None])
    anonymizer = FaceMask(detector="test_big_white_square", margin=0.0)
    release = Release(
        originals, anonymizer.anonymize(originals, show_progress=False), "face_mask", anonymizer.get_params()
    )
    assert anonymizer.missed_ == ["k1", "k3", "k4", "k5"]
    result = DetectorMiss(detector="test_white_square").run(release)
    assert result.metric("faces_left_clear").release.value == pytest.approx(3 / 5)
    missed = result.metric("images_missed_by_anonymizer")
    assert missed.release.value == pytest.approx(3 / 5) and missed.release.n == 5
    assert any("found no face in 3 of 5 images" in n for n in result.notes)


def test_similarity_measures_and_thresholds():
    img = square_image(size=64, box=BIG, seed=3)
    noisy = Noise(std=1.0).anonymize(ImageSet.from_arrays([img]), show_progress=False)[0]
    box = Box(5, 5, 40, 40)
    assert box_similarity(img, img, box, "ssim") == pytest.approx(1.0)
    assert box_similarity(img, noisy, box, "ssim") > 0.95  # as recognisable as the original
    assert box_similarity(img, noisy, box, "mad") < 1.0
    masked = img.copy()
    masked[5:45, 5:45] = 0
    assert box_similarity(img, masked, box, "ssim") < 0.2
    assert DetectorMiss(measure="mad").threshold_value == 2.0
    with pytest.raises(ConfigError):
        DetectorMiss(measure="psnr")


def test_size_mismatch_names_the_image():
    originals = _squares([BIG])
    smaller = originals.with_images([originals[0][:40, :40]])
    with pytest.raises(MismatchError, match="k0"):
        DetectorMiss(detector="test_white_square").run(Release(originals, smaller))


# -- LFW ------------------------------------------------------------------------------------------
@needs_lfw
def test_lfw_mtcnn_detection_rate_and_dlib_identity_distance():
    faces = lfw_people(3, min_images=2)
    masked = Mask(region="image").anonymize(faces, show_progress=False)
    rate = FaceDetectionRate(detector="mtcnn")
    assert rate(Release(faces, faces)).release.value == 1.0
    gone = rate(Release(faces, masked))
    assert gone.release.value == 0.0 and gone.original.value == 1.0

    pixelated = FacePixelate(block=15).anonymize(faces, show_progress=False)
    same = IdentityDistance(embedder="dlib")(Release(faces, faces)).release
    assert same.value == pytest.approx(0.0, abs=1e-5) and same.n == len(faces)
    at_original_face = IdentityDistance(embedder="dlib", box="original")(Release(faces, pixelated)).release
    assert at_original_face.n == len(faces) and at_original_face.value > 0.05
    assert at_original_face.ci_low <= at_original_face.value <= at_original_face.ci_high
