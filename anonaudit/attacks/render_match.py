"""Render-and-match: search for the plate text whose degraded rendering matches the release.

``RenderMatchOCR`` ("render_match_ocr") is the searching intruder of Hill, Zhou, Saul and Shacham,
"On the (in)effectiveness of mosaicing and blurring as tools for document redaction" (PoPETs 2016),
and of the Depix tool. It never restores the image: it renders candidate plates with the fonts and
layout it assumes, degrades each with the release's operator and keeps the text whose degraded
rendering is closest to the released plate region.

**What the attacker knows.** The degradation operator (declared on the release, see
:mod:`anonaudit.data.degradation`; for a release that declares none, a mosaic grid estimated blind from
the plate region with :func:`~anonaudit.attacks.inversion.estimate_grid`); the renderer of
:mod:`anonaudit.data.synthetic_plates` (its fonts, dark characters on a light plate with a dark
border, groups separated by a gap); the plate format (a regex of character classes with counts or
lists of strings such as state codes, one printed group each, default
:data:`~anonaudit.data.synthetic_plates.PLATE_TEXT_RE`); the plate box of each record. It does not
know the text, nor the per-plate layout (character size, gap, position, tilt), which it searches.

**Model.** A plate is ``background + contrast x ink coverage``: the rendering of a text is the
coverage of its glyphs (anti-aliased alpha, one cached bitmap per font, size and character) plus
the plate border, and every supported operator is linear, so the degraded coverage of a text is
the sum of the degraded coverages of its glyphs, each looked up in a per-glyph table (the glyph's
integral image for a mosaic; the blurred glyph for a Gaussian or box blur). The distance of a
candidate to the release is the residual sum of squares of the released luminance (mean of R, G, B)
after the least-squares fit ``release ~ a + b x coverage`` with ``b <= 0`` (dark ink; the fit absorbs
the unknown plate colour, ink colour and lighting).

**Search.** Per font and per plate structure (how many characters each class of the format takes),
a beam search over character positions (a listed string is placed whole), left to right, each
character also tried slightly shifted (the plate is warped): a partial text is scored on the observations
(mosaic cells, blurred samples) that no later character can reach, and partial texts covering
different widths are compared by adding, for each observation the others cover and it does not, the
best mean residual per observation of the step (an optimistic completion). The per-plate layout is
then fitted to the decoded text by coordinate search (size, left edge, baseline, gap, tilt,
spacing), the text decoded again and each step revisited with the rest fixed, ``rounds`` times. The
text with the lowest residual over every font and structure is the reading.

**Operators.** ``PixelateOperator`` (grid and phase from the declared region), ``GaussianBlurOperator``,
``BoxBlurOperator``, ``NoiseOperator`` (matched as the identity: the noise averages out in the
fit), ``MaskOperator`` (nothing survives: no observation, and a plate region of one flat value
likewise; the reading is the no-information guess). Any other declared operator is not applicable,
with the reason. A release that declares none is searched through the mosaic grid estimated per
plate; a plate showing none is matched as the identity (an unchanged release), or, with
``undeclared="mosaic_only"`` (or ``"skip"``), the release is not applicable, with the reason.

**Upper bound.** The same search on the originals, observed through the identity on a grid of
``original_block`` (default: plate height / 10) pixel cells.

Metrics, as :class:`~anonaudit.attacks.ocr.OCRReread`'s, against the same no-information baseline:
``exact_match`` (Wilson 95% CI) and ``char_accuracy`` (percentile bootstrap), on the release and on
the originals. The notes give the search cost (seconds, candidates scored) and the attacker model;
the details give per image the reading, its residual and the layout found.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from scipy import ndimage

from ..data.degradation import (
    BoxBlurOperator,
    Degradation,
    GaussianBlurOperator,
    MaskOperator,
    NoiseOperator,
    PixelateOperator,
)
from ..data.imageset import Box, ImageSet, Record, Release
from ..data.synthetic_plates import DEFAULT_FONTS, PLATE_TEXT_RE, _font, _font_size_for_cap_height, font_path
from ..errors import ConfigError
from ..models.ocr import Reading
from ..parallel import map_chunks
from ..params import check_range
from ..registry import ATTACKS
from .base import Attack, AttackResult
from .inversion import estimate_grid, luminance
from .ocr import NoInformationGuess, fitted_guess, rate_metric, read_findings, score_readings, truths_of

# -- plate format ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\[([^\]]+)\](?:\{(\d+)(?:,(\d+))?\})?|\(([A-Z0-9|]+)\)")


@dataclass(frozen=True)
class Token:
    """One printed group of the format: ``low`` to ``high`` characters from ``alphabet``, or, with
    ``words``, exactly one of those strings (a lexicon, e.g. the state codes)."""

    alphabet: str
    low: int
    high: int
    words: tuple[str, ...] = ()

    def lengths(self) -> list[int]:
        return sorted({len(w) for w in self.words}) if self.words else list(range(self.low, self.high + 1))

    def options(self, length: int) -> list[list[str]]:
        """The decoding steps of this group at ``length`` characters: one step per character (its
        alphabet), or one step placing a whole word."""
        if self.words:
            return [[w for w in self.words if len(w) == length]]
        return [list(self.alphabet)] * length


def parse_format(pattern: str) -> tuple[Token, ...]:
    """The groups of a plate-format regex made of character classes with counts.

    ``^[A-Z]{2}[0-9]{2}[A-Z]{1,3}[0-9]{4}$`` gives four groups; each class is one printed group
    (separated from the next by the layout's gap). Ranges (``A-Z``) and single characters are
    allowed inside a class; a group may instead list its possible strings, ``(MH|KA|DL)``. Anything
    else is a :class:`ConfigError`.
    """
    body = pattern.strip().removeprefix("^").removesuffix("$")
    tokens, pos = [], 0
    for m in _TOKEN.finditer(body):
        if m.start() != pos:
            break
        pos = m.end()
        if m.group(4) is not None:
            words = tuple(dict.fromkeys(w for w in m.group(4).split("|")))
            if not all(words):
                raise ConfigError(f"render_match_ocr: empty alternative in plate format {pattern!r}")
            lengths = [len(w) for w in words]
            tokens.append(Token("".join(sorted(set("".join(words)))), min(lengths), max(lengths), words))
            continue
        low = int(m.group(2) or 1)
        high = int(m.group(3) or low)
        tokens.append(Token(_expand_class(m.group(1), pattern), low, high))
        if not 1 <= low <= high:
            raise ConfigError(f"render_match_ocr: bad count {{{low},{high}}} in plate format {pattern!r}")
    if pos != len(body) or not tokens:
        raise ConfigError(
            f"render_match_ocr: plate format {pattern!r} must be a sequence of character classes with counts, "
            "e.g. '^[A-Z]{2}[0-9]{2}[A-Z]{1,3}[0-9]{4}$'"
        )
    return tuple(tokens)


def _expand_class(spec: str, pattern: str) -> str:
    chars, i = [], 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            chars.append(spec[i])
            i += 1
    bad = [c for c in chars if not (c.isascii() and c.isalnum() and (c.isdigit() or c.isupper()))]
    if bad:
        raise ConfigError(f"render_match_ocr: plate format {pattern!r} may only use A-Z and 0-9 in classes, got {bad}")
    return "".join(dict.fromkeys(chars))


def structures(tokens: Sequence[Token], limit: int) -> list[tuple[int, ...]]:
    """Every choice of group lengths the format allows (at most ``limit``, shortest total first)."""
    options = sorted(itertools.product(*(t.lengths() for t in tokens)), key=lambda s: (sum(s), s))
    if len(options) > limit:
        raise ConfigError(f"render_match_ocr: the plate format allows {len(options)} group-length combinations, "
                          f"more than max_structures={limit}")
    return options


# -- glyphs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Glyphs:
    """Bitmaps and metrics of ``chars`` in one font at one size, in a common frame.

    ``alpha[i]`` is character ``i``'s coverage in [0, 1]; pixel ``(0, 0)`` of the frame lies at
    ``(fx, fy)`` from the pen origin (Pillow's left/ascender anchor). ``advance``, ``lsb`` (ink left
    of the pen) and ``right`` (ink right of the pen) in pixels; ``kern[i, j]`` is added to the
    advance of ``i`` when ``j`` follows. ``cap_mid`` is the vertical middle of ``H0`` from the origin.
    """

    font: str
    size: int
    chars: str
    alpha: np.ndarray
    fx: int
    fy: int
    advance: np.ndarray
    lsb: np.ndarray
    right: np.ndarray
    kern: np.ndarray
    cap_mid: float
    cap_height: float

    def index(self, text: str) -> list[int]:
        return [self.chars.index(c) for c in text]


@functools.lru_cache(maxsize=256)
def glyphs(font: str, size: int, chars: str) -> Glyphs:
    """The cached :class:`Glyphs` of ``chars`` in ``font`` (matplotlib's fonts folder) at ``size``."""
    f = _font(font, int(size))
    boxes = [f.getbbox(c) for c in chars]
    fx, fy = min(b[0] for b in boxes), min(b[1] for b in boxes)
    w, h = max(b[2] for b in boxes) - fx, max(b[3] for b in boxes) - fy
    alpha = np.zeros((len(chars), h, w), np.float32)
    for i, c in enumerate(chars):
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).text((-fx, -fy), c, font=f, fill=255)
        alpha[i] = np.asarray(img, np.float32) / 255.0
    advance = np.array([f.getlength(c) for c in chars])
    kern = _kerning(font, chars) * (size / _KERN_SIZE)
    top, bottom = f.getbbox("H0")[1::2]
    return Glyphs(font, int(size), chars, alpha, int(fx), int(fy), advance, np.array([b[0] for b in boxes], float),
                  np.array([b[2] for b in boxes], float), kern, (top + bottom) / 2.0, float(bottom - top))


_KERN_SIZE = 100


@functools.lru_cache(maxsize=32)
def _kerning(font: str, chars: str) -> np.ndarray:
    """Pair kerning at size 100 (scaled linearly to other sizes): ``len(ab) - len(a) - len(b)``."""
    f = _font(font, _KERN_SIZE)
    single = {c: f.getlength(c) for c in chars}
    return np.array([[f.getlength(a + b) - single[a] - single[b] for b in chars] for a in chars])


def font_size(font: str, cap_px: float) -> int:
    """The font size whose capitals are ``cap_px`` pixels high (as the synthetic-plate renderer sizes them)."""
    return _font_size_for_cap_height(font, cap_px)


# -- what the attacker observes: linear views of the degraded plate --------------------------------


class View:
    """The observations of one plate region and the linear operator that produced them.

    ``values`` (rows x columns) are the released luminances (0..255) the attacker compares
    renderings with. Observation column ``j`` depends on the pixel columns ``[lo[j], hi[j])`` of the
    undegraded region (region coordinates). A view turns a stack of glyph bitmaps into a table
    (:meth:`table`) from which the degraded coverage of any glyph placed at integer ``(x, y)`` is
    looked up (:meth:`contrib`).
    """

    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    kind: str = ""

    def table(self, alpha: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def span(self, table: np.ndarray) -> tuple[int, int]:
        """Pixel columns ``[gx + first, gx + last)`` a bitmap of ``table`` placed at ``gx`` covers."""
        raise NotImplementedError

    def contrib(
        self, table: np.ndarray, idx: np.ndarray, gx: np.ndarray, gy: np.ndarray, cols: slice = slice(None)
    ) -> np.ndarray:
        """Degraded coverage ``(len(idx), rows, columns in cols)`` of glyphs ``idx`` with frame corners at
        ``(gx, gy)``."""
        raise NotImplementedError

    def window(self, table: np.ndarray, gx: np.ndarray) -> slice:
        """The observation columns glyphs placed at ``gx`` can reach."""
        first, last = self.span(table)
        hit = np.flatnonzero((self.hi > gx.min() + first) & (self.lo < gx.max() + last))
        return slice(int(hit[0]), int(hit[-1]) + 1) if len(hit) else slice(0, 0)


class MosaicView(View):
    """Mean of each mosaic cell; cells given by their pixel edges ``ys``, ``xs`` in region coordinates."""

    kind = "mosaic"

    def __init__(self, values: np.ndarray, ys: np.ndarray, xs: np.ndarray):
        self.ys, self.xs = ys.astype(int), xs.astype(int)
        self.area = np.outer(np.diff(self.ys), np.diff(self.xs)).astype(float)
        self.values = values
        self.lo, self.hi = self.xs[:-1], self.xs[1:]

    def table(self, alpha: np.ndarray) -> np.ndarray:
        """Integral images with a leading zero row and column."""
        out = np.zeros((alpha.shape[0], alpha.shape[1] + 1, alpha.shape[2] + 1))
        out[:, 1:, 1:] = alpha.cumsum(axis=1).cumsum(axis=2)
        return out

    def span(self, table):
        return 0, table.shape[2] - 1

    def contrib(self, table, idx, gx, gy, cols=slice(None)):
        th, tw = table.shape[1] - 1, table.shape[2] - 1
        xs = self.xs[cols.start: None if cols.stop is None else cols.stop + 1]
        ly = np.clip(self.ys[None, :] - gy[:, None], 0, th)
        lx = np.clip(xs[None, :] - gx[:, None], 0, tw)
        c = table[idx[:, None, None], ly[:, :, None], lx[:, None, :]]
        return (c[:, 1:, 1:] - c[:, :-1, 1:] - c[:, 1:, :-1] + c[:, :-1, :-1]) / self.area[None, :, cols]


class FilterView(View):
    """A linear shift-invariant blur ``filt`` reaching ``reach`` pixels, sampled every ``step`` pixels."""

    kind = "blur"

    def __init__(self, grey: np.ndarray, filt, reach: int, step: int):
        self.filt, self.reach = filt, int(reach)
        h, w = grey.shape
        self.sy = np.arange(step // 2, h, step)
        self.sx = np.arange(step // 2, w, step)
        self.values = grey[np.ix_(self.sy, self.sx)] * 255.0
        self.lo, self.hi = self.sx - self.reach, self.sx + self.reach + 1

    def table(self, alpha: np.ndarray) -> np.ndarray:
        """Each bitmap padded by the blur's reach (plus a zero rim) and blurred."""
        r = self.reach + 1
        padded = np.pad(alpha.astype(np.float64), ((0, 0), (r, r), (r, r)))
        return np.stack([self.filt(a) for a in padded])

    def span(self, table):
        r = self.reach + 1
        return -r, table.shape[2] - r

    def contrib(self, table, idx, gx, gy, cols=slice(None)):
        r = self.reach + 1
        th, tw = table.shape[1:]
        ly = np.clip(self.sy[None, :] - gy[:, None] + r, 0, th - 1)  # clipped onto the zero rim
        lx = np.clip(self.sx[cols][None, :] - gx[:, None] + r, 0, tw - 1)
        return table[idx[:, None, None], ly[:, :, None], lx[:, None, :]]


class EmptyView(View):
    """Nothing of the plate survives (a mask): no observation."""

    kind = "none"

    def __init__(self):
        self.values, self.lo, self.hi = np.zeros((0, 0)), np.zeros(0, int), np.zeros(0, int)

    def table(self, alpha):
        return alpha

    def span(self, table):
        return 0, 0

    def contrib(self, table, idx, gx, gy, cols=slice(None)):
        return np.zeros((len(idx), 0, 0))


def mosaic_view(image: np.ndarray, plate: Box, region: Box, block: int, anchor: tuple[int, int]) -> View:
    """Cells of a ``block`` mosaic anchored at ``anchor`` (image coordinates) and clipped to ``region``,
    keeping those wholly inside ``plate``; geometry relative to ``plate``. Each value is the mean
    luminance of the released cell."""

    def edges(lo: int, hi: int, p_lo: int, p_hi: int, origin: int) -> np.ndarray:
        cuts = origin + block * np.arange(math.floor((lo - origin) / block), math.ceil((hi - origin) / block) + 1)
        cuts = np.unique(np.clip(cuts, lo, hi))
        return cuts[(cuts >= p_lo) & (cuts <= p_hi)]

    ys = edges(region.y, region.y + region.h, plate.y, plate.y + plate.h, anchor[1])
    xs = edges(region.x, region.x + region.w, plate.x, plate.x + plate.w, anchor[0])
    if len(ys) < 2 or len(xs) < 2:
        return EmptyView()  # no whole cell inside the plate
    grey = luminance(image) * 255.0
    integral = np.zeros((grey.shape[0] + 1, grey.shape[1] + 1))
    integral[1:, 1:] = grey.cumsum(axis=0).cumsum(axis=1)
    c = integral[np.ix_(ys, xs)]
    sums = c[1:, 1:] - c[:-1, 1:] - c[1:, :-1] + c[:-1, :-1]
    values = sums / np.outer(np.diff(ys), np.diff(xs))
    return MosaicView(values, ys - plate.y, xs - plate.x)


# -- layouts and rendering ------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a text is printed in the plate region: ``x0`` the ink left edge of the first group,
    ``y0`` the pen origin's height at the region's middle, ``gap`` between groups, ``slope`` the
    tilt (pixels down per pixel right), ``size`` the font size."""

    font: str
    size: int
    x0: float
    y0: float
    gap: float
    slope: float
    stretch: float = 1.0


class Scene:
    """One plate region to decode: its view, the border ring's coverage, the weight of each
    observation (the share of it inside the plate less an ``edge`` band, a fraction of the height,
    where the border and the background around a tilted plate are) and the glyph tables."""

    def __init__(self, view: View, width: int, height: int, border: tuple[float, float], chars: str, edge: float = 0.1):
        self.view, self.width, self.height, self.chars = view, width, height, chars
        self.border, self.edge = tuple(border), float(edge)
        self._tables: dict[tuple, tuple[Glyphs, np.ndarray]] = {}
        self._geometry: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self.scored = 0

    def quad(self, slope: float, inset: float) -> list[tuple[float, float]]:
        """Corners of the plate tilted by ``slope`` whose bounding box is the region (as the renderer
        crops a rotated plate), moved ``inset`` (a fraction of the plate height) inwards."""
        t = math.atan(slope)
        c, s = math.cos(t), math.sin(t)
        det = max(c * c - s * s, 1e-6)
        wf = max((self.width * c - self.height * abs(s)) / det, 1.0)
        hf = max((self.height * c - self.width * abs(s)) / det, 1.0)
        hw, hh = wf / 2.0 - inset * hf, hf / 2.0 - inset * hf
        cx, cy = self.width / 2.0, self.height / 2.0
        return [(cx + c * x - s * y, cy + s * x + c * y) for x, y in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))]

    def _polygon(
        self, corners: Sequence[tuple[float, float]], hole: Sequence[tuple[float, float]] | None = None
    ) -> np.ndarray:
        """Coverage of a polygon (minus ``hole``), anti-aliased by 4 x 4 supersampling, as the view sees it."""
        k = 4
        img = Image.new("L", (self.width * k, self.height * k), 0)
        draw = ImageDraw.Draw(img)
        draw.polygon([(x * k, y * k) for x, y in corners], fill=255)
        if hole is not None:
            draw.polygon([(x * k, y * k) for x, y in hole], fill=0)
        alpha = np.asarray(img, np.float64).reshape(self.height, k, self.width, k).mean(axis=(1, 3)) / 255.0
        return self.view.contrib(self.view.table(alpha[None]), np.zeros(1, int), np.zeros(1, int), np.zeros(1, int))[0]

    def geometry(self, slope: float) -> tuple[np.ndarray, np.ndarray]:
        """For a plate tilted by ``slope``: the border's degraded coverage (the base of every rendering)
        and each observation's weight (its share inside the plate less the ``edge`` band)."""
        key = round(float(slope), 4)
        if key not in self._geometry:
            if not self.view.values.size:
                self._geometry[key] = (np.zeros((0, 0)), np.zeros((0, 0)))
            else:
                inset, width = self.border
                ring = self._polygon(self.quad(slope, inset), self.quad(slope, inset + width))
                self._geometry[key] = (ring, self._polygon(self.quad(slope, self.edge)))
        return self._geometry[key]

    def tables(self, font: str, size: int) -> tuple[Glyphs, np.ndarray]:
        key = (font, size)
        if key not in self._tables:
            g = glyphs(font, size, self.chars)
            self._tables[key] = (g, self.view.table(g.alpha))
        return self._tables[key]

    def place(self, g: Glyphs, layout: Layout, pen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer frame corners of glyphs whose pen origins are at ``pen`` (x)."""
        y = layout.y0 + layout.slope * (pen - self.width / 2.0)
        return np.round(pen + g.fx).astype(int), np.round(y + g.fy).astype(int)

    def mean_tables(self, font: str, size: int, alphabets: Sequence[str]) -> tuple[Glyphs, np.ndarray]:
        """Glyphs and table of the *average* character of each alphabet (its mean bitmap and metrics):
        the expected rendering of a position whose character is unknown."""
        key = (font, size, tuple(alphabets))
        if key not in self._tables:
            g, _ = self.tables(font, size)
            rows = [np.array(g.index(a)) for a in alphabets]
            alpha = np.stack([g.alpha[r].mean(axis=0) for r in rows])

            def mean(v: np.ndarray) -> np.ndarray:
                return np.array([v[r].mean() for r in rows])

            m = Glyphs(
                font,
                size,
                "".join(chr(0x2460 + i) for i in range(len(rows))),
                alpha,
                g.fx,
                g.fy,
                mean(g.advance),
                mean(g.lsb),
                mean(g.right),
                np.zeros((len(rows), len(rows))),
                g.cap_mid,
                g.cap_height,
            )
            self._tables[key] = (m, self.view.table(alpha))
        return self._tables[key]

    def render(
        self, layout: Layout, text: str, groups: Sequence[int], alphabets: Sequence[str] | None = None
    ) -> np.ndarray:
        """Degraded coverage of ``text`` printed in groups of ``groups`` characters; with ``alphabets``
        (one per position, ``text`` ignored) the coverage of the average character of each."""
        if alphabets is None:
            g, table = self.tables(layout.font, layout.size)
            idx = np.array(g.index(text))
        else:
            distinct = tuple(dict.fromkeys(alphabets))
            g, table = self.mean_tables(layout.font, layout.size, distinct)
            idx = np.array([distinct.index(a) for a in alphabets])
        pens, x, k = [], layout.x0, 0
        for n in groups:
            pen = x - g.lsb[idx[k]]
            for j in range(n):
                pens.append(pen)
                if j + 1 < n:
                    pen += g.advance[idx[k + j]] * layout.stretch + g.kern[idx[k + j], idx[k + j + 1]]
            x = pen + g.right[idx[k + n - 1]] + layout.gap
            k += n
        gx, gy = self.place(g, layout, np.array(pens))
        self.scored += 1
        cover = self.geometry(layout.slope)[0].copy()
        cols = self.view.window(table, gx)
        cover[:, cols] += self.view.contrib(table, idx, gx, gy, cols).sum(axis=0)
        return cover


def residuals(
    values: np.ndarray, cover: np.ndarray, weight: np.ndarray, columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted residual sum of squares of ``values ~ a + b x cover`` (``b <= 0``) for each rendering
    ``cover[k]`` (rows x columns), over the observation columns where ``columns[k]`` is true (all when
    ``None``); and the total weight used."""
    m = np.broadcast_to(weight[None], cover.shape) if columns is None else weight[None] * columns[:, None, :]
    axes = (1, 2)
    n = m.sum(axis=axes)
    safe = np.maximum(n, 1e-9)
    y = values[None]
    my, mc = m * y, m * cover
    sy, sc = my.sum(axis=axes), mc.sum(axis=axes)
    syy = (my * y).sum(axis=axes) - sy * sy / safe
    scc = (mc * cover).sum(axis=axes) - sc * sc / safe
    scy = (mc * y).sum(axis=axes) - sc * sy / safe
    fit = np.where((scc > 1e-9) & (scy < 0), scy * scy / np.maximum(scc, 1e-9), 0.0)
    return np.maximum(syy - fit, 0.0), n


# -- the search -----------------------------------------------------------------------------------


@dataclass
class Decoded:
    text: str
    rss: float
    layout: Layout
    groups: tuple[int, ...]


class Searcher:
    """Beam search over character positions and coordinate search over layouts (see module doc)."""

    def __init__(self, tokens: Sequence[Token], fonts: Sequence[str], beam: int, rounds: int, max_structures: int,
                 cap_fractions: Sequence[float], gap_fractions: Sequence[float], jitter: Sequence[float] = (0.0,)):
        self.tokens, self.fonts, self.beam, self.rounds = tuple(tokens), tuple(fonts), beam, rounds
        self.structures = structures(self.tokens, max_structures)
        self.cap_fractions, self.gap_fractions = tuple(cap_fractions), tuple(gap_fractions)
        self.jitter = tuple(jitter)  # per-character shifts tried, as fractions of the region height
        self.chars = "".join(sorted(set("".join(t.alphabet for t in self.tokens))))

    def read(self, scene: Scene) -> Decoded:
        best: Decoded | None = None
        for font in self.fonts:
            for groups in self.structures:
                d = self._search(scene, font, groups)
                if best is None or d.rss < best.rss - 1e-9:
                    best = d
        assert best is not None
        return best

    def steps(self, groups: Sequence[int]) -> list[list[str]]:
        """The decoding steps of a structure: per step the strings it may place (one character, or a
        whole word of a lexicon group)."""
        return [step for t, n in zip(self.tokens, groups) for step in t.options(n)]

    def _alphabets(self, groups: Sequence[int]) -> list[str]:
        """The characters each position may hold."""
        return ["".join(sorted({o[j] for o in step})) for step in self.steps(groups) for j in range(len(step[0]))]

    def centred(
        self, scene: Scene, font: str, size: int, gap: float, groups: Sequence[int], text: str | None = None
    ) -> Layout:
        """The layout printing ``text`` (``None``: average characters) centred in the region, as the
        renderer centres it."""
        g, _ = scene.tables(font, size)
        if text is None:
            alphabets = self._alphabets(groups)
            width = sum(float(np.mean(g.advance[g.index(a)])) for a in alphabets)
        else:
            idx = g.index(text)
            width = float(g.advance[idx].sum() + sum(g.kern[i, j] for i, j in itertools.pairwise(idx)))
        width += gap * (len(groups) - 1)
        return Layout(font, size, (scene.width - width) / 2.0, scene.height / 2.0 - g.cap_mid, gap, 0.0)

    def initial(self, scene: Scene, font: str, groups: Sequence[int]) -> Layout:
        """The best centred layout of average characters over a grid of capital heights and gaps."""
        h = scene.height
        if not scene.view.values.size:
            return self.centred(scene, font, font_size(font, 0.56 * h), 0.42 * 0.56 * h, groups)
        options = []
        for size in sorted({font_size(font, f * h) for f in self.cap_fractions}):
            cap = glyphs(font, size, "H").cap_height
            options.extend(self.centred(scene, font, size, gf * cap, groups) for gf in self.gap_fractions)
        scores = [self._rss(scene, o, None, groups) for o in options]
        return options[int(np.argmin(scores))]

    def _search(self, scene: Scene, font: str, groups: tuple[int, ...]) -> Decoded:
        layout = self.refine(scene, self.initial(scene, font, groups), None, groups)
        text, rss = self.decode(scene, layout, groups)
        for _ in range(self.rounds):
            layout = self.refine(scene, layout, text, groups)
            text, rss = self.polish(scene, layout, groups, self.decode(scene, layout, groups)[0])
        return Decoded(text, rss, layout, groups)

    def polish(self, scene: Scene, layout: Layout, groups: Sequence[int], text: str) -> tuple[str, float]:
        """Revisit each step with the rest of ``text`` fixed (the whole plate scored): corrects early
        choices that looked best before the characters to their right were placed."""
        steps = self.steps(groups)
        spans = list(itertools.accumulate([0] + [len(st[0]) for st in steps]))

        def fixed(t: str) -> list[list[str]]:
            return [[t[a:b]] for a, b in itertools.pairwise(spans)]

        best = self.decode(scene, layout, groups, fixed(text))
        for k, options in enumerate(steps):
            trial = fixed(best[0])
            trial[k] = options
            option = self.decode(scene, layout, groups, trial, beam=len(options))
            if option[1] < best[1] - 1e-12:
                best = option
        return best

    def decode(self, scene: Scene, layout: Layout, groups: Sequence[int], steps: Sequence[Sequence[str]] | None = None,
               beam: int | None = None) -> tuple[str, float]:
        """Beam search for the text of ``groups`` under ``layout`` (the strings each step may place:
        ``steps``, default the format's; ``beam`` texts kept, default the searcher's); returns it with
        its residual per unit weight."""
        beam = beam or self.beam
        view = scene.view
        g, table = scene.tables(layout.font, layout.size)
        steps = [np.array([g.index(o) for o in options]) for options in (steps or self.steps(groups))]
        starts = set(np.cumsum([0] + list(groups))[:-1].tolist())
        n_pos = sum(st.shape[1] for st in steps)
        jitter = np.array(self.jitter) * scene.height
        # Beam state: texts (index lists), coverage, pen of the last glyph, its ink right edge.
        texts: list[list[int]] = [[]]
        base, weight = scene.geometry(layout.slope)
        cover = base[None].copy()
        pens, inks = np.zeros(1), np.zeros(1)
        rss = np.zeros(1)
        p = 0
        for k, options in enumerate(steps):
            shifts = np.concatenate([jitter, 2 * jitter[jitter != 0]]) if p in starts else jitter  # groups move more
            b, n_opt, length = len(texts), len(options), options.shape[1]
            oi = np.tile(np.repeat(np.arange(n_opt), len(shifts)), b)
            bi = np.repeat(np.arange(b), n_opt * len(shifts))
            shift = np.tile(shifts, n_opt * b)
            new_cover = cover[bi]
            pen, prev = np.zeros(len(oi)), options[oi, 0]  # both set by the first character of the step
            for j in range(length):
                ci = options[oi, j]
                if j > 0:
                    pen = pen + g.advance[prev] * layout.stretch + g.kern[prev, ci]
                elif p in starts:
                    pen = (layout.x0 if p == 0 else inks[bi] + layout.gap) - g.lsb[ci] + shift
                else:
                    last_char = np.array([texts[s_][-1] for s_ in bi])
                    pen = pens[bi] + g.advance[last_char] * layout.stretch + g.kern[last_char, ci] + shift
                gx, gy = scene.place(g, layout, pen)
                cols = view.window(table, gx)
                new_cover[:, :, cols] += view.contrib(table, ci, gx, gy, cols)
                prev = ci
            ink = pen + g.right[ci]
            p += length
            if p == n_pos:
                cut = np.full(len(ci), np.inf)
            elif p in starts:
                cut = ink + layout.gap
            else:
                nxt = steps[k + 1][:, 0]
                cut = pen + g.advance[ci] * layout.stretch + (g.kern[np.ix_(ci, nxt)] + g.lsb[nxt][None, :]).min(axis=1)
            # The shifted variants of one text are judged on the same columns, those all of them decide,
            # so that the variant kept does not depend on the other texts in the beam.
            cut = np.repeat(cut.reshape(-1, len(shifts)).min(axis=1), len(shifts))
            decided = view.hi[None, :] <= cut[:, None]
            last = int(np.flatnonzero(decided.any(axis=0)).max(initial=-1)) + 1  # columns no candidate decides stay out
            sse, n = residuals(view.values[:, :last], new_cover[:, :, :last], weight[:, :last], decided[:, :last])
            scene.scored += len(bi)
            per = np.where(n > 0, sse / np.maximum(n, 1), np.inf)
            floor = float(per.min()) if np.isfinite(per).any() else 0.0
            score = sse + (n.max() - n) * floor
            order = np.argsort(score, kind="stable")
            keep, seen = [], set()
            for c in order:  # one entry per distinct text: the best-aligned one
                key = (*texts[bi[c]], *options[oi[c]].tolist())
                if key not in seen:
                    seen.add(key)
                    keep.append(c)
                    if len(keep) == beam:
                        break
            texts = [texts[bi[c]] + options[oi[c]].tolist() for c in keep]
            cover, pens, inks, rss = new_cover[keep], pen[keep], ink[keep], sse[keep]
        return "".join(g.chars[i] for i in texts[0]), float(rss[0]) / max(float(weight.sum()), 1e-9)

    def refine(self, scene: Scene, layout: Layout, text: str | None, groups: Sequence[int]) -> Layout:
        """Coordinate search of the layout for a fixed text (``None``: the average character of each
        position), by the residual over every observation."""
        h = scene.height
        if not scene.view.values.size:
            return layout
        steps = {
            "x0": [layout.x0 + d * h for d in (-0.04, -0.02, -0.01, 0.01, 0.02, 0.04)],
            "size": sorted({max(6, layout.size + d) for d in (-2, -1, 1, 2)}),
            "y0": [layout.y0 + d * h for d in (-0.04, -0.02, 0.02, 0.04)],
            "gap": [layout.gap + d * h for d in (-0.04, -0.02, 0.02, 0.04)],
            "slope": [layout.slope + d for d in (-0.02, -0.01, 0.01, 0.02)],
            "stretch": [layout.stretch + d for d in (-0.06, -0.03, 0.03, 0.06)],
        }
        current, best = layout, self._rss(scene, layout, text, groups)
        for _ in range(4):
            improved = False
            for name in steps:
                base = getattr(current, name)
                delta = [v - getattr(layout, name) for v in steps[name]]
                options = [replace(current, **{name: base + d}) for d in delta]
                scores = [self._rss(scene, o, text, groups) for o in options]
                k = int(np.argmin(scores))
                if scores[k] < best - 1e-9:
                    best, current, improved = scores[k], options[k], True
            if not improved:
                break
        return current

    def _rss(self, scene: Scene, layout: Layout, text: str | None, groups: Sequence[int]) -> float:
        cover = scene.render(layout, text or "", groups, None if text else self._alphabets(groups))
        weight = scene.geometry(layout.slope)[1]
        return float(residuals(scene.view.values, cover[None, :], weight)[0][0]) / max(float(weight.sum()), 1e-9)


# -- what each image shows the attacker ----------------------------------------------------------


def plate_region(record: Record, shape: tuple[int, ...]) -> Box:
    """The plate box the attacker searches: the record's first box clipped, else the whole image."""
    h, w = shape[:2]
    if record.boxes:
        box = record.boxes[0].clip(w, h)
        if box.area:
            return box
    return Box(0, 0, w, h)


def _operator_region(op: Degradation, released: Record, shape: tuple[int, ...], plate: Box) -> tuple[Box, float] | None:
    """The region (and strength in pixels) of ``op`` that holds most of ``plate``; ``None`` when none overlaps."""
    best, best_area = None, 0
    for box, strength in op.regions(released, shape):
        x0, y0 = max(box.x, plate.x), max(box.y, plate.y)
        x1, y1 = min(box.x + box.w, plate.x + plate.w), min(box.y + box.h, plate.y + plate.h)
        area = max(0, x1 - x0) * max(0, y1 - y0)
        if area > best_area:
            best, best_area = (box, strength), area
    return best


def identity_view(image: np.ndarray, plate: Box, block: int) -> View:
    """The undegraded plate, observed as mean luminance over ``block`` pixel cells anchored at its corner."""
    return mosaic_view(image, plate, plate, max(1, int(block)), (plate.x, plate.y))


#: What to do with a release that declares no operator (see :class:`RenderMatchOCR`).
UNDECLARED = ("estimate", "mosaic_only", "skip")


def release_view(image: np.ndarray, record: Record, released: Record, op: Degradation | None,
                 identity_block: int, undeclared: str = "estimate") -> tuple[View | None, str]:
    """The view of one released plate and a description of the operator assumed; ``(None, reason)``
    when the attack cannot model what was done to it. Without a declared operator, a mosaic grid is
    estimated from the plate region; where none is found, ``undeclared="estimate"`` matches the
    plate as the identity (an unchanged release), otherwise there is no view."""
    plate = plate_region(record, image.shape)
    if op is None:
        grid = None if undeclared == "skip" else estimate_grid(np.ascontiguousarray(image[plate.slices]))
        if grid is None and undeclared == "estimate":
            return identity_view(image, plate, identity_block), "no operator declared, no mosaic grid found: identity"
        if grid is None:
            return None, "no declared operator and no mosaic grid found in the plate region"
        block, (px, py) = grid
        return mosaic_view(
            image, plate, plate, block, (plate.x + px, plate.y + py)
        ), f"pixelate(block={block} px) estimated blind"
    if isinstance(op, NoiseOperator):
        return identity_view(image, plate, identity_block), f"{op.describe()} matched as the identity"
    found = _operator_region(op, released, image.shape, plate)
    if found is None:
        return identity_view(image, plate, identity_block), f"{op.describe()} does not reach the plate: identity"
    region, strength = found
    if isinstance(op, MaskOperator):
        return EmptyView(), op.describe()
    if isinstance(op, PixelateOperator):
        block = max(1, int(round(strength)))
        if block == 1:
            return identity_view(image, plate, identity_block), op.describe()
        anchor = (0, 0) if op.region == "image" else (region.x, region.y)
        return mosaic_view(image, plate, region, block, anchor), op.describe()
    if isinstance(op, (GaussianBlurOperator, BoxBlurOperator)):
        grey = luminance(np.ascontiguousarray(image[plate.slices]))
        if isinstance(op, GaussianBlurOperator):
            sigma, truncate = float(strength), float(op.truncate)
            filt = functools.partial(ndimage.gaussian_filter, sigma=sigma, truncate=truncate, mode="constant")
            reach = int(truncate * sigma + 0.5)
        else:
            size = max(1, int(round(strength)))
            filt = functools.partial(ndimage.uniform_filter, size=size, mode="constant")
            reach = size // 2 + 1
        step = max(1, identity_block, int(round(strength / 2)))
        return FilterView(grey, filt, reach, step), op.describe()
    return None, f"declared operator {op.kind or type(op).__name__} is not modelled by render-and-match"


MODELLED = (PixelateOperator, GaussianBlurOperator, BoxBlurOperator, MaskOperator, NoiseOperator)


# -- the attack -----------------------------------------------------------------------------------


#: Readings of originals, per (content, plate box, attack parameters): an audit reads the same
#: originals for every target, and they do not change.
_ORIGINALS: dict[tuple, tuple[Decoded | None, int, float, str]] = {}


def _read_jobs(attack: RenderMatchOCR, jobs: Sequence[tuple]) -> list[tuple[Decoded | None, int, float, str]]:
    """Read ``(image, record, released record, operator, is_original)`` jobs: per job the reading, the
    candidates scored, the seconds taken and the operator assumed (module level: runs in workers)."""
    searcher = attack.searcher()
    out = []
    for image, record, released, op, original in jobs:
        t0 = time.perf_counter()
        block = attack.identity_block(record, image.shape)
        if original:
            view, how = identity_view(image, plate_region(record, image.shape), block), "identity"
        else:
            view, how = release_view(image, record, released, op, block, attack.undeclared)
        decoded, scored = attack.read_one(searcher, view, image, record)
        out.append((decoded, scored, time.perf_counter() - t0, how))
    return out


@ATTACKS.register("render_match_ocr")
class RenderMatchOCR(Attack):
    """Read plates by rendering candidates, degrading them and matching the release (see module doc).

    Args:
        plate_format: regex of the plate text, a sequence of character classes with counts (one
            printed group each); default the synthetic plates' format.
        fonts: font files (matplotlib's fonts folder) the attacker renders with.
        beam: partial texts kept per character position.
        rounds: layout refits and re-decodes after the first decode.
        cap_fractions: capital heights tried for the first layout, as fractions of the plate box height.
        gap_fractions: gaps between groups tried for the first layout, as fractions of the capital height.
        jitter: per-character horizontal shifts tried, as fractions of the plate box height (the
            plate is slightly warped: characters do not sit exactly at their advances).
        border: the plate border's inset and width, as fractions of the plate box height.
        original_block: cell size (pixels) of the identity view of undegraded plates (originals, a
            declared noise); ``None``: plate box height / 10.
        max_structures: most group-length combinations the format may allow.
        undeclared: for a release that declares no operator, ``"estimate"`` (default) estimates a
            mosaic grid per plate and matches a plate without one as the identity (the release may be
            unchanged; the notes say so), ``"mosaic_only"`` reads only plates showing a mosaic grid and
            is not applicable when none does, ``"skip"`` is not applicable.
        seed: seed of the no-information baseline.
    """

    requires = ("text",)
    criteria = ("singling_out", "linkability")
    attacker_holds = ("release", "plate_boxes", "operator", "plate_renderer")
    attacker_searches = ("plate texts and layouts (beam search over character positions) whose degraded rendering "
                         "matches the release")
    test_params = {"fonts": ["DejaVuSans-Bold.ttf"], "beam": 2, "rounds": 1}
    param_alternatives = {"undeclared": ("mosaic_only", "skip")}

    def __init__(
        self,
        plate_format: str = PLATE_TEXT_RE.pattern,
        fonts: Sequence[str] = DEFAULT_FONTS,
        beam: int = 6,
        rounds: int = 2,
        cap_fractions: Sequence[float] = tuple(np.round(np.arange(0.40, 0.70, 0.03), 2)),
        gap_fractions: Sequence[float] = (0.25, 0.4, 0.55),
        jitter: Sequence[float] = (-0.02, 0.0, 0.02),
        border: Sequence[float] = (0.03, 0.04),
        original_block: int | None = None,
        max_structures: int = 16,
        undeclared: str = "estimate",
        seed: int = 0,
    ):
        self.tokens = parse_format(plate_format)
        structures(self.tokens, max_structures)
        if not fonts:
            raise ConfigError("render_match_ocr: fonts must name at least one font")
        for f in fonts:
            font_path(f)
        check_range(self, "beam", beam, ge=1, integer=True)
        check_range(self, "rounds", rounds, ge=0, integer=True)
        if not cap_fractions or not gap_fractions or not jitter or len(border) != 2:
            raise ConfigError(
                "render_match_ocr: cap_fractions, gap_fractions and jitter must be non-empty, border two numbers"
            )
        check_range(self, "original_block", original_block, ge=1, integer=True, optional=True)
        self.plate_format = plate_format
        self.fonts = tuple(fonts)
        self.beam, self.rounds = int(beam), int(rounds)
        self.cap_fractions, self.gap_fractions = tuple(cap_fractions), tuple(gap_fractions)
        self.jitter, self.border = tuple(jitter), tuple(border)
        self.original_block = original_block
        self.max_structures = max_structures
        if undeclared not in UNDECLARED:
            raise ConfigError(f"render_match_ocr: undeclared must be one of {UNDECLARED}, got {undeclared!r}")
        self.undeclared = undeclared
        self.seed = seed

    def searcher(self) -> Searcher:
        return Searcher(self.tokens, self.fonts, self.beam, self.rounds, self.max_structures,
                        self.cap_fractions, self.gap_fractions, self.jitter)

    def fit(self, auxiliary: ImageSet | None = None) -> RenderMatchOCR:
        """Learn the no-information guess (the reading when nothing of the plate is observed) from
        the auxiliary plate texts."""
        self.guesser_ = NoInformationGuess.fit(auxiliary.texts if auxiliary is not None else [], seed=self.seed)
        return self

    def not_applicable(self, release: Release) -> str:
        op = release.degradation
        if op is not None:
            return (
                ""
                if isinstance(op, MODELLED)
                else (
                    f"render-and-match models {', '.join(c.__name__ for c in MODELLED)}; the release declares "
                    f"{op.describe()}"
                )
            )
        if self.undeclared == "estimate":
            return ""
        if self.undeclared == "skip":
            return "the release declares no degradation operator (undeclared='skip')"
        records = release.originals.records
        for i in range(len(release)):
            image = release.anonymized[i]
            plate = plate_region(records[i], image.shape)
            if estimate_grid(np.ascontiguousarray(image[plate.slices])) is not None:
                return ""
        return ("the release declares no degradation operator and no mosaic grid was found in any plate region: "
                "the operator is unknown (blind estimation covers mosaics only)")

    def identity_block(self, record: Record, shape: tuple[int, ...]) -> int:
        """Cell size of the identity view of an undegraded plate."""
        return int(self.original_block) if self.original_block else max(1, plate_region(record, shape).h // 10)

    def _original_key(self, image: np.ndarray, record: Record) -> tuple:
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()
        box = plate_region(record, image.shape)
        return digest, image.shape, (box.x, box.y, box.w, box.h), repr(sorted(self.get_params().items()))

    def read_one(
        self, searcher: Searcher, view: View | None, image: np.ndarray, record: Record
    ) -> tuple[Decoded | None, int]:
        """The reading of one plate seen through ``view`` (``None``: not modelled) and the candidates scored."""
        if view is None:
            return None, 0
        plate = plate_region(record, image.shape)
        scene = Scene(view, plate.w, plate.h, self.border, searcher.chars)
        if not view.values.size or np.ptp(view.values) < 1e-6:  # nothing of the plate survives
            guess = fitted_guess(self).guess()
            if guess:
                nothing_seen = Layout(self.fonts[0], 0, 0.0, 0.0, 0.0, 0.0)
                return Decoded(guess, 0.0, nothing_seen, (len(guess),)), 0
        return searcher.read(scene), scene.scored

    def run(self, release: Release) -> AttackResult:
        from ..errors import DataError

        self.check_labels(release)
        if reason := self.not_applicable(release):
            raise DataError(f"attack '{self.name}': {reason}")
        truths = truths_of(release.originals, self.name)
        records, released = release.originals.records, release.anonymized.records
        op, n = release.degradation, len(release)
        read = functools.partial(_read_jobs, self)
        released_reads = map_chunks(
            read, [(release.anonymized[i], records[i], released[i], op, False) for i in range(n)], 2
        )
        keys = [self._original_key(release.originals[i], records[i]) for i in range(n)]
        todo = [i for i in range(n) if keys[i] not in _ORIGINALS]
        for i, found in zip(
            todo, map_chunks(read, [(release.originals[i], records[i], None, None, True) for i in todo], 2)
        ):
            _ORIGINALS[keys[i]] = found
        original_reads = [_ORIGINALS[k] for k in keys]
        rows = [(r[0], o[0], r[3]) for r, o in zip(released_reads, original_reads)]
        operators = Counter(r[3] for r in released_reads)
        cost = {"release": (sum(r[2] for r in released_reads), sum(r[1] for r in released_reads)),
                "originals": (sum(_ORIGINALS[keys[i]][2] for i in todo), sum(_ORIGINALS[keys[i]][1] for i in todo))}
        rel_scores = score_readings(truths, [Reading(r.text if r else "", float("nan")) for r, _, _ in rows], 1, False)
        orig_scores = score_readings(truths, [Reading(o.text if o else "", float("nan")) for _, o, _ in rows], 1, False)
        g = fitted_guess(self)
        base = f"baseline: {g.describe()}"
        how = "render-and-match (beam search over characters, layout fitted per plate)"
        metrics = [
            rate_metric(
                "exact_match",
                rel_scores["exact"],
                orig_scores["exact"],
                g.exact(truths),
                f"plates read exactly by {how}; {base}",
            ),
            rate_metric(
                "char_accuracy",
                rel_scores["char_accuracy"],
                orig_scores["char_accuracy"],
                g.char_accuracy(truths),
                f"mean max(0, 1 - CER) of {how}; {base}",
            ),
        ]
        notes = [
            self.attacker_model(),
            "operators matched: " + "; ".join(f"{k} on {v}" for k, v in sorted(operators.items())),
        ]
        notes.append("search cost: " + "; ".join(f"{what} {sec:.1f} s, {count} candidate renderings scored"
                                                 for what, (sec, count) in cost.items())
                     + (f" ({n - len(todo)} original(s) read before by the same attack)" if len(todo) < n else ""))
        missing = sum(1 for r, _, _ in rows if r is None)
        if missing:
            notes.append(f"{missing} released plate(s) could not be modelled (read as empty): " + "; ".join(
                sorted({h for r, _, h in rows if r is None})))
        details = pd.DataFrame({
            "key": release.keys,
            "truth": truths,
            "read_release": rel_scores["read"],
            "read_original": orig_scores["read"],
            "exact_release": rel_scores["exact"],
            "exact_original": orig_scores["exact"],
            "char_accuracy_release": rel_scores["char_accuracy"],
            "char_accuracy_original": orig_scores["char_accuracy"],
            "operator": [h for _, _, h in rows],
            "rss_release": [r.rss if r else float("nan") for r, _, _ in rows],
            "font_release": [r.layout.font if r else "" for r, _, _ in rows],
            "groups_release": [",".join(map(str, r.groups)) if r else "" for r, _, _ in rows],
        })
        findings = read_findings(release.keys, rel_scores, "exact_match", None, "render-and-match")
        return AttackResult(self.name, metrics, details, notes, findings)

    def attacker_model(self) -> str:
        """What the intruder is assumed to hold, for the notes."""
        return (
            f"attacker model: knows the degradation operator (declared; else a mosaic grid estimated blind per plate, "
            f"{'the identity' if self.undeclared == 'estimate' else 'nothing'} where none is found), the "
            f"renderer's fonts {list(self.fonts)} (dark characters on a light plate with a border, groups centred and "
            f"separated by a gap), the plate format {self.plate_format!r} and each plate's box; not the text nor the "
            f"per-plate layout (size, position, gap, tilt, spacing), which it searches"
        )
