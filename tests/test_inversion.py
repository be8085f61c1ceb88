"""Inversion attacks: kernels and deconvolution against scipy/scikit-image references, mosaic
geometry on known answers, and planted leaks (blur and pixelation that plain OCR cannot read but
inversion makes readable)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage, signal
from scipy.stats import binomtest
from skimage import restoration

from anonaudit.anonymizers.base import Anonymizer
from anonaudit.anonymizers.classical import (
    BoxBlur,
    GaussianBlur,
    Mask,
    Noise,
    Pixelate,
    gaussian_blur,
    pixelate,
)
from anonaudit.anonymizers.external import ExternalRelease
from anonaudit.anonymizers.face_regions import FaceBlur, FacePixelate, opencv_sigma
from anonaudit.attacks.inversion import (
    Candidate,
    DeblurThenOCR,
    DepixelateThenOCR,
    blur_grey,
    blur_grey_adjoint,
    blur_psf,
    cell_means,
    depixelate,
    estimate_grid,
    psf_1d,
    restore,
    richardson_lucy,
    richardson_lucy_deconvolve,
    wiener_deconvolve,
)
from anonaudit.audit import Audit
from anonaudit.data.degradation import (
    BoxBlurOperator,
    GaussianBlurOperator,
    MaskOperator,
    NoiseOperator,
    PixelateOperator,
)
from anonaudit.data.imageset import Box, ImageSet, Record, Release
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import ConfigError
from anonaudit.models.ocr import plate_box
from anonaudit.registry import ANONYMIZERS, ATTACKS


def release_of(images: ImageSet, anonymizer) -> Release:
    """The release as the audit builds it: with the anonymizer's declared degradation operator."""
    anonymized = anonymizer.anonymize(images, show_progress=False)
    return Release(images, anonymized, anonymizer.name, anonymizer.get_params(), degradation=anonymizer.degradation())


def undeclared(release: Release) -> Release:
    """The same pixels as an external release: no name, no parameters, no declared operator."""
    return Release(release.originals, release.anonymized, "external", {})


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def assert_planted_leak_found(result, min_gain: float) -> None:
    """Inversion reads significantly more plates than plain OCR (paired exact McNemar test)."""
    raw, inv = result.metric("exact_match_raw").release, result.metric("exact_match_inverted").release
    assert inv.value >= raw.value + min_gain, (raw, inv)
    assert inv.ci_low > raw.ci_high, (raw, inv)
    d = result.details
    only_inverted = int((d["exact_inverted"] & ~d["exact_raw"]).sum())
    only_raw = int((~d["exact_inverted"] & d["exact_raw"]).sum())
    assert binomtest(only_inverted, only_inverted + only_raw, 0.5, alternative="greater").pvalue < 0.01


# -- kernels and deconvolution ----------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.7])
def test_gaussian_psf_is_the_anonymizers_impulse_response(sigma):
    k = psf_1d("gaussian", sigma)
    r = len(k) // 2
    assert r == int(4 * sigma + 0.5) and k.sum() == pytest.approx(1.0)
    x = np.arange(-r, r + 1)
    expected = np.exp(-(x**2) / (2 * sigma**2))
    np.testing.assert_allclose(k, expected / expected.sum(), atol=1e-12)
    image = np.random.default_rng(0).random((30, 41))
    np.testing.assert_allclose(
        blur_grey(image, k), ndimage.gaussian_filter(image, sigma, truncate=4.0, mode="reflect"), atol=1e-12
    )
    assert blur_psf("gaussian", sigma).shape == (2 * r + 1, 2 * r + 1)


@pytest.mark.parametrize("size", [3, 4, 5, 8])
def test_box_psf_matches_uniform_filter_including_even_sizes(size):
    k = psf_1d("box", size)
    assert k.sum() == pytest.approx(1.0) and np.count_nonzero(k) == size
    image = np.random.default_rng(1).random((25, 33))
    np.testing.assert_allclose(blur_grey(image, k), ndimage.uniform_filter(image, size, mode="reflect"), atol=1e-12)


def test_adjoint_is_the_transpose_away_from_borders():
    rng = np.random.default_rng(2)
    k = psf_1d("box", 4)
    x = np.zeros((40, 40))
    y = np.zeros((40, 40))
    x[10:30, 10:30] = rng.random((20, 20))
    y[10:30, 10:30] = rng.random((20, 20))
    assert np.sum(blur_grey(x, k) * y) == pytest.approx(np.sum(x * blur_grey_adjoint(y, k)), rel=1e-12)


def test_richardson_lucy_matches_scikit_image():
    rng = np.random.default_rng(3)
    truth = rng.random((32, 40))
    psf = blur_psf("gaussian", 1.5)
    observed = signal.convolve(truth, psf, "same")
    reference = restoration.richardson_lucy(observed, psf, num_iter=12, clip=False)
    ours = richardson_lucy(
        observed,
        lambda v: signal.convolve(v, psf, "same"),
        lambda v: signal.convolve(v, psf[::-1, ::-1], "same"),
        12,
        init=np.full(observed.shape, 0.5),
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)


def test_deconvolution_restores_a_blurred_plate_crop():
    plate = synthetic_plates(1, seed=5)[0].astype(np.float64).mean(axis=2) / 255.0
    sigma = 3.0
    blurred = ndimage.gaussian_filter(plate, sigma, truncate=4.0, mode="reflect")
    blurred = np.round(blurred * 255) / 255  # 8-bit release
    before = psnr(blurred, plate)
    assert psnr(wiener_deconvolve(blurred, blur_psf("gaussian", sigma), 0.001), plate) > before + 3
    assert psnr(richardson_lucy_deconvolve(blurred, "gaussian", sigma, 30), plate) > before + 1


# -- mosaics ------------------------------------------------------------------------------------


def test_cell_means_and_bicubic_reproduce_cell_values():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (35, 47, 3), dtype=np.uint8)
    mosaic = pixelate(image, 5)
    means, (left, top) = cell_means(mosaic, 5)
    assert (left, top) == (0, 0) and means.shape == (7, 10, 3)
    np.testing.assert_allclose(means, mosaic[::5, ::5].astype(float))
    up = depixelate(mosaic, 5, "bicubic")
    # Odd block: the centre pixel of a full cell is the cell centre, interpolation passes through it.
    np.testing.assert_allclose(up[2:35:5, 2:45:5], mosaic[2:35:5, 2:45:5], atol=1)
    smooth = depixelate(mosaic, 5, "gaussian")
    ref = ndimage.gaussian_filter(mosaic.astype(np.float32), sigma=(2.5, 2.5, 0), mode="reflect")
    np.testing.assert_array_equal(smooth, np.clip(np.round(ref), 0, 255).astype(np.uint8))
    with pytest.raises(ConfigError):
        depixelate(mosaic, 5, "nearest")


def test_cell_means_with_a_phase_shift():
    image = np.random.default_rng(5).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    mosaic = pixelate(image, 6)[2:, 3:]  # crop: cells now start at x = 3, y = 4 in the crop
    means, (left, top) = cell_means(mosaic, 6, phase=(3, 4))
    assert (left, top) == (3, 2)
    np.testing.assert_allclose(
        means[1:, 1:], pixelate(image, 6)[6::6, 6::6].astype(float)[: means.shape[0] - 1, : means.shape[1] - 1]
    )


@pytest.mark.parametrize("block,dx,dy", [(7, 3, 5), (4, 0, 0), (12, 11, 1)])
def test_estimate_grid_finds_block_and_phase(block, dx, dy):
    image = np.random.default_rng(block).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    crop = pixelate(image, block)[dy:, dx:]
    b, phase = estimate_grid(crop)
    assert b == block and phase == ((-dx) % block, (-dy) % block)


@pytest.mark.parametrize("quality", [90, 60])
def test_estimate_grid_survives_jpeg_compression(quality):
    plates = synthetic_plates(5, seed=7)
    for i, block in enumerate((4, 5, 9, 13, 16)):  # blocks up to a quarter of the plate height
        buf = io.BytesIO()
        Image.fromarray(pixelate(plates[i], block)).save(buf, "JPEG", quality=quality)
        assert estimate_grid(np.asarray(Image.open(buf))) == (block, (0, 0))


def test_estimate_grid_rejects_images_that_are_not_mosaics():
    plates = synthetic_plates(2, seed=8)
    assert estimate_grid(plates[0]) is None and estimate_grid(plates[1]) is None
    noise = np.random.default_rng(9).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    assert estimate_grid(noise) is None
    assert estimate_grid(np.zeros((20, 20, 3), np.uint8)) is None


# -- release parameters and geometry -----------------------------------------------------------


def test_classical_anonymizers_declare_their_operator():
    assert GaussianBlur(sigma=0.1, relative=True, region="boxes", margin=0.1).degradation() == GaussianBlurOperator(
        sigma=0.1, relative=True, region="boxes", margin=0.1
    )
    assert BoxBlur(size=5).degradation() == BoxBlurOperator(size=5.0)
    assert Pixelate(block=8).degradation() == PixelateOperator(block=8.0)
    assert Mask(color=(1, 2, 3), region="boxes").degradation() == MaskOperator(color=(1, 2, 3), region="boxes")
    assert Noise(std=9).degradation() == NoiseOperator(std=9.0)
    assert FaceBlur(kernel=15).degradation() == GaussianBlurOperator(sigma=opencv_sigma(15), region="boxes")
    assert FacePixelate(block=25).degradation() == PixelateOperator(block=25.0, region="boxes")
    plates = synthetic_plates(2, seed=1)
    assert release_of(plates, Pixelate(block=8)).subset([1]).degradation == PixelateOperator(block=8.0)
    assert Release(plates, plates).degradation is None
    with pytest.raises(ConfigError, match="region"):
        GaussianBlurOperator(sigma=1.0, region="face")
    with pytest.raises(ConfigError, match="sigma"):
        GaussianBlurOperator(sigma=float("nan"))


def test_operator_regions_and_description():
    rec = Record("k", boxes=(Box(50, 40, 60, 20, "plate"), Box(190, 95, 30, 30)))
    op = GaussianBlurOperator(sigma=0.5, relative=True, region="boxes", margin=0.1)
    # grown by 10% of width and height on each side, clipped to the 200 x 100 image
    assert op.regions(rec, (100, 200, 3)) == [(Box(44, 38, 72, 24, "plate"), 12.0), (Box(187, 92, 13, 8), 4.0)]
    assert GaussianBlurOperator(sigma=0.5, relative=True).regions(rec, (100, 200, 3)) == [(Box(0, 0, 200, 100), 10.0)]
    assert op.regions(Record("none"), (100, 200, 3)) == []
    assert op.with_strength(3.0, relative=False) == GaussianBlurOperator(sigma=3.0, region="boxes", margin=0.1)
    assert op.describe() == "gaussian_blur(sigma=0.5 x region height, truncate=4) in boxes grown by 0.1"
    assert PixelateOperator(block=8.0).describe() == "pixelate(block=8 px) whole image"


def test_restore_touches_exactly_the_anonymized_boxes():
    image = np.full((100, 200, 3), 7, np.uint8)
    rec = Record("k", boxes=(Box(50, 40, 60, 20, "plate"),))
    seen = []

    def fn(region, strength, box):
        seen.append((region.shape, strength, box))
        return np.zeros_like(region)

    crop = Box(47, 39, 66, 22)
    out = restore(
        image, GaussianBlurOperator(sigma=0.5, relative=True, region="boxes", margin=0.1), rec, crop, fn, lambda s: 0
    )
    box = Box(44, 38, 72, 24, "plate")  # grown by 10% of width and height on each side
    assert seen == [((24, 72, 3), 12.0, box)]  # relative strength: 0.5 x the grown box height
    assert (out[box.slices] == 0).all() and out.sum() == image.sum() - image[box.slices].sum()
    seen.clear()
    out = restore(image, GaussianBlurOperator(sigma=2.0), rec, rec.boxes[0], fn, lambda s: 10)
    assert seen[0][2] == Box(40, 30, 80, 40) and seen[0][1] == 2.0  # plate box + 10 px context


def test_parameters_are_validated():
    assert isinstance(ATTACKS.create("deblur_ocr"), DeblurThenOCR)
    assert isinstance(ATTACKS.create("depixelate_ocr"), DepixelateThenOCR)
    with pytest.raises(ConfigError, match="methods"):
        DeblurThenOCR(methods=("unsharp",))
    with pytest.raises(ConfigError, match="blind_sigmas"):
        DeblurThenOCR(blind_sigmas=())
    with pytest.raises(ConfigError, match="blind_blocks"):
        DepixelateThenOCR(blind_blocks=(1,))


# -- planted leaks ------------------------------------------------------------------------------


@pytest.mark.debian("tesseract")
def test_planted_leak_mild_blur_tesseract_cannot_read_is_read_after_deconvolution():
    plates = synthetic_plates(16, seed=43)
    release = release_of(plates, GaussianBlur(sigma=0.07, relative=True))  # ~5 px on these plates
    result = DeblurThenOCR(engine="tesseract", wiener_balances=(0.01,), sigma_scales=(1.0,)).run(release)
    raw = result.metric("exact_match_raw")
    assert raw.release.value <= 0.4 and raw.original.value >= 0.6  # plain OCR fails on the release only
    assert_planted_leak_found(result, min_gain=0.3)
    assert result.metric("exact_match_richardson_lucy").release.value > raw.release.value
    assert result.metric("char_accuracy_inverted").release.value > result.metric("char_accuracy_raw").release.value
    assert result.notes[0].startswith("inversion with the declared operator gaussian_blur(sigma=0.07 x region height")
    assert set(result.details["method_inverted"]) <= {"wiener", "richardson_lucy"}


def test_planted_leak_blur_rapidocr_cannot_read_is_read_after_wiener():
    plates = synthetic_plates(20, seed=41)
    release = release_of(plates, GaussianBlur(sigma=0.13, relative=True))
    result = DeblurThenOCR(methods=("wiener",)).run(release)
    assert result.metric("exact_match_raw").release.value <= 0.3
    assert result.metric("exact_match_raw").original.value >= 0.9
    assert_planted_leak_found(result, min_gain=0.3)
    assert result.metric("exact_match_inverted").baseline == pytest.approx(0.0, abs=1e-9)


def test_deblurring_a_mask_reads_nothing_even_when_forced_blind():
    plates = synthetic_plates(4, seed=44)
    result = DeblurThenOCR(methods=("wiener",), wiener_balances=(0.01,), blind="always").run(release_of(plates, Mask()))
    assert result.notes[0].startswith("blind inversion")
    assert result.metric("exact_match_inverted").release.value == 0.0
    assert result.metric("char_accuracy_inverted").release.value == 0.0


def test_releases_of_methods_an_attack_does_not_invert_keep_the_raw_reading():
    plates = synthetic_plates(4, seed=47)
    pixelated = release_of(plates, Pixelate(block=0.1, relative=True))
    blurred = release_of(plates, GaussianBlur(sigma=0.1, relative=True))
    for attack, release in ((DeblurThenOCR(), pixelated), (DepixelateThenOCR(), blurred)):
        result = attack.run(release)
        assert result.notes[0].startswith(
            f"no inversion: the release declares {release.degradation.describe()}, which {attack.name}"
        )
        names = [m.metric for m in result.metrics]
        assert names == ["exact_match_raw", "exact_match_inverted", "char_accuracy_raw", "char_accuracy_inverted"]
        assert result.metric("exact_match_inverted").release == result.metric("exact_match_raw").release
        assert (result.details["method_inverted"] == "raw").all()
    unknown = undeclared(blurred)
    assert DeblurThenOCR(blind="never").plan(unknown) == ("skip", None)
    assert DeblurThenOCR().plan(unknown) == ("blind", None)
    assert DeblurThenOCR(use_known_kernel=False).plan(blurred) == ("blind", None)
    assert DeblurThenOCR(blind="always").plan(pixelated) == ("blind", None)
    assert DeblurThenOCR().plan(blurred) == ("declared", blurred.degradation)
    with pytest.raises(ConfigError, match="blind"):
        DeblurThenOCR(blind="sometimes")


def test_box_blur_in_scene_boxes_is_inverted_with_the_declared_kernel():
    scenes = synthetic_plates(6, seed=45, scenes=True)
    release = release_of(scenes, BoxBlur(size=0.25, relative=True, region="boxes"))
    result = DeblurThenOCR(methods=("wiener",), wiener_balances=(0.003,)).run(release)
    raw, inv = result.metric("exact_match_raw").release.value, result.metric("exact_match_inverted").release.value
    assert raw <= 0.2 and inv >= raw + 0.3
    assert (result.details["strength_px_inverted"] > 0).all()


def test_planted_leak_pixelation_is_read_after_depixelation():
    plates = synthetic_plates(20, seed=46)
    release = release_of(plates, Pixelate(block=0.12, relative=True))
    known = DepixelateThenOCR().run(release)
    assert known.metric("exact_match_raw").release.value <= 0.2
    assert_planted_leak_found(known, min_gain=0.3)
    # Blind: the grid estimated from the image is the true block, so the readings are the same.
    blind = DepixelateThenOCR(use_known_block=False).run(release)
    assert blind.notes[0].startswith("blind")
    np.testing.assert_array_equal(blind.details["strength_px_inverted"], known.details["strength_px_inverted"])
    assert blind.metric("exact_match_inverted").release.value == known.metric("exact_match_inverted").release.value


def test_confident_raw_readings_are_kept_without_inversion():
    plates = synthetic_plates(8, seed=48)
    release = release_of(plates, GaussianBlur(sigma=0.1, relative=True))
    full = DeblurThenOCR(methods=("wiener",), wiener_balances=(0.01,)).run(release)
    fast = DeblurThenOCR(methods=("wiener",), wiener_balances=(0.01,), accept_confident=0.99).run(release)
    confident = full.details["conf_raw"] >= 0.99
    assert 0 < confident.sum() < len(plates)  # both kinds present in this sample
    d = fast.details
    assert (d.loc[confident, "method_inverted"] == "raw (confident)").all()
    assert (d.loc[confident, "read_inverted"] == d.loc[confident, "read_raw"]).all()
    assert (d.loc[~confident, "read_inverted"] == full.details.loc[~confident, "read_inverted"]).all()
    assert any(f"{int(confident.sum())} image(s) read raw with confidence >= 0.99" in n for n in fast.notes)
    wiener = fast.metric("exact_match_wiener").release
    assert wiener.n == len(plates)
    with pytest.raises(ConfigError, match="accept_confident"):
        DeblurThenOCR(accept_confident=1.5)


# -- declared and estimated operators -----------------------------------------------------------


class SoftFocus(Anonymizer):
    """A method the suite has never heard of (not registered): a Gaussian blur of ``strength`` x
    plate height, which it declares."""

    name = "soft_focus"

    def __init__(self, strength: float = 0.12):
        self.strength = strength

    def anonymize_image(self, image, record):
        return gaussian_blur(image, self.strength * record.boxes[0].h)

    def degradation(self):
        return GaussianBlurOperator(sigma=self.strength, relative=True)


def deblur_rows(results):
    table = results.table
    return table[table["component"] == "deblur_ocr"].set_index("metric")


def test_an_unregistered_anonymizer_is_inverted_with_the_operator_it_declares():
    assert SoftFocus.name not in ANONYMIZERS
    plates = synthetic_plates(12, seed=41)
    attack = DeblurThenOCR(methods=("wiener",), wiener_balances=(0.01,))
    rows = deblur_rows(Audit(plates, [SoftFocus(0.13)], [attack], aux_fraction=0, seed=0).run(show_progress=False))
    raw, inverted = rows.loc["exact_match_raw", "value"], rows.loc["exact_match_inverted", "value"]
    assert raw <= 0.3 and inverted >= raw + 0.3 and rows.loc["exact_match_raw", "original"] >= 0.9
    assert rows.loc["exact_match_inverted", "message"].startswith(
        "inversion with the declared operator gaussian_blur(sigma=0.13 x region height, truncate=4) whole image"
    )
    # Per image: the declared kernel (first candidate) or its 0.75x variant, in pixels of that plate.
    anonymizer = SoftFocus(0.13)
    details = attack.run(release_of(plates, anonymizer)).details
    assert (details["operator_source"] == "declared").all()
    heights = np.array([r.boxes[0].h for r in plates.records])
    ratio = np.round(details["strength_px_inverted"] / heights / 0.13, 6)
    assert set(ratio) <= {1.0, 0.75}


def test_an_undeclared_blurred_release_is_inverted_blind_and_the_estimate_is_recorded():
    plates = synthetic_plates(12, seed=43)
    release = undeclared(release_of(plates, GaussianBlur(sigma=0.12, relative=True)))
    result = DeblurThenOCR(methods=("wiener",), wiener_balances=(0.01,)).run(release)
    assert result.notes[0].startswith("blind inversion (no operator declared)")
    raw, inv = result.metric("exact_match_raw").release.value, result.metric("exact_match_inverted").release.value
    assert inv >= raw + 0.25
    d = result.details
    assert (d["operator_source"] == "estimated").all()
    heights = np.array([r.boxes[0].h for r in plates.records])
    chosen = d["strength_px_inverted"] / heights
    assert set(np.round(chosen, 2)) <= {0.03, 0.05, 0.07, 0.09, 0.12}
    for sigma, described in zip(d["strength_px_inverted"], d["operator_inverted"]):
        assert described == f"gaussian_blur(sigma={sigma:.4g} px, truncate=4) whole image"
    # The notes (each results row's message) summarise the estimates the inversion assumed.
    px = d["strength_px_inverted"]
    assert (
        f"estimated operators chosen: gaussian_blur on 12 image(s), sigma median {np.median(px):.3g} px"
        in result.notes[1]
    )
    assert f"median {np.median(chosen):.3g} x plate height" in result.notes[1]


def test_blind_block_estimate_recovers_the_true_block_of_an_external_release(tmp_path):
    plates = synthetic_plates(9, seed=52)
    blocks = [6, 9, 12] * 3  # pixels; plates are 60-110 px high
    released = plates.with_images([pixelate(plates[i], b) for i, b in enumerate(blocks)])
    released.to_folder(tmp_path / "release")
    attack = DepixelateThenOCR(methods=("gaussian",))
    results = Audit(plates, [ExternalRelease(path=str(tmp_path / "release"))], [attack], aux_fraction=0, seed=0).run(
        show_progress=False
    )
    row = results.table.set_index("metric").loc["exact_match_inverted"]
    assert "blind inversion (no operator declared)" in row["message"]
    assert (
        "estimated operators chosen: pixelate on 9 image(s), block 6 px on 3, 9 px on 3, 12 px on 3" in row["message"]
    )
    release = Release(plates, ExternalRelease(path=str(tmp_path / "release")).anonymize(plates))
    assert release.degradation is None
    details = attack.run(release).details
    assert list(details["strength_px_inverted"]) == blocks
    assert list(details["operator_inverted"]) == [f"pixelate(block={b} px) whole image" for b in blocks]


# -- the optimised deblurring path against a straightforward per-candidate reference -----------


class PerCandidateDeblur(DeblurThenOCR):
    """Reference: every candidate computed on its own, as the attack is defined (one scikit-image
    ``wiener`` call per kernel scale and balance on the symmetrically padded luminance, scipy's
    1-D filters for Richardson-Lucy), one image at a time in this process."""

    parallel_candidates = False

    def candidates(self, image, record, released, op):
        kind = "gaussian" if isinstance(op, GaussianBlurOperator) else "box"
        truncate = float(getattr(op, "truncate", 4.0))
        out = []
        for method in self.methods:
            variants = (
                [(sc, b) for sc in self._scales(op) for b in self.wiener_balances]
                if method == "wiener"
                else [(1.0, None)]
            )
            for scale, balance in variants:
                used = []

                def fn(region, s, box, method=method, scale=scale, balance=balance, used=used):
                    grey = region.astype(np.float64).mean(axis=2) / 255.0
                    k = psf_1d(kind, scale * s, truncate)
                    used.append(scale * s)
                    if method == "wiener":
                        pad = len(k)
                        padded = np.pad(grey, pad, mode="symmetric")
                        restored = restoration.wiener(padded, np.outer(k, k), balance, clip=False)[pad:-pad, pad:-pad]
                    else:
                        def blur(x):
                            return ndimage.convolve1d(
                                ndimage.convolve1d(x, k, axis=0, mode="reflect"), k, axis=1, mode="reflect"
                            )

                        def adjoint(x):
                            return ndimage.correlate1d(
                                ndimage.correlate1d(x, k, axis=0, mode="reflect"), k, axis=1, mode="reflect"
                            )

                        restored = richardson_lucy(grey + 1 / 255, blur, adjoint, self.rl_iterations) - 1 / 255
                    g = np.round(np.clip(restored, 0, 1) * 255).astype(np.uint8)
                    return np.repeat(g[..., None], 3, axis=2)

                crop = plate_box(record, image.shape, self.margin)
                restored = restore(image, op, released, crop, fn, lambda s: 2 * int(truncate * s + 1))
                out.append(
                    Candidate(
                        method,
                        used[-1],
                        self._crop(restored, record),
                        op.with_strength(scale * op.strength()),
                        "declared",
                    )
                )
        return out


@pytest.mark.parametrize(
    "anonymizer",
    [GaussianBlur(sigma=0.09, relative=True), BoxBlur(size=0.2, relative=True, region="boxes", margin=0.1)],
    ids=["gaussian-image", "box-in-boxes"],
)
def test_optimised_deblurring_gives_the_per_candidate_reference_results(monkeypatch, anonymizer):
    """Shared FFTs, OpenCV's separable filter and worker processes change nothing: the same
    candidate crops (every pixel), the same chosen candidate per image, the same metrics."""
    monkeypatch.setenv("ANONAUDIT_WORKERS", "2")  # 8 images in one chunk: two worker processes
    plates = synthetic_plates(8, seed=53, scenes=isinstance(anonymizer, BoxBlur))
    release = release_of(plates, anonymizer)
    fast, reference = DeblurThenOCR(sigma_scales=(0.8, 1.0)), PerCandidateDeblur(sigma_scales=(0.8, 1.0))
    op = release.degradation
    for i in range(len(plates)):
        ours = fast.candidates(release.anonymized[i], plates.records[i], release.anonymized.records[i], op)
        ref = reference.candidates(release.anonymized[i], plates.records[i], release.anonymized.records[i], op)
        assert [(c.method, c.strength_px, c.operator) for c in ours] == [
            (c.method, c.strength_px, c.operator) for c in ref
        ]
        assert len(ours) == (3 if isinstance(op, BoxBlurOperator) else 5)  # box kernels are not rescaled
        for a, b in zip(ours, ref):
            np.testing.assert_array_equal(a.crop, b.crop)
    got, want = fast.run(release), reference.run(release)
    assert [(m.metric, m.release, m.original, m.baseline) for m in got.metrics] == [
        (m.metric, m.release, m.original, m.baseline) for m in want.metrics
    ]
    pd.testing.assert_frame_equal(got.details, want.details)
    assert got.notes == want.notes
