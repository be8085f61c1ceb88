"""OCR engines: CTC decoding and hOCR parsing on hand-made inputs, real reads of synthetic plates,
memoisation, batch independence, allowlists and clear errors for missing runtimes or bad weights."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from anonaudit.attacks.text import normalize_plate
from anonaudit.data.imageset import Box, Record
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import ModelUnavailableError, WeightIntegrityError
from anonaudit.memo import clear_memory
from anonaudit.models.ocr import (
    EasyOCREngine,
    RapidOCREngine,
    Reading,
    TesseractEngine,
    create_engine,
    ctc_decode,
    join_lines,
    parse_hocr,
    plate_box,
    plate_crop,
)
from anonaudit.models.ocr.easy import EASYOCR_MD5, verify_model_dir
from anonaudit.registry import OCR_ENGINES


@pytest.fixture(scope="module")
def plates():
    return synthetic_plates(8, seed=21)


def exact(readings, images) -> int:
    return sum(normalize_plate(r.text) == normalize_plate(t) for r, t in zip(readings, images.texts))


class CountingRapidOCR(RapidOCREngine):
    """The real RapidOCR engine, counting how many crops reach the model."""

    calls = 0

    def _recognize(self, crops):
        type(self).calls += len(crops)
        return super()._recognize(crops)


def test_registry_has_the_three_engines():
    assert {"rapidocr", "tesseract", "easyocr"} <= set(OCR_ENGINES.names())
    assert isinstance(create_engine("rapidocr", allowlist="plates"), RapidOCREngine)
    engine = TesseractEngine()
    assert create_engine(engine) is engine


def test_ctc_decode_hand_made_matrix():
    charset = ["blank", "A", "B", " "]
    #            blank  A     B     space
    probs = np.array([
        [0.90, 0.05, 0.03, 0.02],  # blank
        [0.10, 0.80, 0.10, 0.00],  # A
        [0.05, 0.60, 0.35, 0.00],  # A (same run)
        [0.70, 0.20, 0.10, 0.00],  # blank separates
        [0.10, 0.10, 0.75, 0.05],  # B
        [0.00, 0.70, 0.30, 0.00],  # A again
    ])
    text, conf, alts = ctc_decode(probs, charset, max_alternatives=2)
    assert text == "ABA"
    assert conf == pytest.approx(np.mean([0.80, 0.75, 0.70]))
    # Run 1 (frames 1-2): best A (0.80), then B (max 0.35 over the run).
    assert alts[0] == (("A", pytest.approx(0.80)), ("B", pytest.approx(0.35)))
    assert alts[1] == (("B", pytest.approx(0.75)), ("A", pytest.approx(0.10)))
    assert alts[2][0][0] == "A" and len(alts) == len(text)
    empty = ctc_decode(np.array([[1.0, 0, 0, 0]]), charset)
    assert empty[0] == "" and math.isnan(empty[1]) and empty[2] == ()


HOCR = b"""<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><body>
<span class='ocr_line' id='line_1_1'>
 <span class='ocrx_word' id='word_1_1' title='bbox 0 0 10 10; x_wconf 90'>
  <span class='ocrx_cinfo' title='x_bboxes 0 0 5 10; x_conf 90'>A</span>
   <span class='ocrx_cinfo' id='lstm_choices_1_1_1'>
    <span class='ocrx_cinfo' id='choice_1_1_1' title='x_confs 85'>A</span>
    <span class='ocrx_cinfo' id='choice_1_1_2' title='x_confs 10'>4</span>
   </span>
  <span class='ocrx_cinfo' title='x_bboxes 5 0 10 10; x_conf 70'>B</span>
 </span>
 <span class='ocrx_word' id='word_1_2' title='bbox 12 0 20 10; x_wconf 50'>
  <span class='ocrx_cinfo' title='x_bboxes 12 0 20 10; x_conf 50'>1</span>
   <span class='ocrx_cinfo' id='lstm_choices_1_2_1'>
    <span class='ocrx_cinfo' id='choice_1_2_1' title='x_confs 40'>I</span>
   </span>
 </span>
</span></body></html>"""


def test_parse_hocr_reads_text_confidence_and_choices():
    r = parse_hocr(HOCR)
    assert r.text == "AB 1"
    assert r.confidence == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert r.alternatives[0] == (("A", 0.9), ("4", 0.1))
    assert r.alternatives[1] == (("B", 0.7),)
    assert r.alternatives[2][0][0] == " "
    assert r.alternatives[3] == (("1", 0.5), ("I", 0.4))


def test_reading_json_round_trip():
    r = Reading("AB", float("nan"), ((("A", 0.9), ("4", float("nan"))), (("B", 1.0),)))
    back = Reading.from_json(r.to_json())
    assert back.text == "AB" and math.isnan(back.confidence)
    assert back.alternatives[0][0] == ("A", 0.9) and math.isnan(back.alternatives[0][1][1])
    assert Reading.from_json(Reading("", 0.5, None).to_json()) == Reading("", 0.5, None)


def test_join_lines_keeps_tall_lines_in_reading_order():
    lines = [
        ("7649", 0.9, (300, 12, 120, 40)),
        ("AN 40", 0.8, (10, 10, 150, 42)),
        ("CALIFORNIA", 0.99, (50, 0, 200, 10)),  # small slogan: dropped
        ("W", 1.0, (200, 11, 30, 41)),
        ("X 9", 0.5, (40, 80, 100, 40)),  # second row
    ]
    text, conf = join_lines(lines)
    assert text == "AN 40 W 7649 X 9"
    weights = [5, 1, 4, 3]  # characters of each kept line (spaces inside a line count)
    assert conf == pytest.approx(np.average([0.8, 1.0, 0.9, 0.5], weights=weights))
    assert join_lines([])[0] == ""


def test_plate_box_grows_by_margin_and_clips():
    rec = Record("k", boxes=(Box(10, 20, 100, 40, "plate"),))
    assert plate_box(rec, (100, 200, 3), margin=0.1) == Box(0, 16, 120, 48, "plate")
    assert plate_box(Record("k"), (50, 60, 3)) == Box(0, 0, 60, 50, "image")
    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    assert plate_crop(image, rec, margin=0.0).shape == (40, 100, 3)
    np.testing.assert_array_equal(plate_crop(image, rec, margin=0.0), image[20:60, 10:110])


def test_rapidocr_reads_synthetic_plates_with_alternatives(plates):
    readings = RapidOCREngine().read(plates)
    assert exact(readings, plates) >= 7
    for r in readings:
        assert len(r.alternatives) == len(r.text)
        assert 0.0 < r.confidence <= 1.0
        assert all(pos[0][0] == ch for pos, ch in zip(r.alternatives, r.text))
        assert all(p1 >= p2 for pos in r.alternatives for (_, p1), (_, p2) in itertools.pairwise(pos))


def test_rapidocr_memoises_and_is_batch_independent(plates):
    clear_memory()
    engine = CountingRapidOCR()
    CountingRapidOCR.calls = 0
    together = engine.read(plates, batch_size=8)
    assert CountingRapidOCR.calls == len(plates)
    again = engine.read(plates, batch_size=3)
    assert CountingRapidOCR.calls == len(plates)  # all from the memo
    assert [r.text for r in again] == [r.text for r in together]
    clear_memory()
    alone = [engine.read_arrays([plates[i]])[0] for i in range(len(plates))]
    assert [r.text for r in alone] == [r.text for r in together]
    assert [r.confidence for r in alone] == pytest.approx([r.confidence for r in together], abs=1e-4)


def test_rapidocr_allowlist_constrains_decoding(plates):
    readings = RapidOCREngine(allowlist="plates").read(plates)
    assert all(re.fullmatch(r"[A-Z0-9]*", r.text) for r in readings)
    assert exact(readings, plates) >= 7
    assert RapidOCREngine(allowlist="plates").model_id() != RapidOCREngine().model_id()


def test_rapidocr_reads_the_plate_box_of_a_scene():
    scenes = synthetic_plates(3, seed=4, scenes=True)
    readings = RapidOCREngine().read(scenes)
    assert exact(readings, scenes) >= 2


@pytest.mark.debian("tesseract")
def test_tesseract_reads_plates_with_lstm_choices(plates):
    sub = plates.subset(range(4))
    readings = TesseractEngine(allowlist="plates").read(sub)
    assert exact(readings, sub) >= 3
    assert all(r.alternatives is not None and len(r.alternatives) == len(r.text) for r in readings)


def test_tesseract_missing_binary_says_how_to_install(plates):
    engine = TesseractEngine(tesseract_cmd="/nonexistent/tesseract")
    with pytest.raises(ModelUnavailableError, match="apt-get install"):
        engine.read(plates.subset([0]))


def test_easyocr_refuses_weights_with_wrong_md5(tmp_path):
    for name in EASYOCR_MD5:
        (tmp_path / name).write_bytes(b"not the weights")
    with pytest.raises(WeightIntegrityError, match="md5"):
        verify_model_dir(tmp_path)
    (tmp_path / "craft_mlt_25k.pth").unlink()
    with pytest.raises(ModelUnavailableError, match="missing"):
        verify_model_dir(tmp_path)
    engine = EasyOCREngine(model_storage_directory=str(tmp_path))
    assert not engine.provides_alternatives and "EasyOCR" in engine.alternatives_reason


@pytest.mark.slow
def test_easyocr_reads_plates_with_shipped_weights(plates):
    sub = plates.subset(range(2))
    readings = EasyOCREngine(allowlist="plates", gpu=False).read(sub)
    assert exact(readings, sub) >= 1
    assert all(r.alternatives is None for r in readings)


def test_top_k_equals_a_stable_full_sort_including_ties():
    from anonaudit.models.ocr.rapid import _top_k

    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.integers(0, 6, size=int(rng.integers(1, 40))).astype(float)  # many ties
        for k in (1, 3, 5, 50):
            np.testing.assert_array_equal(_top_k(values, k), np.argsort(-values, kind="stable")[:k])
    # Charset-sized rows (the block bound): peaked like a softmax, with ties, all zero but a few
    # (an allowlist mask), and a length that is not a multiple of the block.
    for size in (18710, 2000, 1283):
        for _ in range(30):
            peaked = rng.dirichlet(np.full(size, 0.01))
            ties = np.round(rng.random(size), 2)
            sparse = np.zeros(size)
            sparse[rng.choice(size, 3, replace=False)] = rng.random(3)
            for values in (peaked, ties, sparse, peaked.astype(np.float32)):
                for k in (1, 5, 7):
                    np.testing.assert_array_equal(_top_k(values, k), np.argsort(-values, kind="stable")[:k])


def test_recogniser_parts_in_parallel_give_the_outputs_of_one_call(plates, monkeypatch):
    """The batch cut into parts of two or more crops, run in parallel threads: the same bits as one
    call on the whole batch, for any number of threads."""
    import cv2

    from anonaudit.models.ocr.rapid import RECOGNIZER_PARAMS, _forward, rapidocr_instance

    rec = rapidocr_instance(RECOGNIZER_PARAMS)._load_rec_model()
    _, height, width = rec.rec_image_shape
    batch = np.stack(
        [
            rec.resize_norm_img(cv2.cvtColor(plates[i], cv2.COLOR_RGB2BGR), (width + 0.5) / height)
            for i in range(len(plates))
        ]
    ).astype(np.float32)
    whole = np.asarray(rec.session(batch))
    for workers in ("2", "3", "8"):
        monkeypatch.setenv("ANONAUDIT_WORKERS", workers)
        parts: list[int] = []

        def finish(outputs: np.ndarray) -> list[np.ndarray]:  # each part's outputs, in order
            parts.append(len(outputs))  # noqa: B023 - called within this iteration only
            return list(outputs)

        np.testing.assert_array_equal(np.stack(_forward(rec.session, batch, finish)), whole)
        assert min(parts) >= 2 and sum(parts) == len(batch)
        np.testing.assert_array_equal(
            np.stack(_forward(rec.session, batch[:3], finish)), whole[:3]
        )  # too few for two parts
        np.testing.assert_array_equal(
            np.stack(_forward(rec.session, batch[:7], finish, part_size=3)), whole[:7]
        )  # no lone crop
        np.testing.assert_array_equal(np.stack(_forward(rec.session, batch, finish, part_size=6)), whole)
        assert min(parts) >= 2


def test_text_detection_in_parallel_threads_finds_what_one_thread_finds(monkeypatch):
    scenes = synthetic_plates(5, seed=9, scenes=True)
    images = [scenes[i] for i in range(len(scenes))]
    found = {}
    for workers in ("1", "3"):
        monkeypatch.setenv("ANONAUDIT_WORKERS", workers)
        clear_memory()
        found[workers] = RapidOCREngine().detect_arrays(images)
    assert found["1"] == found["3"]  # every box and score, in order
    assert all(found["1"])  # text (the plate at least) found in every scene
