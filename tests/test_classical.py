"""Classical anonymizers against known answers: masks fill exactly their boxes, mosaics are block means
computed here by hand (partial edge cells included), blurs equal SciPy's and OpenCV's filters, relative
strength scales with the region height, noise is seeded per image key, and bad parameters are refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from anonaudit.anonymizers.classical import (
    BoxBlur,
    GaussianBlur,
    Mask,
    Noise,
    Pixelate,
    box_blur,
    gaussian_blur,
    pixelate,
)
from anonaudit.data.imageset import Box, ImageSet
from anonaudit.errors import ConfigError
from anonaudit.registry import ANONYMIZERS


def textured(h: int = 30, w: int = 44, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def one(image: np.ndarray, boxes: list[Box] | None = None, key: str = "img") -> ImageSet:
    return ImageSet.from_arrays([image], [key], boxes=[boxes or []])


def run(anon, image: np.ndarray, boxes: list[Box] | None = None, key: str = "img") -> np.ndarray:
    return anon.anonymize(one(image, boxes, key), show_progress=False)[0]


def outside(shape: tuple[int, ...], *boxes: Box) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for b in boxes:
        ys, xs = b.slices
        keep[ys, xs] = False
    return keep


# -- mask ------------------------------------------------------------------------------------------------------
def test_mask_fills_exactly_the_boxes():
    img = textured()
    a, b = Box(3, 4, 10, 6), Box(25, 15, 12, 9)
    out = run(Mask(color=(12, 200, 7), region="boxes"), img, [a, b])
    for box in (a, b):
        ys, xs = box.slices
        assert np.all(out[ys, xs] == (12, 200, 7))
    keep = outside(img.shape, a, b)
    np.testing.assert_array_equal(out[keep], img[keep])  # byte-identical elsewhere
    assert (out != img).any(axis=2).sum() <= a.area + b.area


def test_mask_margin_grows_and_clips_the_box():
    img = textured()
    box = Box(2, 20, 20, 8)  # margin 0.25: 5 px left/right, 2 px up/down; clipped at x = 0 and y = 30
    out = run(Mask(color=[255, 0, 255], region="boxes", margin=0.25), img, [box])
    grown = Box(0, 18, 27, 12)
    ys, xs = grown.slices
    assert np.all(out[ys, xs] == (255, 0, 255))
    keep = outside(img.shape, grown)
    np.testing.assert_array_equal(out[keep], img[keep])


def test_mask_whole_image_and_missing_boxes():
    img = textured()
    assert np.all(run(Mask(color=(1, 2, 3)), img) == (1, 2, 3))
    # region=boxes on an image without boxes: released unchanged (the audit reports this)
    np.testing.assert_array_equal(run(Mask(region="boxes"), img, []), img)
    # a box entirely outside the image changes nothing
    np.testing.assert_array_equal(run(Mask(region="boxes"), img, [Box(100, 100, 5, 5)]), img)


# -- pixelate --------------------------------------------------------------------------------------------------
def block_means_by_hand(crop: np.ndarray, b: int) -> np.ndarray:
    """Each b x b cell (anchored top-left; the last row/column of cells may be partial) -> its mean."""
    out = np.empty_like(crop)
    h, w = crop.shape[:2]
    for y in range(0, h, b):
        for x in range(0, w, b):
            cell = crop[y : y + b, x : x + b].astype(float)
            out[y : y + b, x : x + b] = np.round(cell.mean(axis=(0, 1)))
    return out


def test_pixelate_tiny_known_answer():
    # 3 x 5 grey image, block 2: cells are 2x2, 2x2, 2x1 / 1x2, 1x2, 1x1
    g = np.array([[0, 10, 20, 30, 40],
                  [50, 60, 70, 80, 90],
                  [100, 110, 120, 130, 140]], dtype=np.uint8)
    expected = np.array([[30, 30, 50, 50, 65],
                         [30, 30, 50, 50, 65],
                         [105, 105, 125, 125, 140]], dtype=np.uint8)
    img = np.repeat(g[..., None], 3, axis=2)
    np.testing.assert_array_equal(pixelate(img, 2), np.repeat(expected[..., None], 3, axis=2))


@pytest.mark.parametrize("block", [2, 3, 4, 7])
def test_pixelate_box_equals_block_means(block: int):
    img = textured()
    box = Box(5, 3, 17, 11)  # not a multiple of any block: partial edge cells are their own means
    out = run(Pixelate(block=block, region="boxes"), img, [box])
    ys, xs = box.slices
    np.testing.assert_array_equal(out[ys, xs], block_means_by_hand(img[ys, xs], block))
    keep = outside(img.shape, box)
    np.testing.assert_array_equal(out[keep], img[keep])


def test_pixelate_whole_image_is_anchored_at_the_corner():
    img = textured(23, 29)
    np.testing.assert_array_equal(run(Pixelate(block=6), img), block_means_by_hand(img, 6))
    np.testing.assert_array_equal(pixelate(img, 1), img)
    np.testing.assert_array_equal(pixelate(img, 0.4), img)  # rounds to 0 -> at least 1: unchanged
    np.testing.assert_array_equal(pixelate(img, 5.6), block_means_by_hand(img, 6))  # rounded to 6


def test_pixelate_relative_block():
    img = textured(40, 60)
    box = Box(4, 6, 40, 20)
    rel = run(Pixelate(block=0.25, relative=True, region="boxes"), img, [box])  # 0.25 x 20 px = 5 px
    np.testing.assert_array_equal(rel, run(Pixelate(block=5, region="boxes"), img, [box]))


# -- Gaussian and box blur --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.8, 2.0, 3.3])
def test_gaussian_blur_is_scipy_gaussian_filter_per_channel(sigma: float):
    img = textured(37, 41)
    ref = np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), sigma, truncate=4.0, mode="reflect")
                    for c in range(3)], axis=-1)
    ours = gaussian_blur(img, sigma).astype(int)
    assert np.abs(ours - np.round(ref)).max() <= 1  # float32 vs float64 rounding at .5 only
    assert np.mean(ours != np.round(ref)) < 0.01


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_gaussian_blur_matches_opencv_with_the_same_kernel(sigma: float):
    """SciPy's kernel radius is ``int(4 sigma + 0.5)``; with that window and BORDER_REFLECT (SciPy's
    'reflect', ``dcba|abcd``) OpenCV computes the same filter."""
    img = textured(50, 60, seed=2)
    k = 2 * int(4 * sigma + 0.5) + 1
    ref = cv2.GaussianBlur(img.astype(np.float32), (k, k), sigma, borderType=cv2.BORDER_REFLECT)
    ours = gaussian_blur(img, sigma).astype(int)
    assert np.abs(ours - np.round(ref)).max() <= 1


def test_gaussian_blur_only_inside_boxes():
    img = textured(48, 64)
    box = Box(10, 12, 30, 20)
    out = run(GaussianBlur(sigma=2, region="boxes"), img, [box])
    ys, xs = box.slices
    np.testing.assert_array_equal(out[ys, xs], gaussian_blur(img[ys, xs], 2))  # the crop, blurred on its own
    keep = outside(img.shape, box)
    np.testing.assert_array_equal(out[keep], img[keep])
    assert not np.array_equal(out[ys, xs], img[ys, xs])


def test_relative_sigma_is_a_fraction_of_the_box_height():
    img = textured(80, 90)
    box = Box(10, 20, 60, 40)
    rel = run(GaussianBlur(sigma=0.1, relative=True, region="boxes"), img, [box])
    px = run(GaussianBlur(sigma=4, region="boxes"), img, [box])
    np.testing.assert_array_equal(rel, px)
    # region=image: the reference height is the first box's height, else the image height
    whole = run(GaussianBlur(sigma=0.1, relative=True), img, [box])
    np.testing.assert_array_equal(whole, gaussian_blur(img, 4.0))
    np.testing.assert_array_equal(run(GaussianBlur(sigma=0.05, relative=True), img), gaussian_blur(img, 4.0))
    assert GaussianBlur(sigma=0.1, relative=True).strength_px(40) == pytest.approx(4.0)
    assert GaussianBlur(sigma=3).strength_px(40) == 3.0


def test_box_blur_is_the_reflect_padded_window_mean():
    img = textured(15, 19)
    padded = np.pad(img.astype(float), ((1, 1), (1, 1), (0, 0)), mode="symmetric")  # SciPy 'reflect'
    ref = sum(padded[dy : dy + 15, dx : dx + 19] for dy in range(3) for dx in range(3)) / 9
    np.testing.assert_array_equal(box_blur(img, 3), np.round(ref).astype(np.uint8))
    np.testing.assert_array_equal(run(BoxBlur(size=3), img), box_blur(img, 3))
    np.testing.assert_array_equal(box_blur(img, 1), img)


@pytest.mark.parametrize(
    "anon",
    [
        GaussianBlur(sigma=3),
        GaussianBlur(sigma=0.2, relative=True),
        BoxBlur(size=6),
        Pixelate(block=5),
        Pixelate(block=7, region="boxes"),
        BoxBlur(size=4, region="boxes"),
    ],
    ids=lambda a: a.label(),
)
def test_uniform_image_is_unchanged(anon):
    img = np.empty((33, 47, 3), np.uint8)
    img[...] = (17, 130, 251)
    np.testing.assert_array_equal(run(anon, img, [Box(5, 5, 20, 11)]), img)


def test_zero_strength_is_the_identity():
    img = textured()
    for anon in (GaussianBlur(sigma=0), BoxBlur(size=0), Pixelate(block=0), Noise(std=0)):
        np.testing.assert_array_equal(run(anon, img), img)


# -- noise -----------------------------------------------------------------------------------------------------------
def test_noise_is_seeded_per_image_key():
    img = np.full((40, 40, 3), 128, np.uint8)
    two = ImageSet.from_arrays([img, img], ["a", "b"])
    out = Noise(std=10).anonymize(two, show_progress=False)
    assert not np.array_equal(out[0], out[1])  # same pixels, different key: different noise
    alone = Noise(std=10).anonymize(ImageSet.from_arrays([img], ["a"]), show_progress=False)
    np.testing.assert_array_equal(alone[0], out[0])  # same key: same noise, whatever else is in the set
    reordered = Noise(std=10).anonymize(ImageSet.from_arrays([img, img], ["b", "a"]), show_progress=False)
    np.testing.assert_array_equal(reordered[1], out[0])
    other_seed = Noise(std=10, seed=1).anonymize(ImageSet.from_arrays([img], ["a"]), show_progress=False)
    assert not np.array_equal(other_seed[0], out[0])
    residual = out[0].astype(float) - 128
    assert abs(residual.mean()) < 0.5 and residual.std() == pytest.approx(10, rel=0.05)


def test_noise_in_boxes_only():
    img = textured()
    box = Box(4, 4, 16, 12)
    out = run(Noise(std=30, region="boxes"), img, [box])
    keep = outside(img.shape, box)
    np.testing.assert_array_equal(out[keep], img[keep])
    ys, xs = box.slices
    assert np.mean(out[ys, xs] != img[ys, xs]) > 0.8


# -- parameters --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, params, message", [
    ("gaussian_blur", {"sigma": -1}, "gaussian_blur: sigma must be a finite number >= 0, got -1"),
    ("gaussian_blur", {"sigma": "strong"}, "gaussian_blur: sigma must be a finite number >= 0, got 'strong'"),
    ("gaussian_blur", {"sigma": float("nan")}, "gaussian_blur: sigma must be a finite number >= 0, got nan"),
    ("gaussian_blur", {"sigma": float("inf")}, "gaussian_blur: sigma must be a finite number >= 0, got inf"),
    ("gaussian_blur", {"sigma": None}, "sigma must be a finite number >= 0, got None"),
    ("box_blur", {"size": -3}, "box_blur: size must be a finite number >= 0, got -3"),
    ("pixelate", {"block": -8}, "pixelate: block must be a finite number >= 0, got -8"),
    ("pixelate", {"block": True}, "pixelate: block must be a finite number >= 0, got True"),
    ("noise", {"std": -0.5}, "noise: std must be a finite number >= 0, got -0.5"),
    ("pixelate", {"region": "face"}, "pixelate: region must be 'image' or 'boxes', got 'face'"),
    ("gaussian_blur", {"margin": -0.1}, "gaussian_blur: margin must be a finite number >= 0, got -0.1"),
    ("mask", {"color": (0, 0, 256)}, r"mask: color\[2\] must be a number in \[0, 255\], got 256"),
    ("mask", {"color": (0, 0)}, r"mask: color must be three values \(R, G, B\), got \(0, 0\)"),
    ("mask", {"color": [-1, 0, 0]}, r"mask: color\[0\] must be a number in \[0, 255\], got -1"),
])
def test_invalid_parameters_raise_config_errors(name: str, params: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        ANONYMIZERS.create(name, **params)


def test_labels_show_strength_and_changed_parameters():
    assert GaussianBlur().label() == "gaussian_blur(sigma=2)"
    assert (
        GaussianBlur(sigma=0.1, relative=True, region="boxes").label()
        == "gaussian_blur(sigma=0.1, region=boxes, relative=True)"
    )
    assert Pixelate(block=8, margin=0.2).label() == "pixelate(block=8, margin=0.2)"
    assert Mask().label() == "mask" and Mask(color=(255, 255, 255)).label() == "mask(color=[255, 255, 255])"
    assert Noise(std=10, seed=3).label() == "noise(std=10, seed=3)"
