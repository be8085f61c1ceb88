"""Render-and-match (``render_match_ocr``): plate-format parsing, the linear degradation views against
the anonymizers' own operators, and known answers: mosaics that classical depixelation cannot read
are read by searching renderings; a mask reads at chance; an unknown operator is not applicable."""

from __future__ import annotations

import numpy as np
import pytest

from anonaudit.anonymizers.classical import Mask, Pixelate, pixelate
from anonaudit.attacks.render_match import (
    MosaicView,
    RenderMatchOCR,
    Token,
    mosaic_view,
    parse_format,
    release_view,
    structures,
)
from anonaudit.data.degradation import Degradation
from anonaudit.data.imageset import Box, ImageSet, Record, Release
from anonaudit.data.synthetic_plates import PLATE_TEXT_RE, SERIES_LETTERS, STATE_CODES, synthetic_plates
from anonaudit.errors import ConfigError, DataError
from anonaudit.registry import ATTACKS


def release_of(images: ImageSet, anonymizer) -> Release:
    anonymized = anonymizer.anonymize(images, show_progress=False)
    return Release(images, anonymized, anonymizer.name, anonymizer.get_params(), degradation=anonymizer.degradation())


def test_parse_format_of_the_synthetic_plates():
    tokens = parse_format(PLATE_TEXT_RE.pattern)
    assert [(len(t.alphabet), t.low, t.high) for t in tokens] == [(26, 2, 2), (10, 2, 2), (26, 1, 3), (10, 4, 4)]
    assert structures(tokens, 16) == [(2, 2, 1, 4), (2, 2, 2, 4), (2, 2, 3, 4)]
    assert parse_format("[A-C7]{1,2}") == (Token("ABC7", 1, 2),)
    lexicon = parse_format("^(MH|KA|DLX)[0-9]{2}$")
    assert lexicon[0] == Token("ADHKLMX", 2, 3, ("MH", "KA", "DLX")) and structures(lexicon, 16) == [(2, 2), (3, 2)]
    assert lexicon[0].options(2) == [["MH", "KA"]] and lexicon[1].options(2) == [list("0123456789")] * 2
    for bad in ("(AB|CD", "(AB||CD)", "[a-z]{2}", "[A-Z]{3,1}", "[A-Z]+", "(ab)"):
        with pytest.raises(ConfigError):
            parse_format(bad)
    with pytest.raises(ConfigError, match="max_structures"):
        structures(parse_format("[A-Z]{1,5}[0-9]{1,5}"), 16)


def test_mosaic_view_equals_the_anonymizers_cell_means():
    """The view's cell values are the pixelated release's cells, and a glyph's looked-up coverage
    equals the mosaic of a canvas holding that glyph (the linearity the search relies on)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    box = Box(0, 0, 53, 37)
    view = mosaic_view(pixelate(image, 8), box, box, 8, (0, 0))
    assert view.values.shape == (5, 7)
    expected = pixelate(image, 8).astype(float).mean(axis=2)[::8, ::8]
    assert np.allclose(view.values, expected, atol=0.5)
    alpha = rng.random((1, 11, 9))
    canvas = np.zeros((37, 53))
    canvas[13:24, 20:29] = alpha[0]
    got = view.contrib(view.table(alpha), np.zeros(1, int), np.array([20]), np.array([13]))[0]
    cells = pixelate(np.repeat(canvas[..., None] * 255, 3, axis=2).astype(np.float64), 8)  # float: no rounding
    assert np.allclose(got * 255, np.asarray(cells, float)[::8, ::8, 0], atol=0.6)


MONO = ("DejaVuSansMono-Bold.ttf",)
#: The synthetic plates' format as their renderer draws it: a state code, two digits, one to three
#: series letters (no I or O), four digits.
LEXICON = f"^({'|'.join(STATE_CODES)})[0-9]{{2}}[{SERIES_LETTERS}]{{1,3}}[0-9]{{4}}$"


@pytest.fixture(scope="module")
def mono_plates() -> tuple[ImageSet, ImageSet]:
    """Evaluation and auxiliary plates of the demo's generator, printed in one font the attacker knows."""
    return synthetic_plates(n=12, seed=0, fonts=MONO), synthetic_plates(n=40, seed=1, fonts=MONO)


def test_render_match_reads_a_mosaic_that_depixelation_cannot(mono_plates):
    from anonaudit.attacks.inversion import DepixelateThenOCR

    images, aux = mono_plates
    release = release_of(images, Pixelate(block=16))
    result = RenderMatchOCR(fonts=MONO, plate_format=LEXICON).fit(aux).run(release)
    exact, chars = result.metric("exact_match"), result.metric("char_accuracy")
    classical = DepixelateThenOCR(methods=("gaussian",)).fit(aux).run(release).metric("exact_match_inverted")
    print("render_match exact", exact.release, "originals", exact.original, "depixelate_ocr", classical.release)
    assert classical.release.value <= 0.05
    assert exact.release.value >= 0.5 and exact.release.ci_low > classical.release.ci_high
    assert chars.release.value >= 0.8 and exact.original.value >= 0.9
    assert exact.baseline < 0.01
    assert any("search cost" in n and "candidate renderings" in n for n in result.notes)
    assert list(result.details["operator"].unique()) == ["pixelate(block=16 px) whole image"]


def test_a_mask_reads_at_chance(mono_plates):
    images, aux = mono_plates
    result = RenderMatchOCR(fonts=MONO, plate_format=LEXICON).fit(aux).run(release_of(images, Mask()))
    exact, chars = result.metric("exact_match"), result.metric("char_accuracy")
    assert exact.release.value == pytest.approx(exact.baseline, abs=1e-9)
    assert chars.release.value == pytest.approx(chars.baseline, abs=1e-6)
    assert exact.original.value >= 0.9  # the originals are still read: the mask, not the attack, failed


class Swirl(Degradation):
    """An operator render-and-match does not model."""

    kind = "swirl"


def test_unknown_operators_are_not_applicable_with_the_reason(mono_plates):
    images, _ = mono_plates
    sub = images.subset(range(3))
    attack = RenderMatchOCR(fonts=MONO)
    swirled = Release(sub, sub, "swirl", {}, degradation=Swirl())
    assert "swirl" in attack.not_applicable(swirled)
    with pytest.raises(DataError, match="swirl"):
        attack.fit(None).run(swirled)
    masked = release_of(sub, Mask())
    external = Release(sub, masked.anonymized, "external", {})
    strict = RenderMatchOCR(fonts=MONO, undeclared="mosaic_only")
    assert "no mosaic grid" in strict.not_applicable(external)
    assert "declares no degradation operator" in RenderMatchOCR(undeclared="skip").not_applicable(external)
    assert attack.not_applicable(external) == ""  # matched as the identity, and said so
    view, how = release_view(external.anonymized[0], sub.records[0], external.anonymized.records[0], None, 8)
    assert how == "no operator declared, no mosaic grid found: identity" and np.ptp(view.values) == 0
    pixelated = Release(sub, release_of(sub, Pixelate(block=16)).anonymized, "external", {})
    assert strict.not_applicable(pixelated) == ""
    tall = int(np.argmax([r.boxes[0].h for r in sub.records]))  # the blind grid needs four cells per height
    view, how = release_view(pixelated.anonymized[tall], sub.records[tall], pixelated.anonymized.records[tall], None, 8)
    assert isinstance(view, MosaicView) and how == "pixelate(block=16 px) estimated blind"


def test_registered_as_an_ocr_attack():
    assert ATTACKS.get("render_match_ocr") is RenderMatchOCR
    with pytest.raises(ConfigError):
        RenderMatchOCR(fonts=("NoSuchFont.ttf",))
    with pytest.raises(ConfigError, match=r"^render_match_ocr: beam must be an integer >= 1, got 0$"):
        RenderMatchOCR(beam=0)
    with pytest.raises(ConfigError, match=r"^render_match_ocr: original_block must be an integer >= 1 or null, got 0$"):
        RenderMatchOCR(original_block=0)


def test_blur_view_equals_the_anonymizers_blur():
    """A glyph's looked-up coverage through a declared Gaussian blur equals the blurred canvas at the
    sampled points (away from the region's borders, which the anonymizer reflects)."""
    from anonaudit.anonymizers.classical import GaussianBlur

    rng = np.random.default_rng(1)
    canvas = np.zeros((60, 90))
    alpha = rng.random((1, 14, 10))
    canvas[20:34, 40:50] = alpha[0]
    image = np.repeat((canvas * 255)[..., None], 3, axis=2).astype(np.uint8)
    record = Record(key="k", boxes=(Box(0, 0, 90, 60, "plate"),))
    blurred = GaussianBlur(sigma=3.0).anonymize(ImageSet([record], [image]), show_progress=False)[0]
    view, how = release_view(blurred, record, record, GaussianBlur(sigma=3.0).degradation(), 2)
    assert how.startswith("gaussian_blur(sigma=3 px")
    got = view.contrib(view.table(alpha), np.zeros(1, int), np.array([40]), np.array([20]))[0]
    assert np.allclose(got * 255, view.values, atol=1.0)
