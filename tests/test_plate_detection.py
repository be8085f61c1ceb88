"""Plate detectability: the detection rule on hand-made boxes, and the RapidOCR text detector on
synthetic plates (found on originals, lost under a mask, text beside the plate does not count)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from anonaudit.anonymizers.classical import GaussianBlur, Mask
from anonaudit.data.imageset import Box, ImageSet, Record, Release
from anonaudit.data.synthetic_plates import font_path, synthetic_plates
from anonaudit.evaluators.plate_detection import (
    PlateDetectability,
    plate_detected,
    plate_window,
)
from anonaudit.models.ocr.rapid import RapidOCREngine, TextRegion
from anonaudit.registry import EVALUATORS
from anonaudit.stats import wilson_interval


def release_of(images: ImageSet, anonymizer) -> Release:
    return Release(images, anonymizer.anonymize(images, show_progress=False), anonymizer.name, anonymizer.get_params())


PLATE = Box(100, 50, 200, 50)


@pytest.mark.parametrize(
    "regions,expected",
    [
        ([TextRegion(110, 60, 180, 30, 0.9)], True),  # a text line across the plate
        ([TextRegion(110, 60, 40, 30, 0.9)], False),  # too narrow: 40 < 0.3 x 200
        ([TextRegion(110, 60, 50, 30, 0.9), TextRegion(200, 62, 60, 28, 0.9)], True),  # words: union 150 x 32
        ([TextRegion(0, 0, 400, 300, 0.9)], False),  # a blob over the whole scene: mostly off the plate
        ([TextRegion(110, 0, 180, 40, 0.9)], False),  # above the plate: only 0 < 50% inside
        ([TextRegion(150, 52, 60, 46, 0.9)], False),  # not plate-shaped (60 x 46)
        ([], False),
    ],
)
def test_detection_rule_hand_made_cases(regions, expected):
    assert plate_detected(regions, PLATE) is expected


def test_plate_window_grows_by_context_and_maps_the_box():
    rec = Record("k", boxes=(Box(100, 50, 200, 50, "plate"),))
    win, plate = plate_window(rec, (600, 800, 3), context=1.0)
    assert win == Box(0, 0, 500, 150) and plate == Box(100, 50, 200, 50, "plate")
    win, plate = plate_window(Record("k"), (80, 300, 3), context=1.0)
    assert win == Box(0, 0, 300, 80) and plate == Box(0, 0, 300, 80, "plate")


def test_original_plates_are_detected_and_masked_ones_are_not():
    plates = synthetic_plates(8, seed=51)
    evaluator = EVALUATORS.create("plate_detectability")
    assert isinstance(evaluator, PlateDetectability) and evaluator.higher_is_better
    result = evaluator(release_of(plates, Mask()))
    masked, original = result.release, result.original
    assert result.metric == "plate_detectability" and masked.value == 0.0 and masked.n == 8
    assert original.value >= 7 / 8 and original.n == 8
    k = round(original.value * 8)
    assert (original.ci_low, original.ci_high) == pytest.approx(wilson_interval(k, 8))
    same = evaluator(Release(plates, plates)).release
    assert same.value == original.value and (same.ci_low, same.ci_high) == pytest.approx(wilson_interval(k, 8))
    assert "Wilson" in same.method


def test_streaming_batches_give_the_one_shot_answer():
    scenes = synthetic_plates(6, seed=52, scenes=True)
    release = release_of(scenes, GaussianBlur(sigma=0.08, relative=True, region="boxes"))
    whole = PlateDetectability()(release, batch_size=64)
    streamed = PlateDetectability()(release, batch_size=4)
    assert (whole.release, whole.original) == (streamed.release, streamed.original)
    assert whole.original.value >= 5 / 6


def test_text_beside_a_masked_plate_does_not_count():
    plate = synthetic_plates(1, seed=53, scenes=True)
    image = plate[0].copy()
    box = plate.records[0].boxes[0]
    image[box.slices] = 255  # the plate is blanked ...
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    font = ImageFont.truetype(str(font_path("DejaVuSans-Bold.ttf")), size=box.h)
    draw.text(
        (max(0, box.x - box.w), max(0, box.y - box.h - 4)), "KA01AB1234", fill=(0, 0, 0), font=font
    )  # ... text above it
    released = np.asarray(pil)
    window, _ = plate_window(plate.records[0], released.shape, context=1.0)
    assert RapidOCREngine().detect_arrays([released[window.slices]])[0]  # the detector sees the text ...
    release = Release(plate, plate.with_images([released]))
    result = PlateDetectability()(release)  # ... but it is not on the plate
    assert result.original.value == 1.0 and result.release.value == 0.0
