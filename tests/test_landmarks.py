"""Landmark / pose preservation: pose solver on exact projections, zero on identical images, growth
with known shifts, scalings and rotations, and honest counts of faces not found."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from shared_data import shared_path

import anonaudit.evaluators.landmarks  # noqa: F401  (registers evaluators)
from anonaudit.data.imageset import ImageSet, Release
from anonaudit.models.faces.pose import FACE_MODEL_68, angle_difference, camera_matrix, head_pose, matrix_from_euler
from anonaudit.registry import EVALUATORS

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"
FILES = [
    "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "Abdel_Nasser_Assidi/Abdel_Nasser_Assidi_0001.jpg",
    "AJ_Cook/AJ_Cook_0001.jpg",
    "Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
]


@pytest.fixture(scope="module")
def faces() -> ImageSet:
    shared_path("lfw/images")
    from anonaudit.data.io import read_image

    return ImageSet.from_arrays([read_image(LFW / f) for f in FILES], keys=FILES)


def warp(images: ImageSet, angle: float = 0.0, scale: float = 1.0, shift: float = 0.0) -> ImageSet:
    """Rotate/scale about the image centre, then shift right, with edge replication."""

    def one(im, rec):
        h, w = im.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        m[0, 2] += shift
        return cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return images.map(one)


def measure(name: str, originals: ImageSet, anonymized: ImageSet, **params) -> dict:
    """Every measurement of the evaluator ``name``, by metric name."""
    return {m.metric: m for m in EVALUATORS.create(name, **params)(Release(originals, anonymized))}


def evaluate(name: str, originals: ImageSet, anonymized: ImageSet, **params):
    """The evaluator's main estimate."""
    return measure(name, originals, anonymized, **params)[name].release


# -- pose geometry ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, -10, 5), (-40, 15, -20), (10, 30, 45)])
def test_head_pose_recovers_the_rotation_of_a_projected_model(yaw, pitch, roll):
    rvec, _ = cv2.Rodrigues(matrix_from_euler(yaw, pitch, roll))
    pts, _ = cv2.projectPoints(FACE_MODEL_68, rvec, np.array([5.0, -8.0, 900.0]), camera_matrix(300, 240), np.zeros(4))
    np.testing.assert_allclose(head_pose(pts.reshape(-1, 2), (300, 240, 3)), (yaw, pitch, roll), atol=1e-3)


def test_frontal_model_projects_like_a_face():
    pts, _ = cv2.projectPoints(
        FACE_MODEL_68, np.zeros(3), np.array([0, 0, 800.0]), camera_matrix(250, 250), np.zeros(4)
    )
    p = pts.reshape(-1, 2)
    assert p[36, 0] < p[45, 0]  # outer eye corners left to right
    assert p[36, 1] < p[30, 1] < p[51, 1] < p[8, 1]  # eyes above nose tip above mouth above chin


def test_angle_difference_wraps_around():
    np.testing.assert_allclose(angle_difference([179.0, -90.0, 10.0], [-179.0, 90.0, 10.0]), [2.0, 180.0, 0.0])


def test_evaluators_are_registered_lower_is_better():
    for name in ("landmark_error", "pose_difference"):
        ev = EVALUATORS.create(name)
        assert ev.higher_is_better is False


# -- on real faces ------------------------------------------------------------------------------------------
def test_lfw_faces_are_upright_and_mirroring_negates_yaw_and_roll(faces):
    from anonaudit.models.faces.dlib_models import landmarks68
    from anonaudit.registry import DETECTORS

    mirrored = faces.map(lambda im, r: np.ascontiguousarray(im[:, ::-1]))
    poses = []
    for images in (faces, mirrored):
        dets = DETECTORS.create("dlib_hog").detect(images)
        poses.append(
            np.array(
                [
                    head_pose(landmarks68(images[i], max(d, key=lambda x: x.box.area).box), images[i].shape)
                    for i, d in enumerate(dets)
                ]
            )
        )
    original, flipped = poses
    assert np.all(np.abs(original) < 30)  # deep-funneled LFW: near-frontal, upright faces
    assert np.abs(original[:, 0]).max() > 10  # ... with some turned heads, so the yaw check below has teeth
    np.testing.assert_allclose(flipped[:, 0], -original[:, 0], atol=4)  # yaw
    np.testing.assert_allclose(flipped[:, 1], original[:, 1], atol=4)  # pitch
    np.testing.assert_allclose(flipped[:, 2], -original[:, 2], atol=4)  # roll


@pytest.mark.parametrize("name, parts", [
    ("landmark_error", ["jaw", "eyebrows", "nose", "eyes", "mouth"]),
    ("pose_difference", ["yaw", "pitch", "roll"]),
])
def test_identical_images_score_zero(name, parts, faces):
    got = measure(name, faces, faces)
    assert list(got) == [name] + [f"{name}_{p}" for p in parts]  # the main value, then its named parts
    est = got[name].release
    assert est.value == 0.0 and est.n == len(faces)
    assert est.extra["no_face_original"] == 0 and est.extra["no_face_anonymized"] == 0
    assert all(m.release.value == 0.0 and m.release.n == len(faces) and not m.higher_is_better for m in got.values())


def test_landmark_error_grows_with_a_known_shift_and_matches_it(faces):
    from anonaudit.models.faces.dlib_models import landmarks68
    from anonaudit.registry import DETECTORS

    boxes = [max(d, key=lambda x: x.box.area).box for d in DETECTORS.create("dlib_hog").detect(faces)]
    iod = np.array([np.linalg.norm(np.subtract(*landmarks68(faces[i], b)[[36, 45]])) for i, b in enumerate(boxes)])
    values = []
    for shift in (0, 2, 5, 10):
        got = measure("landmark_error", faces, warp(faces, shift=shift))
        est = got["landmark_error"].release
        assert est.n == len(faces)
        values.append(est.value)
        # every landmark moves by `shift` pixels: error ~ shift / inter-ocular distance
        assert est.value == pytest.approx(np.mean(shift / iod), rel=0.35, abs=0.01)
        # per image the 68-point mean is the point-count-weighted mean of the parts (17, 10, 9, 12, 20 points)
        counts = {"jaw": 17, "eyebrows": 10, "nose": 9, "eyes": 12, "mouth": 20}
        weighted = sum(n * got[f"landmark_error_{p}"].release.value for p, n in counts.items()) / 68
        assert weighted == pytest.approx(est.value, rel=1e-9, abs=1e-12)
    assert values[0] == 0.0 and all(a < b for a, b in itertools.pairwise(values))


def test_landmark_error_grows_with_scaling_of_the_face(faces):
    values = [
        evaluate("landmark_error", faces, warp(faces, scale=s), box="original").value for s in (1.0, 1.05, 1.12, 1.25)
    ]
    assert values[0] == 0.0 and all(a < b for a, b in itertools.pairwise(values))


def test_a_release_at_twice_the_resolution_is_compared_in_the_original_frame(faces):
    doubled = faces.map(lambda im, r: cv2.resize(im, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    assert evaluate("landmark_error", faces, doubled).value < 0.03
    assert evaluate("landmark_error", faces, warp(faces, shift=5)).value > 0.05  # for scale: a real change


def test_pose_difference_follows_an_in_plane_rotation(faces):
    rolls = []
    for angle in (4, 8, 16):
        got = measure("pose_difference", faces, warp(faces, angle=angle))
        roll = got["pose_difference_roll"].release
        assert got["pose_difference"].release.n == len(faces) and roll.n == len(faces)
        rolls.append(roll.value)
        assert roll.value == pytest.approx(angle, abs=2.0) and roll.ci_low <= roll.value <= roll.ci_high
        parts = [got[f"pose_difference_{p}"].release.value for p in ("yaw", "pitch", "roll")]
        assert got["pose_difference"].release.value == pytest.approx(np.mean(parts), rel=1e-9)
    assert rolls == sorted(rolls)


def test_destroyed_faces_are_counted_not_dropped(faces):
    masked = faces.map(lambda im, r: np.full_like(im, 127))
    est = evaluate("landmark_error", faces, masked)
    assert est.n == 0 and np.isnan(est.value)
    assert est.extra["no_face_anonymized"] == len(faces) and est.extra["pairs"] == len(faces)
    # in the original's box the predictor still runs, and the error is large
    big = evaluate("landmark_error", faces, masked, box="original")
    assert big.n == len(faces) and big.value > 0.1
    # a release whose originals have no face at all
    blank = ImageSet.from_arrays([np.full((100, 100, 3), 50, np.uint8)], keys=["blank"])
    est = evaluate("pose_difference", blank, blank)
    assert est.extra["no_face_original"] == 1 and est.n == 0


def test_invalid_box_mode_is_rejected():
    from anonaudit.errors import ConfigError

    with pytest.raises(ConfigError, match="box"):
        EVALUATORS.create("landmark_error", box="nearest")
