"""Face-region anonymizers: the classical operation inside detected boxes only, paper 004's kernel
semantics, and the detector-miss rule (missed faces stay clear and are recorded)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_data import lfw_people, needs_lfw, square_image

from anonaudit.anonymizers.classical import gaussian_blur, pixelate
from anonaudit.anonymizers.face_regions import (
    ANONYMIZED_FACES,
    FaceBlur,
    FaceMask,
    FaceNoise,
    FacePixelate,
    opencv_sigma,
)
from anonaudit.data.imageset import Box, ImageSet
from anonaudit.errors import ConfigError
from anonaudit.registry import ANONYMIZERS

BOX = Box(20, 16, 24, 28)
DET = "test_white_square"


def _set(*images: np.ndarray) -> ImageSet:
    return ImageSet.from_arrays(list(images), [f"img{i}" for i in range(len(images))], name="squares")


def test_registered_names():
    for name, cls in [
        ("face_blur", FaceBlur),
        ("face_pixelate", FacePixelate),
        ("face_mask", FaceMask),
        ("face_noise", FaceNoise),
    ]:
        assert ANONYMIZERS.get(name) is cls


def test_opencv_sigma_matches_opencv_kernel():
    # Paper 004's "filter core sizes of 15 and 25": OpenCV's sigma for those windows.
    assert opencv_sigma(15) == pytest.approx(2.6)
    assert opencv_sigma(25) == pytest.approx(4.1)
    for k in (11, 15, 25, 31):  # OpenCV uses fixed small kernels up to k = 9
        ours = cv2.getGaussianKernel(k, opencv_sigma(k)).ravel()
        ref = cv2.getGaussianKernel(k, 0).ravel()  # sigma <= 0: OpenCV derives it from k
        np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_pixelate_changes_only_the_detected_box():
    img = square_image(box=BOX)
    # Texture inside the 'face'; its white frame keeps the detected box at BOX.
    inner = img[BOX.y + 1 : BOX.y + BOX.h - 1, BOX.x + 1 : BOX.x + BOX.w - 1]
    inner[...] = np.random.default_rng(3).integers(0, 250, inner.shape, dtype=np.uint8)
    anon = FacePixelate(block=4, detector=DET, margin=0.0)
    out = anon.anonymize(_set(img), show_progress=False)
    res = out[0]
    ys, xs = BOX.slices
    np.testing.assert_array_equal(res[ys, xs], pixelate(img[ys, xs], 4))
    outside = np.ones(img.shape[:2], bool)
    outside[ys, xs] = False
    np.testing.assert_array_equal(res[outside], img[outside])
    rec = out.record(0)
    assert rec.attributes[ANONYMIZED_FACES] == 1
    assert rec.boxes == (Box(BOX.x, BOX.y, BOX.w, BOX.h, "face"),)
    assert anon.missed_ == []


def test_margin_grows_the_region_and_clips_at_the_border():
    box = Box(2, 20, 20, 20)
    img = square_image(box=box)
    out = FaceMask(color=(10, 20, 30), detector=DET, margin=0.25).anonymize(_set(img), show_progress=False)
    # 5 px on every side, clipped at x = 0.
    expected = Box(0, 15, 27, 30, "face")
    assert out.record(0).boxes == (expected,)
    ys, xs = expected.slices
    assert np.all(out[0][ys, xs] == [10, 20, 30])
    changed = np.any(out[0] != img, axis=2)
    assert changed.sum() == expected.area


def test_detector_miss_rule_releases_unchanged_and_records_it():
    with_face, without = square_image(box=BOX, seed=1), square_image(box=None, seed=2)
    anon = FaceBlur(kernel=15, detector=DET)
    out = anon.anonymize(_set(with_face, without), show_progress=False)
    np.testing.assert_array_equal(out[1], without)
    assert not np.array_equal(out[0], with_face)
    assert anon.missed_ == ["img1"]
    assert [r.attributes[ANONYMIZED_FACES] for r in out.records] == [1, 0]
    assert out.record(1).boxes == ()


def test_face_blur_is_the_classical_blur_and_close_to_opencv_kernel():
    rng = np.random.default_rng(0)
    img = square_image(size=96, box=Box(20, 20, 50, 50))
    face = Box(20, 20, 50, 50)
    ys, xs = face.slices
    img[22:68, 22:68] = rng.integers(0, 250, (46, 46, 3), dtype=np.uint8)  # white frame stays detectable
    out = FaceBlur(kernel=15, detector=DET, margin=0.0).anonymize(_set(img), show_progress=False)[0]
    np.testing.assert_array_equal(out[ys, xs], gaussian_blur(img[ys, xs], opencv_sigma(15)))
    # OpenCV's 15x15 window (BORDER_REFLECT = scipy's "reflect"): the only difference is the Gaussian's
    # tail beyond 7 px, which the classical filter keeps (truncated at 4 sigma).
    ref = cv2.GaussianBlur(img[ys, xs], (15, 15), 0, borderType=cv2.BORDER_REFLECT)
    diff = np.abs(out[ys, xs].astype(int) - ref.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 3


def test_noise_is_deterministic_per_key_and_confined():
    img = square_image(box=BOX)
    a = FaceNoise(std=30, seed=1, detector=DET, margin=0.0).anonymize(_set(img), show_progress=False)[0]
    b = FaceNoise(std=30, seed=1, detector=DET, margin=0.0).anonymize(_set(img), show_progress=False)[0]
    c = FaceNoise(std=30, seed=2, detector=DET, margin=0.0).anonymize(_set(img), show_progress=False)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    ys, xs = BOX.slices
    outside = np.ones(img.shape[:2], bool)
    outside[ys, xs] = False
    np.testing.assert_array_equal(a[outside], img[outside])


def test_lazy_image_sets_from_files(tmp_path):
    paths = _set(square_image(box=BOX), square_image(box=None, seed=5)).to_folder(tmp_path)
    lazy = ImageSet.from_folder(tmp_path)
    assert not lazy.in_memory and len(paths) == 2
    out = FacePixelate(block=6, detector=DET).anonymize(lazy, show_progress=False)
    assert out.keys == lazy.keys
    assert [r.attributes[ANONYMIZED_FACES] for r in out.records] == [1, 0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: FaceBlur(kernel=14),
        lambda: FaceBlur(kernel=0),
        lambda: FaceBlur(kernel=15, sigma=-1),
        lambda: FacePixelate(block=0),
        lambda: FacePixelate(block=2.5),
        lambda: FaceMask(color=(0, 0)),
        lambda: FaceMask(color=(0, 0, 300)),
        lambda: FaceNoise(std=-2),
        lambda: FacePixelate(margin=-0.1),
        lambda: FacePixelate(detector=""),
    ],
)
def test_bad_parameters_raise_config_errors(make):
    with pytest.raises(ConfigError):
        make()


def test_labels_and_params_round_trip(tmp_path):
    anon = FacePixelate(block=25)
    assert anon.label() == "face_pixelate(block=25)"
    anon.save(tmp_path / "a.json")
    again = FacePixelate.load(tmp_path / "a.json")
    assert again.get_params() == anon.get_params()
    assert FaceMask().get_params()["color"] == [0, 0, 0]


@needs_lfw
def test_mtcnn_face_pixelation_on_lfw():
    faces = lfw_people(3, min_images=2)
    blank = np.full((250, 250, 3), 128, np.uint8)
    images = ImageSet.from_arrays(
        [faces[i] for i in range(len(faces))] + [blank], faces.keys + ["blank"], name="lfw+blank"
    )
    anon = FacePixelate(block=15)
    out = anon.anonymize(images, show_progress=False)
    assert anon.missed_ == ["blank"]
    np.testing.assert_array_equal(out[len(faces)], blank)
    for i in range(len(faces)):
        rec = out.record(i)
        assert rec.attributes[ANONYMIZED_FACES] >= 1
        mask = np.zeros(images[i].shape[:2], bool)
        for b in rec.boxes:
            mask[b.slices] = True
        np.testing.assert_array_equal(out[i][~mask], images[i][~mask])  # outside the faces: untouched
        assert np.abs(out[i][mask].astype(int) - images[i][mask].astype(int)).mean() > 5
