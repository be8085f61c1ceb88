"""SSIM and PSNR evaluators: agreement with scikit-image, regions, size mismatches, infinite PSNR."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from shared_data import shared_path
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.data.io import read_image
from anonaudit.errors import ConfigError, MismatchError
from anonaudit.evaluators import functional as F
from anonaudit.evaluators.fidelity import PSNR, SSIM
from anonaudit.metrics.image import box_mask
from anonaudit.metrics.image import ssim as image_ssim
from anonaudit.registry import EVALUATORS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _synthetic(n: int = 6, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 40 + 7 * i, 60 + 5 * i
        yy, xx = np.mgrid[:h, :w]
        base = np.stack([(xx * 3 + i) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], -1).astype(float)
        out.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return out


def _release(originals, anonymized, boxes=None) -> Release:
    keys = [f"img{i}" for i in range(len(originals))]
    o = ImageSet.from_arrays(originals, keys, boxes=boxes)
    return Release(o, ImageSet.from_arrays(anonymized, keys), name="test")


def _shared_images() -> list[np.ndarray]:
    folder = shared_path("plates_us/images")
    return [read_image(p) for p in sorted(folder.glob("*.png"))[:8]]


@pytest.mark.parametrize("source", ["synthetic", "plates_us"])
def test_ssim_psnr_agree_with_scikit_image(source):
    originals = _synthetic() if source == "synthetic" else _shared_images()
    rng = np.random.default_rng(1)
    anonymized = [_blur(im, 1.0 + i % 3) if i % 2 else np.clip(im + rng.normal(0, 12, im.shape), 0, 255).astype(np.uint8)
                  for i, im in enumerate(originals)]
    release = _release(originals, anonymized)
    ssim_ref = [structural_similarity(o, a, channel_axis=-1, data_range=255) for o, a in zip(originals, anonymized)]
    psnr_ref = [peak_signal_noise_ratio(o, a, data_range=255) for o, a in zip(originals, anonymized)]
    ev = SSIM()
    ev(release, batch_size=3)
    np.testing.assert_allclose(ev._scores, ssim_ref, atol=1e-4)
    est = F.ssim(release)
    assert est.value == pytest.approx(np.mean(ssim_ref), abs=1e-4) and est.n == len(originals)
    assert est.ci_low <= est.value <= est.ci_high and est.extra["metric_name"] == "ssim"
    est = F.psnr(release, batch_size=5)
    assert est.value == pytest.approx(np.mean(psnr_ref), abs=1e-4) and est.n == len(originals)
    gauss = F.ssim(release, gaussian_weights=True)
    ref = [structural_similarity(o, a, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
           for o, a in zip(originals, anonymized)]
    assert gauss.value == pytest.approx(np.mean(ref), abs=1e-4)


def test_regions_inside_and_outside_boxes():
    img = _synthetic(1)[0]  # 40 x 60
    box = Box(10, 8, 30, 20)
    anon = img.copy()
    anon[box.slices] = _blur(img, 3.0)[box.slices]  # change only inside the box
    release = _release([img], [anon], boxes=[[box]])
    crop_ssim = structural_similarity(img[box.slices], anon[box.slices], channel_axis=-1, data_range=255)
    crop_psnr = peak_signal_noise_ratio(img[box.slices], anon[box.slices], data_range=255)
    assert F.ssim(release, region="boxes").value == pytest.approx(crop_ssim, abs=1e-4)
    assert F.psnr(release, region="boxes").value == pytest.approx(crop_psnr, abs=1e-4)
    # The 7x7 window reaches 3 px from the box into the background, so the background SSIM is the
    # full map averaged by hand over the pixels outside the box and the 3 px border.
    _, smap = structural_similarity(img, anon, channel_axis=-1, data_range=255, full=True)
    mask = ~box_mask(img.shape, [box])
    mask[:3], mask[-3:], mask[:, :3], mask[:, -3:] = False, False, False, False
    assert F.ssim(release, region="outside_boxes").value == pytest.approx(smap[mask].mean(), abs=1e-12)
    assert F.ssim(release, region="outside_boxes").value > F.ssim(release, region="boxes").value
    out = F.psnr(release, region="outside_boxes")
    assert out.value == 100.0 and out.extra["identical"] == 1 and out.extra["metric_name"] == "psnr_outside_boxes"


def test_outside_boxes_without_boxes_is_undefined_not_whole_image():
    """With no box on either side the background is undefined: such pairs are dropped and counted,
    not scored as the whole image (an untouched image would inflate background preservation)."""
    imgs = _synthetic(3)
    anon = [_blur(im, 2.0) for im in imgs]
    release = _release(imgs, anon)
    for region in ("boxes", "outside_boxes"):
        for est in (F.ssim(release, region=region), F.psnr(release, region=region)):
            assert est.n == 0 and math.isnan(est.value) and est.extra["no_region"] == 3
    # The pure function keeps its documented identity: no boxes -> the whole-image value.
    assert image_ssim(imgs[0], anon[0], "outside_boxes", ()) == pytest.approx(
        structural_similarity(imgs[0], anon[0], channel_axis=-1, data_range=255), abs=1e-12)


def test_boxes_recorded_by_the_anonymizer_are_used_when_originals_have_none():
    """Face anonymizers record the faces their detector found on their output records."""
    img = _synthetic(1)[0]
    box = Box(10, 8, 30, 20)
    anon = img.copy()
    anon[box.slices] = _blur(img, 3.0)[box.slices]
    annotated = _release([img], [anon], boxes=[[box]])
    recorded = Release(ImageSet.from_arrays([img], ["img0"]), ImageSet.from_arrays([anon], ["img0"], boxes=[[box]]), name="test")
    assert recorded.anonymized.records[0].boxes == (box,) and not recorded.originals.records[0].boxes
    for region in ("boxes", "outside_boxes"):
        got = F.ssim(recorded, region=region)
        assert got.value == pytest.approx(F.ssim(annotated, region=region).value, abs=1e-12)
        assert got.extra["boxes_from_release"] == 1


def test_box_crops_smaller_than_window_are_skipped():
    img = _synthetic(1)[0]
    release = _release([img, img], [_blur(img, 2), _blur(img, 2)], boxes=[[Box(0, 0, 5, 30)], [Box(0, 0, 20, 20), Box(30, 5, 4, 4)]])
    est = F.ssim(release, region="boxes")
    crop = (slice(0, 20), slice(0, 20))
    ref = structural_similarity(img[crop], _blur(img, 2)[crop], channel_axis=-1, data_range=255)
    assert est.n == 1 and est.extra["no_region"] == 1 and est.value == pytest.approx(ref, abs=1e-4)


def test_size_mismatch_names_key_and_sizes():
    a = np.zeros((30, 40, 3), np.uint8)
    b = np.zeros((32, 40, 3), np.uint8)
    release = _release([a, a], [a, b])
    for ev in (SSIM(), PSNR()):
        with pytest.raises(MismatchError, match=r"img1: original is 40x30 but the anonymized image is 40x32"):
            ev(release)


def test_identical_images_psnr_is_capped_or_excluded_never_crashes():
    imgs = _synthetic(4)
    release = _release(imgs, [im.copy() for im in imgs])
    est = F.psnr(release)
    assert est.value == 100.0 and est.n == 4 and est.extra["identical"] == 4 and est.ci_low == est.ci_high == 100.0
    excluded = F.psnr(release, max_db=None)
    assert excluded.n == 0 and math.isnan(excluded.value) and excluded.extra["identical"] == 4 and excluded.extra["no_region"] == 0
    mixed = _release(imgs, [imgs[0].copy()] + [_blur(im, 2) for im in imgs[1:]])
    est = F.psnr(mixed, max_db=None)
    ref = [peak_signal_noise_ratio(o, _blur(o, 2), data_range=255) for o in imgs[1:]]
    assert est.n == 3 and est.value == pytest.approx(np.mean(ref), abs=1e-4) and math.isfinite(est.ci_high)
    assert F.ssim(release).value == pytest.approx(1.0)


@pytest.mark.shared_data("scenes_eu")
def test_scene_background_preservation_on_real_data():
    folder = SHARED / "scenes_eu"
    images, boxes = [], []
    for txt in sorted(folder.glob("*.txt"))[:4]:
        name, x, y, w, h, _ = txt.read_text().split("\t")[:6]
        images.append(read_image(folder / name))
        boxes.append([Box(int(x), int(y), int(w), int(h))])
    anon = []
    for im, (b,) in zip(images, boxes):
        out = im.copy()
        out[b.slices] = 0  # mask the plate only
        anon.append(out)
    release = _release(images, anon, boxes)
    assert F.psnr(release, region="outside_boxes").extra["identical"] == 4
    inside = F.ssim(release, region="boxes")
    outside = F.ssim(release, region="outside_boxes")
    assert inside.value < 0.2 and outside.value > 0.98
    whole = F.ssim(release)
    assert whole.value == pytest.approx(np.mean([structural_similarity(o, a, channel_axis=-1, data_range=255)
                                                 for o, a in zip(images, anon)]), abs=1e-4)


def test_registry_params_and_bad_region():
    ev = EVALUATORS.create("ssim", region="boxes")
    assert isinstance(ev, SSIM) and ev.get_params() == {"region": "boxes", "gaussian_weights": False}
    assert EVALUATORS.create("psnr").get_params() == {"region": "image", "max_db": 100.0}
    with pytest.raises(ConfigError, match="region must be one of"):
        SSIM(region="background")
    with pytest.raises(ConfigError, match="max_db"):
        PSNR(max_db=0)
