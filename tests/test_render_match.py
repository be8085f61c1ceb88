"""Render-and-match (``render_match_ocr``): plate-format parsing, the linear degradation views against
the anonymizers' own operators, and known answers: mosaics that classical depixelation cannot read
are read by searching renderings; a mask reads at chance; an unknown operator is not applicable."""

from __future__ import annotations

import numpy as np
import pytest

from anonaudit.anonymizers.classical import pixelate
from anonaudit.attacks.render_match import (
    Token,
    mosaic_view,
    parse_format,
    structures,
)
from anonaudit.data.imageset import Box, ImageSet, Release
from anonaudit.data.synthetic_plates import PLATE_TEXT_RE
from anonaudit.errors import ConfigError


def release_of(images: ImageSet, anonymizer) -> Release:
    anonymized = anonymizer.anonymize(images, show_progress=False)
    return Release(images, anonymized, anonymizer.name, anonymizer.get_params(), degradation=anonymizer.degradation())


def test_parse_format_of_the_synthetic_plates():
    tokens = parse_format(PLATE_TEXT_RE.pattern)
    assert [(len(t.alphabet), t.low, t.high) for t in tokens] == [(26, 2, 2), (10, 2, 2), (26, 1, 3), (10, 4, 4)]
    assert structures(tokens, 16) == [(2, 2, 1, 4), (2, 2, 2, 4), (2, 2, 3, 4)]
    assert parse_format("[A-C7]{1,2}") == (Token("ABC7", 1, 2),)
    for bad in ("(AB|CD)", "[a-z]{2}", "[A-Z]{3,1}", "[A-Z]+"):
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
