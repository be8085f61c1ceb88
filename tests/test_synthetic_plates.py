"""Synthetic Indian plates: format, ground truth, determinism, geometry and OCR readability."""

from __future__ import annotations

import re

import numpy as np
import pytest

from anonaudit.data.synthetic_plates import (
    DEFAULT_FONTS,
    PLATE_TEXT_RE,
    SERIES_LETTERS,
    STATE_CODES,
    _paste_in_scene,
    synthetic_plates,
)
from anonaudit.errors import ConfigError


@pytest.fixture(scope="module")
def plates():
    return synthetic_plates(n=100, seed=0)


@pytest.fixture(scope="module")
def scenes():
    return synthetic_plates(n=12, seed=3, scenes=True)


def test_text_format_and_parts(plates):
    assert len(plates) == 100
    assert plates.keys[:3] == ["plate_0000", "plate_0001", "plate_0002"]
    for rec in plates.records:
        a = rec.attributes
        assert PLATE_TEXT_RE.match(rec.text), rec.text
        assert rec.text == a["state"] + a["district"] + a["series"] + a["number"]
        assert a["state"] in STATE_CODES
        assert 1 <= int(a["district"]) <= 99 and 1 <= int(a["number"]) <= 9999
        assert set(a["series"]) <= set(SERIES_LETTERS) and not set(a["series"]) & {"I", "O"}
        assert a["font"] in DEFAULT_FONTS
    assert len(set(plates.texts)) == len(plates), "plate texts must be unique within a set"
    assert {len(r.attributes["series"]) for r in plates.records} == {1, 2, 3}
    assert {r.attributes["font"] for r in plates.records} == set(DEFAULT_FONTS)


def test_regex_rejects_non_indian_forms():
    for bad in ("MH 12 AB 1234", "mh12ab1234", "MH1AB1234", "MH12ABCD1234", "MH12AB123", "1H12AB1234"):
        assert not PLATE_TEXT_RE.match(bad)


def test_crop_box_is_whole_image_and_height_in_range(plates):
    for img, rec in zip(plates, plates.records):
        h, w = img.shape[:2]
        assert img.dtype == np.uint8 and img.shape[2] == 3
        assert rec.boxes == (rec.boxes[0],) and rec.boxes[0].label == "plate"
        b = rec.boxes[0]
        assert (b.x, b.y, b.w, b.h) == (0, 0, w, h)
        assert rec.attributes["plate_height"] == h
        assert 60 <= h <= 110
        assert 3 < w / h < 9
        assert 0.4 * h <= rec.attributes["char_height"] <= 0.8 * h


def test_same_seed_gives_byte_identical_images_and_prefix_property():
    a = synthetic_plates(n=12, seed=7)
    b = synthetic_plates(n=12, seed=7)
    assert a.records == b.records
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    first = synthetic_plates(n=5, seed=7)
    assert first.records == a.records[:5]
    assert all(x.tobytes() == y.tobytes() for x, y in zip(first, a))
    other = synthetic_plates(n=12, seed=8)
    assert other.texts != a.texts


def test_plate_colours_follow_plate_type():
    """Private plates are white (R ~ B), commercial ones yellow (R >> B): measured on the plate face."""
    for fraction, expected in ((0.0, "private"), (1.0, "commercial")):
        s = synthetic_plates(n=10, seed=1, commercial_fraction=fraction, noise=0, blur=0)
        for img, rec in zip(s, s.records):
            assert rec.attributes["plate_type"] == expected
            h, w = img.shape[:2]
            # The plate's face: the most common colour among the central band's bright pixels.
            band = img[h // 3 : 2 * h // 3, w // 4 : 3 * w // 4].reshape(-1, 3).astype(int)
            face = band[band.sum(axis=1) >= np.median(band.sum(axis=1))].mean(axis=0)
            if expected == "private":
                assert abs(face[0] - face[2]) < 30, face
            else:
                assert face[0] - face[2] > 120 and face[1] - face[2] > 90, face


def test_axis_aligned_clean_plate_has_flat_edges_and_measured_char_height():
    """No perspective, rotation, noise or blur: the outermost rows are plain plate colour, and the
    dark ink between the borders spans exactly ``char_height`` rows (+/- 1 for anti-aliasing)."""
    s = synthetic_plates(n=6, seed=2, perspective=0, max_rotation=0, noise=0, blur=0)
    for img, rec in zip(s, s.records):
        h, w = img.shape[:2]
        assert np.ptp(img[0].astype(int), axis=0).max() <= 2  # one flat colour: no corners, no noise
        inner = img[int(0.1 * h) : h - int(0.1 * h), int(0.2 * w) : int(0.8 * w)].astype(int)
        ink_rows = np.nonzero((inner.mean(axis=2) < 110).any(axis=1))[0]
        assert abs((ink_rows.max() - ink_rows.min() + 1) - rec.attributes["char_height"]) <= 1


def test_scene_boxes_hold_the_plate(scenes):
    for img, rec in zip(scenes, scenes.records):
        h, w = img.shape[:2]
        assert (w, h) == (800, 600)
        (b,) = rec.boxes
        assert b.x >= 0 and b.y >= 0 and b.x + b.w <= w and b.y + b.h <= h
        assert 24 <= b.h <= 41 and rec.attributes["plate_height"] == b.h
        assert scenes.name == "synthetic_plate_scenes"


def test_paste_box_is_the_bounding_box_of_the_pasted_pixels():
    """Known answer: an axis-aligned magenta plate pasted into a scene occupies exactly its box."""
    flat = np.zeros((30, 150, 3), np.uint8)
    flat[...] = (255, 0, 255)
    quad = np.array([[0, 0], [150, 0], [150, 30], [0, 30]], dtype=np.float64)
    img, box = _paste_in_scene(flat, quad, np.random.default_rng(0), 800, 600)
    magenta = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 255)
    ys, xs = np.nonzero(magenta)
    assert (box.x, box.y, box.w, box.h) == (xs.min(), ys.min(), 150, 30)
    assert magenta.sum() == 150 * 30  # every plate pixel is pasted unchanged, inside the box


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},
        {"commercial_fraction": 1.5},
        {"plate_height": (50, 20)},
        {"noise": -1},
        {"fonts": ("NoSuchFont.ttf",)},
        {"fonts": ()},
        {"scenes": True, "scene_size": (200, 100)},
    ],
)
def test_bad_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        synthetic_plates(**kwargs)


def test_limit_caps_n():
    assert len(synthetic_plates(n=10, limit=3)) == 3


def _normalise(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


@pytest.fixture(scope="module")
def rapidocr():
    rapid = pytest.importorskip("rapidocr")
    # The wheel's own models. ``Det.limit_type: max`` stops the detector from scaling the short side
    # of a wide plate crop up to 736 px (the default ``min``), which splits and duplicates characters.
    return rapid.RapidOCR(params={"Global.log_level": "error", "Det.limit_type": "max"})


def test_rapidocr_reads_at_least_90_percent_of_clean_crops(plates, rapidocr):
    read = [_normalise("".join(rapidocr(img).txts or ())) for img in plates]
    exact = sum(r == t for r, t in zip(read, plates.texts))
    assert exact >= 90, [(t, r) for r, t in zip(read, plates.texts) if r != t]


def test_rapidocr_reads_plates_inside_scene_boxes(scenes, rapidocr):
    exact = 0
    for img, rec in zip(scenes, scenes.records):
        b = rec.boxes[0].expand(0.1).clip(img.shape[1], img.shape[0])
        exact += _normalise("".join(rapidocr(img[b.slices]).txts or ())) == rec.text
    assert exact >= 0.8 * len(scenes)
