"""SSIM and PSNR: the standard SSIM against independent implementations (torchmetrics' SSIM map, a
transcription of Wang et al.'s reference code), the 7x7 variant against scikit-image, regions, size
mismatches, infinite PSNR of identical pairs, and the classes agreeing with their kernels."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.signal import correlate2d
from shared_data import shared_path
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.data.io import read_image
from anonaudit.errors import ConfigError, MismatchError
from anonaudit.evaluators import functional as F
from anonaudit.evaluators.fidelity import PSNR, SSIM, SSIMUniform7
from anonaudit.measurement import Measurement
from anonaudit.metrics.image import box_mask
from anonaudit.registry import EVALUATORS
from anonaudit.results import measurement_rows
from anonaudit.stats import wilson_interval

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: scikit-image arguments of the standard SSIM (used only where the test needs the SSIM *map*)
GAUSS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


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


def _degraded(originals: list[np.ndarray]) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [_blur(im, 1.0 + i % 3) if i % 2 else np.clip(im + rng.normal(0, 12, im.shape), 0, 255).astype(np.uint8)
            for i, im in enumerate(originals)]


def _by_name(result) -> dict[str, Measurement]:
    return {m.metric: m for m in result}


def _wang_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s reference ``ssim_index.m`` transcribed: 11x11 Gaussian (sigma 1.5) window,
    ``filter2(..., 'valid')``, K = (0.01, 0.03), L = 255; mean of the map, averaged over channels."""
    g = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(a.shape[2]):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)

        def filt(z):
            return correlate2d(z, window, mode="valid")

        mx, my = filt(x), filt(y)
        sxx, syy, sxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
        values.append((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).mean())
    return float(np.mean(values))


def _torchmetrics_ssim_valid(a: np.ndarray, b: np.ndarray) -> float:
    """torchmetrics' SSIM map (Gaussian 11x11, sigma 1.5, data_range 255) averaged over the valid region.

    torchmetrics 1.x reflect-pads the image and also averages the 5-pixel border, where the window
    leaves the image; Wang's reference and pytorch-msssim (and this suite) average the valid region."""
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.image import structural_similarity_index_measure

    torch.set_num_threads(1)

    def t(x):
        return torch.tensor(x, dtype=torch.float64).permute(2, 0, 1)[None]

    _, smap = structural_similarity_index_measure(t(b), t(a), gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                                  data_range=255.0, k1=0.01, k2=0.03, return_full_image=True)
    return float(smap[..., 5:-5, 5:-5].mean())


@pytest.mark.parametrize("source", ["synthetic", "plates_us"])
def test_standard_ssim_matches_independent_implementations(source):
    originals = _synthetic() if source == "synthetic" else _shared_images()
    anonymized = _degraded(originals)
    release = _release(originals, anonymized)
    per_pair = [F.ssim(o, a) for o, a in zip(originals, anonymized)]
    np.testing.assert_allclose(
        per_pair, [_torchmetrics_ssim_valid(o, a) for o, a in zip(originals, anonymized)], atol=1e-9
    )
    np.testing.assert_allclose(per_pair, [_wang_ssim(o, a) for o, a in zip(originals, anonymized)], atol=1e-9)
    m = SSIM()(release, batch_size=3)
    assert isinstance(m, Measurement) and m.metric == "ssim" and m.higher_is_better and m.original is None
    est = m.release
    assert est.standard and est.value == pytest.approx(np.mean(per_pair), abs=1e-12) and est.n == len(originals)
    assert est.ci_low <= est.value <= est.ci_high and "11x11 Gaussian" in est.method


def test_uniform7_variant_is_scikit_image_default_and_not_standard():
    originals = _synthetic()
    anonymized = _degraded(originals)
    ref = [structural_similarity(o, a, channel_axis=-1, data_range=255) for o, a in zip(originals, anonymized)]
    np.testing.assert_allclose(
        [F.ssim(o, a, window="uniform7") for o, a in zip(originals, anonymized)], ref, atol=1e-12
    )
    m = EVALUATORS.create("ssim_uniform7")(_release(originals, anonymized))
    assert isinstance(m.release.value, float) and m.metric == "ssim_uniform7"
    assert m.release.value == pytest.approx(np.mean(ref), abs=1e-12)
    assert m.release.standard is False and "not Wang et al.'s 11x11 Gaussian" in m.release.reason
    # a real difference, not a relabelling: the two windows give different numbers on the same pairs
    assert abs(m.release.value - SSIM()(_release(originals, anonymized)).release.value) > 1e-3


def test_psnr_class_agrees_with_its_kernel_and_scikit_image():
    originals = _synthetic()
    anonymized = _degraded(originals)
    ref = [peak_signal_noise_ratio(o, a, data_range=255) for o, a in zip(originals, anonymized)]
    np.testing.assert_allclose([F.psnr(o, a) for o, a in zip(originals, anonymized)], ref, atol=1e-9)
    got = _by_name(PSNR()(_release(originals, anonymized), batch_size=5))
    assert set(got) == {"psnr", "psnr_identical_pairs"}
    assert got["psnr"].release.value == pytest.approx(np.mean(ref), abs=1e-9) and got["psnr"].release.n == len(ref)
    assert got["psnr_identical_pairs"].release.value == 0.0 and got["psnr_identical_pairs"].release.n == len(ref)


def test_psnr_identical_pairs_are_infinite_and_counted_hand_computed():
    """2x2 RGB pairs (12 values): +1 everywhere is MSE 1, PSNR 10 log10(255^2) = 48.1308 dB; one value
    off by 6 is MSE 36/12 = 3, PSNR 10 log10(255^2 / 3) = 43.3596 dB; two pairs are identical."""
    zero = np.zeros((2, 2, 3), np.uint8)
    one_off = zero.copy()
    one_off[0, 0, 0] = 6
    release = _release([zero] * 4, [zero.copy(), zero + 1, one_off, zero.copy()])
    got = _by_name(PSNR()(release))
    psnr, share = got["psnr"].release, got["psnr_identical_pairs"].release
    assert psnr.value == pytest.approx((48.1308036086791 + 43.35959106148248) / 2, abs=1e-9) and psnr.n == 2
    assert psnr.ci_low >= 43.35959106148248 - 1e-9 and psnr.ci_high <= 48.1308036086791 + 1e-9
    assert psnr.extra["identical_pairs"] == 2 and "2 identical pairs" in psnr.method
    assert (share.value, share.n) == (0.5, 4) and (share.ci_low, share.ci_high) == pytest.approx(wilson_interval(2, 4))
    assert (share.ci_low, share.ci_high) == pytest.approx((0.15003898915214947, 0.8499610108478506))
    # every pair identical: the PSNR is infinite, never a capped number averaged in
    same = _by_name(PSNR()(_release([zero] * 4, [zero.copy()] * 4)))
    assert same["psnr"].release.value == math.inf and same["psnr"].release.n == 4
    assert same["psnr_identical_pairs"].release.value == 1.0
    assert same["psnr_identical_pairs"].release.ci_low == pytest.approx(0.5101091635454027)
    # ... and each measurement is one row of the results table
    rows = measurement_rows(PSNR()(release), {"target": "t"}, "evaluator", 0.0)
    assert [r["metric"] for r in rows] == ["psnr", "psnr_identical_pairs"] and rows[1]["value"] == 0.5
    assert all(r["higher_is_better"] is True and r["risk"] is None for r in rows)
    assert "identical_pairs=2" in rows[0]["message"]


def test_regions_inside_and_outside_boxes():
    img = _synthetic(1)[0]  # 40 x 60
    box = Box(10, 8, 30, 20)
    anon = img.copy()
    anon[box.slices] = _blur(img, 3.0)[box.slices]  # change only inside the box
    release = _release([img], [anon], boxes=[[box]])
    assert SSIM(region="boxes")(release).release.value == pytest.approx(
        _wang_ssim(img[box.slices], anon[box.slices]), abs=1e-9
    )
    crop_psnr = peak_signal_noise_ratio(img[box.slices], anon[box.slices], data_range=255)
    assert _by_name(PSNR(region="boxes")(release))["psnr_boxes"].release.value == pytest.approx(crop_psnr, abs=1e-9)
    # The 11x11 window reaches 5 px from the box into the background, so the background SSIM is the
    # full map averaged by hand over the pixels outside the box and the 5 px border.
    _, smap = structural_similarity(img, anon, channel_axis=-1, data_range=255, full=True, **GAUSS)
    mask = ~box_mask(img.shape, [box])
    mask[:5], mask[-5:], mask[:, :5], mask[:, -5:] = False, False, False, False
    outside = SSIM(region="outside_boxes")(release)
    assert outside.metric == "ssim_outside_boxes" and outside.release.value == pytest.approx(
        smap[mask].mean(), abs=1e-12
    )
    assert outside.release.value > SSIM(region="boxes")(release).release.value
    out = _by_name(PSNR(region="outside_boxes")(release))
    assert out["psnr_outside_boxes"].release.value == math.inf  # the background is untouched
    assert out["psnr_outside_boxes_identical_pairs"].release.value == 1.0


def test_outside_boxes_without_boxes_is_undefined_not_whole_image():
    """With no box on either side the background is undefined: such pairs are dropped and counted,
    not scored as the whole image (an untouched image would inflate background preservation)."""
    imgs = _synthetic(3)
    anon = [_blur(im, 2.0) for im in imgs]
    release = _release(imgs, anon)
    for region in ("boxes", "outside_boxes"):
        for m in (SSIM(region=region)(release), *PSNR(region=region)(release)):
            assert m.release.n == 0 and math.isnan(m.release.value)
        assert SSIM(region=region)(release).release.extra["no_region"] == 3
    # The kernel keeps its documented identity: no boxes -> the whole-image value.
    assert F.ssim(imgs[0], anon[0], "outside_boxes", ()) == pytest.approx(F.ssim(imgs[0], anon[0]), abs=1e-12)


def test_boxes_recorded_by_the_anonymizer_are_used_when_originals_have_none():
    """Face anonymizers record the faces their detector found on their output records."""
    img = _synthetic(1)[0]
    box = Box(10, 8, 30, 20)
    anon = img.copy()
    anon[box.slices] = _blur(img, 3.0)[box.slices]
    annotated = _release([img], [anon], boxes=[[box]])
    recorded = Release(
        ImageSet.from_arrays([img], ["img0"]), ImageSet.from_arrays([anon], ["img0"], boxes=[[box]]), name="test"
    )
    assert recorded.anonymized.records[0].boxes == (box,) and not recorded.originals.records[0].boxes
    for region in ("boxes", "outside_boxes"):
        got = SSIM(region=region)(recorded).release
        assert got.value == pytest.approx(SSIM(region=region)(annotated).release.value, abs=1e-12)
        assert got.extra["boxes_from_release"] == 1


def test_box_crops_smaller_than_the_window_are_skipped():
    img = _synthetic(1)[0]
    blurred = _blur(img, 2)
    release = _release(
        [img, img], [blurred, blurred], boxes=[[Box(0, 0, 5, 30)], [Box(0, 0, 20, 20), Box(30, 5, 4, 4)]]
    )
    est = SSIM(region="boxes")(release).release
    crop = (slice(0, 20), slice(0, 20))
    assert (
        est.n == 1
        and est.extra["no_region"] == 1
        and est.value == pytest.approx(_wang_ssim(img[crop], blurred[crop]), abs=1e-9)
    )
    # an 8x8 crop fits the 7x7 window but not the 11x11 one
    small = _release([img], [blurred], boxes=[[Box(2, 2, 8, 8)]])
    assert SSIM(region="boxes")(small).release.n == 0 and SSIMUniform7(region="boxes")(small).release.n == 1


def test_images_smaller_than_the_window_are_counted_not_scored():
    tiny, big = np.zeros((9, 30, 3), np.uint8), _synthetic(1)[0]
    release = _release([tiny, big], [tiny + 1, _blur(big, 2)])
    est = SSIM()(release).release
    assert (
        est.n == 1 and est.extra["no_region"] == 1 and est.value == pytest.approx(F.ssim(big, _blur(big, 2)), abs=1e-12)
    )
    assert math.isnan(F.ssim(tiny, tiny, "outside_boxes")) and SSIMUniform7()(release).release.n == 2


def test_size_mismatch_names_key_and_sizes():
    a = np.zeros((30, 40, 3), np.uint8)
    b = np.zeros((32, 40, 3), np.uint8)
    release = _release([a, a], [a, b])
    for ev in (SSIM(), SSIMUniform7(), PSNR()):
        with pytest.raises(MismatchError, match=r"img1: original is 40x30 but the anonymized image is 40x32"):
            ev(release)


def test_identical_images_have_ssim_one():
    imgs = _synthetic(4)
    release = _release(imgs, [im.copy() for im in imgs])
    for ev in (SSIM(), SSIMUniform7()):
        assert ev(release).release.value == pytest.approx(1.0, abs=1e-12)


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
    assert _by_name(PSNR(region="outside_boxes")(release))["psnr_outside_boxes_identical_pairs"].release.value == 1.0
    inside = SSIM(region="boxes")(release).release
    outside = SSIM(region="outside_boxes")(release).release
    assert inside.value < 0.2 and outside.value > 0.98
    assert SSIM()(release).release.value == pytest.approx(
        np.mean([F.ssim(o, a) for o, a in zip(images, anon)]), abs=1e-12
    )


def test_registry_params_and_bad_region():
    ev = EVALUATORS.create("ssim", region="boxes")
    assert isinstance(ev, SSIM) and ev.get_params() == {"region": "boxes"}
    assert EVALUATORS.create("psnr").get_params() == {"region": "image"}
    assert isinstance(EVALUATORS.create("ssim_uniform7"), SSIMUniform7)
    with pytest.raises(ConfigError, match="region must be one of"):
        SSIM(region="background")
    with pytest.raises(ValueError, match="window must be one of"):
        F.ssim(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8), window="gaussian7")
