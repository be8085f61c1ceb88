"""Property-based tests (hypothesis): image IO round trips on random shapes, dtypes and modes, and
the invariants of SSIM, PSNR and the Wilson interval (checked against scikit-image and scipy)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy.stats import binomtest
from skimage.metrics import peak_signal_noise_ratio

from anonaudit.data.imageset import ImageSet, Release
from anonaudit.data.io import as_rgb_uint8, decode_image, read_image, write_image
from anonaudit.errors import ImageReadError
from anonaudit.evaluators.fidelity import PSNR, SSIM
from anonaudit.metrics.image import psnr, ssim
from anonaudit.stats import proportion, wilson_interval

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

sides = st.integers(1, 24)
layouts = st.sampled_from(["hw", "hw1", "hw3", "hw4"])


def shape_of(h: int, w: int, layout: str) -> tuple[int, ...]:
    return {"hw": (h, w), "hw1": (h, w, 1), "hw3": (h, w, 3), "hw4": (h, w, 4)}[layout]


@st.composite
def images(draw, min_side: int = 1):
    """A random in-memory image: uint8, uint16, bool or float in [0, 1], any channel layout."""
    h, w = draw(st.integers(min_side, 24)), draw(st.integers(min_side, 24))
    layout = draw(layouts)
    dtype = draw(st.sampled_from(["uint8", "uint16", "bool", "float32", "float64"]))
    shape = shape_of(h, w, layout)
    if dtype in ("float32", "float64"):
        arr = draw(arrays(np.float64, shape, elements=st.floats(0, 1, allow_nan=False, width=32)))
        return arr.astype(dtype)
    return draw(arrays(np.dtype(dtype), shape))


def reference_rgb(arr: np.ndarray) -> np.ndarray:
    """Independent statement of the documented conversion, in float64 then rounded."""
    x = arr.astype(np.float64)
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(bool): 1.0}.get(arr.dtype, 1.0)
    x = x / full
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    elif x.shape[2] == 4:
        x = x[..., :3] * x[..., 3:] + (1 - x[..., 3:])
    return np.round(x * 255.0)


@FAST
@given(images())
def test_as_rgb_uint8_matches_the_documented_conversion(arr):
    out = as_rgb_uint8(arr)
    assert out.dtype == np.uint8 and out.shape == (*arr.shape[:2], 3) and out.flags.c_contiguous
    np.testing.assert_allclose(out, reference_rgb(arr), atol=1)  # float rounding at .5 boundaries
    np.testing.assert_array_equal(as_rgb_uint8(out), out)  # idempotent on its own output
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        np.testing.assert_array_equal(out, arr)  # RGB uint8 passes through unchanged


@FAST
@given(images(), st.sampled_from([".png", ".bmp", ".tif", ".ppm"]))
def test_write_then_read_is_lossless(tmp_path, arr, suffix):
    path = tmp_path / f"img{suffix}"
    write_image(path, arr)
    np.testing.assert_array_equal(read_image(path), as_rgb_uint8(arr))
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary file


@st.composite
def pil_images(draw):
    """``(encoded PNG bytes, expected RGB float array)`` for a random image in a random Pillow mode."""
    h, w = draw(sides), draw(sides)
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "I;16", "P"]))
    if mode == "I;16":
        raw = draw(arrays(np.uint16, (h, w)))
        img, expected = Image.fromarray(raw), np.repeat(np.round(raw / 65535 * 255)[..., None], 3, axis=2)
    elif mode == "P":
        index = draw(arrays(np.uint8, (h, w), elements=st.integers(0, 15)))
        palette = draw(arrays(np.uint8, (16, 3)))
        img = Image.fromarray(index, "L").convert("P")
        img.putpalette(palette.flatten().tolist() + [0] * (768 - 48))
        img.frombytes(index.tobytes())
        expected = palette[index].astype(np.float64)
    else:
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        raw = draw(arrays(np.uint8, (h, w, channels)))
        img = Image.fromarray(raw[..., 0] if channels == 1 else raw, mode)
        x = raw.astype(np.float64)
        if mode in ("LA", "RGBA"):
            colour, alpha = x[..., :-1], x[..., -1:] / 255
            x = colour * alpha + 255 * (1 - alpha)
        expected = np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue(), expected


@FAST
@given(pil_images())
def test_decode_converts_every_mode_to_rgb(case):
    data, expected = case
    out = decode_image(data, "case.png")
    assert out.dtype == np.uint8 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1)


@FAST
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_never_crash_the_reader(data):
    """Arbitrary bytes either decode to an RGB image or raise ImageReadError, nothing else."""
    try:
        out = decode_image(data, "fuzz.bin")
    except ImageReadError as exc:  # either outcome is allowed; each is checked
        assert exc.path == "fuzz.bin"  # noqa: PT017
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(300, dtype=np.uint8).reshape(10, 10, 3)).save(buf, fmt)
    return buf.getvalue()


ENCODED = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "TIFF", "BMP", "WEBP", "PPM")}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(ENCODED)), st.binary(min_size=1, max_size=40), st.integers(0, 400), st.booleans())
def test_damaged_files_never_crash_the_reader(fmt, garbage, at, truncate):
    """Overwritten or truncated files of every common format: an image or ImageReadError, nothing else."""
    data = ENCODED[fmt]
    at = at % len(data)
    damaged = data[:at] if truncate else data[:at] + garbage + data[at + len(garbage):]
    try:
        out = decode_image(damaged, f"damaged.{fmt.lower()}")
    except ImageReadError as exc:  # either outcome is allowed; each is checked
        assert exc.path == f"damaged.{fmt.lower()}"  # noqa: PT017
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


# -- metrics -------------------------------------------------------------------------------------------
@st.composite
def image_pairs(draw):
    h, w = draw(st.integers(11, 20)), draw(st.integers(11, 20))  # SSIM's window is 11x11
    a = draw(arrays(np.uint8, (h, w, 3)))
    b = draw(st.one_of(st.just(a.copy()), arrays(np.uint8, (h, w, 3))))
    return a, b


@FAST
@given(image_pairs())
def test_ssim_is_symmetric_bounded_and_one_only_for_identical(pair):
    a, b = pair
    s_ab, s_ba = ssim(a, b), ssim(b, a)
    assert s_ab == pytest.approx(s_ba, abs=1e-12)
    assert -1.0 <= s_ab <= 1.0 + 1e-12
    assert ssim(a, a) == pytest.approx(1.0)
    if np.array_equal(a, b):
        assert s_ab == pytest.approx(1.0)


@FAST
@given(image_pairs())
def test_psnr_is_symmetric_nonnegative_and_matches_scikit_image(pair):
    a, b = pair
    p_ab, p_ba = psnr(a, b), psnr(b, a)
    assert p_ab == p_ba
    if np.array_equal(a, b):
        assert p_ab == float("inf")
    else:
        assert p_ab >= 0.0  # uint8 MSE never exceeds 255^2
        assert p_ab == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)


@FAST
@given(st.lists(image_pairs(), min_size=2, max_size=4))
def test_evaluators_are_symmetric_over_a_release(pairs):
    keys = [f"k{i}" for i in range(len(pairs))]
    left = ImageSet.from_arrays([p[0] for p in pairs], keys=keys)
    right = ImageSet.from_arrays([p[1] for p in pairs], keys=keys)
    forward, backward = SSIM()(Release(left, right)).release, SSIM()(Release(right, left)).release
    assert forward.value == pytest.approx(backward.value, abs=1e-12)
    assert -1.0 <= forward.value <= 1.0 + 1e-9 and forward.n == len(pairs)
    assert forward.ci_low <= forward.value <= forward.ci_high
    (psnr_f, same_f), (psnr_b, same_b) = PSNR()(Release(left, right)), PSNR()(Release(right, left))
    identical = sum(np.array_equal(a, b) for a, b in pairs)
    assert same_f.release.value == same_b.release.value == identical / len(pairs)  # identical pairs are counted ...
    assert psnr_f.release.value == pytest.approx(psnr_b.release.value, abs=1e-12)  # ... and not averaged in
    assert psnr_f.release.n == (len(pairs) - identical or len(pairs))  # all identical: infinite PSNR over all
    assert psnr_f.release.value >= 0.0 and (psnr_f.release.value == math.inf) == (identical == len(pairs))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_p_and_matches_scipy(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)
    est = proportion(np.arange(n) < k)
    assert (est.value, est.ci_low, est.ci_high, est.n) == pytest.approx((k / n, lo, hi, n))


def test_wilson_interval_of_nothing_is_undefined():
    lo, hi = wilson_interval(0, 0)
    assert np.isnan(lo) and np.isnan(hi)
