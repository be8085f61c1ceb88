"""Alignment: Umeyama similarity vs scikit-image, the ArcFace template, FaceNet's margin crop."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from anonaudit.data.imageset import Box
from anonaudit.models.faces.align import (
    ARCFACE_TEMPLATE,
    align_arcface,
    arcface_matrix,
    arcface_template,
    facenet_crop,
    main_face,
    umeyama,
)
from anonaudit.models.faces.base import Detection


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def invert(m: np.ndarray) -> np.ndarray:
    full = np.vstack([m, [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def test_umeyama_matches_scikit_image_on_noisy_points():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(0)
    for _ in range(5):
        src = rng.uniform(0, 200, size=(7, 2))
        dst = apply(similarity(rng.uniform(-180, 180), rng.uniform(0.2, 3), *rng.uniform(-50, 50, 2)), src)
        dst += rng.normal(0, 2.0, dst.shape)
        if hasattr(SimilarityTransform, "from_estimate"):
            ref = SimilarityTransform.from_estimate(src, dst)
        else:  # scikit-image < 0.26
            ref = SimilarityTransform()
            ref.estimate(src, dst)
        np.testing.assert_allclose(umeyama(src, dst), ref.params[:2], atol=1e-9)


def test_template_landmarks_give_the_identity_transform():
    np.testing.assert_allclose(arcface_matrix(ARCFACE_TEMPLATE), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


@pytest.mark.parametrize("angle,scale,tx,ty", [(30, 2.0, 40, -7), (-75, 0.6, 5, 90), (180, 1.3, 120, 33)])
def test_known_rotation_scale_translation_is_undone(angle, scale, tx, ty):
    forward = similarity(angle, scale, tx, ty)
    landmarks = apply(forward, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(arcface_matrix(landmarks), invert(forward), atol=1e-9)


def test_aligning_a_warped_face_recovers_the_crop():
    rng = np.random.default_rng(1)
    crop = cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (0, 0), 2.0)
    forward = similarity(25, 1.8, 90, 40)
    big = cv2.warpAffine(crop, forward, (400, 400), flags=cv2.INTER_CUBIC)
    back = align_arcface(big, apply(forward, ARCFACE_TEMPLATE))
    inner = (slice(8, -8), slice(8, -8))  # the warp blurs the border pixels
    assert np.abs(back[inner].astype(int) - crop[inner].astype(int)).mean() < 2.0


def test_template_scales_with_crop_size():
    np.testing.assert_allclose(arcface_template(56), ARCFACE_TEMPLATE / 2)
    np.testing.assert_allclose(arcface_matrix(ARCFACE_TEMPLATE / 2, size=56), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_bad_landmarks_are_rejected():
    with pytest.raises(ValueError, match="5 finite"):
        arcface_matrix(np.zeros((4, 2)))
    bad = ARCFACE_TEMPLATE.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="5 finite"):
        arcface_matrix(bad)


def test_facenet_crop_matches_facenet_pytorch_extract_face():
    from facenet_pytorch.models.utils.detect_face import extract_face

    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)
    for box, margin in [((10.4, 20.2, 60.9, 90.5), 0), ((10.4, 20.2, 60.9, 90.5), 20), ((-5, 3, 140, 119), 32)]:
        ref = extract_face(img, box, image_size=160, margin=margin).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(facenet_crop(img, box, size=160, margin=margin), ref.astype(np.uint8))


def test_facenet_crop_of_a_box_without_margin_is_a_plain_resize():
    img = np.arange(100 * 80 * 3, dtype=np.uint32).reshape(100, 80, 3).astype(np.uint8)
    out = facenet_crop(img, Box(10, 20, 40, 60), size=40)
    np.testing.assert_array_equal(out, cv2.resize(img[20:80, 10:50], (40, 40), interpolation=cv2.INTER_AREA))


def test_main_face_selection_rules():
    small_sure = Detection(Box(0, 0, 10, 10), 0.99)
    big_centre = Detection(Box(40, 40, 30, 30), 0.80)
    big_corner = Detection(Box(60, 60, 40, 40), 0.70)
    dets = [small_sure, big_centre, big_corner]
    assert main_face(dets, (110, 110, 3), "largest") is big_corner
    assert main_face(dets, (110, 110, 3), "score") is small_sure
    assert main_face(dets, (110, 110, 3), "center") is big_centre
    assert main_face([], (110, 110, 3)) is None
    with pytest.raises(ValueError, match=r"select must be .* not 'biggest'"):
        main_face(dets, (110, 110, 3), "biggest")
