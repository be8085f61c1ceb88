"""plates_left_readable: plates found in full scenes without their boxes, checked in the release.

Known answers on synthetic scenes with two plates each at known places (a road scene's plate and a
second plate pasted in the sky): a release that blurs every plate but one names exactly that file
and place; a release that masks every plate reads none; the finder's recall and precision against
the scenes' boxes, with an annotated box over empty sky that no finder can find.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from anonaudit.anonymizers.classical import Mask
from anonaudit.attacks.plates_left_readable import (
    PLATE_PATTERN,
    PlatesLeftReadable,
    box_iou,
    match_boxes,
)
from anonaudit.data.imageset import Box, ImageSet, Record, Release
from anonaudit.data.synthetic_plates import PLATE_TEXT_RE, synthetic_plates
from anonaudit.errors import ConfigError, MismatchError

N_SCENES = 4
#: Where the second plate is pasted in every scene (top-left, over the sky).
PASTE_AT = (20, 20)


@pytest.fixture(scope="module")
def scenes() -> ImageSet:
    """Four 480x320 road scenes with the road plate (box 0) and a second plate pasted at PASTE_AT (box 1)."""
    road = synthetic_plates(N_SCENES, seed=3, scenes=True, plate_height=(32, 36), scene_size=(480, 320),
                            noise=2.0, blur=0.3, max_rotation=1.0)
    extra = synthetic_plates(N_SCENES, seed=4, plate_height=(32, 36), noise=2.0, blur=0.3, max_rotation=1.0)
    images, records = [], []
    for i in range(N_SCENES):
        image, plate = road[i].copy(), extra[i]
        pasted = Box(*PASTE_AT, plate.shape[1], plate.shape[0], "plate")
        image[pasted.slices] = plate
        images.append(image)
        texts = [road.records[i].text, extra.records[i].text]
        records.append(Record(road.records[i].key, boxes=(road.records[i].boxes[0], pasted),
                              attributes={"plate_texts": texts}))
    return ImageSet(records, images, name="two_plate_scenes")


def attack() -> PlatesLeftReadable:
    """The attack with the synthetic plates' own format as its plate pattern."""
    return PlatesLeftReadable(pattern=PLATE_TEXT_RE.pattern)


def blurred(scenes: ImageSet, keep: dict[str, int]) -> ImageSet:
    """Every annotated plate blurred (sigma 6, box grown by 20%) except box ``keep[key]`` of the named images."""
    out = []
    for i, record in enumerate(scenes.records):
        image = scenes[i].copy()
        for b, box in enumerate(record.boxes):
            if keep.get(record.key) == b:
                continue
            region = box.expand(0.2).clip(image.shape[1], image.shape[0])
            image[region.slices] = cv2.GaussianBlur(image[region.slices], (0, 0), 6.0)
        out.append(image)
    return ImageSet(scenes.records, out, name="blurred")


def test_every_plate_is_found_without_boxes_and_the_finder_is_measured(scenes):
    result = attack().run(Release(scenes, scenes))
    found = result.details
    assert len(found) == 2 * N_SCENES
    for record in scenes.records:
        readings = sorted(found.loc[found["key"] == record.key, "read_original"])
        assert readings == sorted(record.attributes["plate_texts"])  # the recogniser reads the truth
    assert found["matched_iou"].min() > 0.5
    assert result.metric("finder_recall").release.value == 1.0
    assert result.metric("finder_precision").release.value == 1.0
    # the identity release leaves every plate readable
    assert result.metric("plates_left_readable").release.value == 1.0
    assert result.metric("char_accuracy").release.value == 1.0
    assert len(result.findings) == 2 * N_SCENES
    assert f"{2 * N_SCENES} of {2 * N_SCENES} found plates on an annotated box read exactly as annotated" in " ".join(
        result.notes)


def test_a_release_that_misses_one_plate_is_named(scenes):
    missed = scenes.keys[1]
    release = Release(scenes, blurred(scenes, {missed: 1}))
    result = attack().run(release)
    left = result.metric("plates_left_readable")
    assert (left.release.value, left.release.n) == (1 / (2 * N_SCENES), 2 * N_SCENES)
    assert left.original.value == 1.0
    assert left.baseline < 1e-6
    assert left.risk_estimate().value == pytest.approx(1 / (2 * N_SCENES), abs=1e-6)
    (finding,) = result.findings
    assert finding.key == missed
    (row,) = result.details[result.details["left_readable"]].itertuples()
    assert box_iou(Box(row.x, row.y, row.w, row.h), scenes.records[1].boxes[1]) > 0.5  # the pasted plate's place
    assert f"x={row.x} y={row.y} w={row.w} h={row.h}" in finding.detail
    assert finding.example == scenes.records[1].attributes["plate_texts"][1]
    assert finding.metrics == ("plates_left_readable",)
    # the blurred plates read far from what the originals read
    blurred_rows = result.details[~result.details["left_readable"]]
    assert blurred_rows["char_accuracy"].max() < 0.7


def test_a_release_that_masks_every_plate_reads_none(scenes):
    release = Release(scenes, Mask(region="boxes", margin=0.1).anonymize(scenes, show_progress=False))
    result = attack().run(release)
    left = result.metric("plates_left_readable")
    assert left.release.value == 0.0 and left.release.n == 2 * N_SCENES
    assert left.release.ci_high < 0.4  # Wilson upper bound of 0 of 8
    assert result.metric("char_accuracy").release.value == 0.0
    assert result.findings == []


def test_finder_recall_counts_an_annotated_plate_it_cannot_find(scenes):
    # an annotated box over empty road in every scene: found by nobody, so recall is 8 of 12
    records = [Record(r.key, boxes=(*r.boxes, Box(400, 280, 60, 14, "plate"))) for r in scenes.records]
    annotated = ImageSet(records, [scenes[i] for i in range(N_SCENES)], name="extra_boxes")
    result = attack().run(Release(annotated, annotated))
    recall = result.metric("finder_recall")
    assert (recall.release.value, recall.release.n) == (2 / 3, 3 * N_SCENES)
    assert result.metric("finder_precision").release.value == 1.0
    assert np.isnan(recall.baseline) and recall.risk_estimate().kind == "none"


def test_without_boxes_the_finder_is_not_measured(scenes):
    bare = ImageSet([Record(r.key) for r in scenes.records], [scenes[i] for i in range(N_SCENES)], name="bare")
    result = attack().run(Release(bare, bare))
    assert [m.metric for m in result.metrics] == ["plates_left_readable", "char_accuracy"]
    assert any("finder is not measured" in n for n in result.notes)


def test_the_default_pattern_fits_eu_and_us_plates_and_not_words():
    import re

    fits = re.compile(PLATE_PATTERN).fullmatch
    for plate in ("RK755AJ", "WA56660", "1B80338", "WOBVWMK4", "7ABC123", "CZWSQ3021"):
        assert fits(plate), plate
    for word in ("CITROEN", "PEUGEOT", "NORTH", "405", "AB12CD34EF56"):
        assert not fits(word), word


def test_boxes_match_one_to_one_by_iou():
    truth = [Box(0, 0, 10, 10), Box(100, 0, 10, 10)]
    found = [Box(1, 0, 10, 10), Box(0, 1, 10, 10), Box(50, 50, 5, 5)]
    assert box_iou(truth[0], Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou(truth[0], Box(20, 20, 5, 5)) == 0.0
    matches = match_boxes(found, truth, 0.3)
    assert list(matches) == [0] and matches[0][0] == 0  # the better of two overlapping boxes takes the truth


def test_bad_parameters_and_mismatched_sizes_are_errors(scenes):
    with pytest.raises(ConfigError, match="not a regular expression"):
        PlatesLeftReadable(pattern="[A-Z")
    with pytest.raises(ConfigError, match="iou"):
        PlatesLeftReadable(iou=0)
    small = ImageSet(scenes.records, [scenes[i][:-4] for i in range(N_SCENES)], name="cropped")
    with pytest.raises(MismatchError, match=scenes.keys[0]):
        attack().run(Release(scenes, small))


@pytest.mark.shared_data("scenes_eu")
def test_real_eu_scenes_a_blur_over_the_annotated_boxes_leaves_no_annotated_plate_readable():
    from shared_data import shared_path

    from anonaudit.anonymizers.classical import GaussianBlur
    from anonaudit.data.loaders import load_openalpr_scenes

    scenes = load_openalpr_scenes(shared_path("scenes_eu"), limit=8, seed=0)
    as_they_are = PlatesLeftReadable().run(Release(scenes, scenes))
    assert as_they_are.metric("finder_recall").release.value >= 0.8
    assert as_they_are.metric("plates_left_readable").release.value == 1.0
    blur = GaussianBlur(sigma=0.25, relative=True, region="boxes", margin=0.1)
    result = PlatesLeftReadable().run(Release(scenes, blur.anonymize(scenes, show_progress=False)))
    on_annotated = result.details[result.details["matched_iou"].notna()]
    assert len(on_annotated) >= 6 and not on_annotated["left_readable"].any()
