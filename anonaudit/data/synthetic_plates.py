"""Synthetic Indian licence plates with exact ground truth (text and plate box).

The format follows the Indian registration scheme of the Kaggle "Indian Number Plates" set used by
paper 000: ``MH 12 AB 1234`` = a real state/UT code, a two-digit district (RTO) number, one to
three series letters and a four-digit number. Private plates are white, commercial ones yellow,
both with black characters and a black border. Series letters never use ``I`` or ``O`` (as on
real Indian plates, where they would be confused with ``1`` and ``0``).

Ground truth:

- ``Record.text`` is the canonical plate text: upper case, no spaces, e.g. ``"MH12AB1234"``
  (it matches :data:`PLATE_TEXT_RE`). Texts are unique within one generated set.
- ``Record.boxes`` holds one :class:`Box` labelled ``"plate"``: the whole image for crops, the
  bounding box of the pasted (perspective-warped) plate for scenes.
- ``Record.attributes``: ``plate_type`` (``"private"`` or ``"commercial"``), ``state``,
  ``district``, ``series``, ``number``, ``font`` (font file name), ``plate_height`` (the plate's
  height in pixels in the image, so anonymizer strength can be relative to the region) and
  ``char_height`` (height in pixels of the printed characters, top of the tallest to the bottom
  of the lowest, descenders included).

Generation is deterministic: the same arguments give byte-identical images (with the same
FreeType/Pillow and OpenCV builds), and the first ``k`` images of ``n`` are the images of
``n=k``. Fonts are the DejaVu faces shipped inside matplotlib, so nothing is downloaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import ConfigError
from ..params import check_range
from .imageset import Box, ImageSet, Record

#: State and union-territory codes in current use on Indian registration plates.
STATE_CODES: tuple[str, ...] = (
    "AN", "AP", "AR", "AS", "BR", "CG", "CH", "DD", "DL", "GA", "GJ", "HP", "HR", "JH", "JK", "KA",
    "KL", "LA", "LD", "MH", "ML", "MN", "MP", "MZ", "NL", "OD", "PB", "PY", "RJ", "SK", "TN", "TR",
    "TS", "UK", "UP", "WB",
)  # fmt: skip

#: Letters used in series codes (no I or O).
SERIES_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"

#: The canonical text form of a generated plate.
PLATE_TEXT_RE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z]{1,3}[0-9]{4}$")

#: Bold DejaVu faces shipped with matplotlib (``mpl-data/fonts/ttf``).
DEFAULT_FONTS: tuple[str, ...] = ("DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif-Bold.ttf")

CROP_PLATE_HEIGHT = (60, 110)
SCENE_PLATE_HEIGHT = (24, 40)


@dataclass(frozen=True)
class PlateNumber:
    """One registration number, split into its parts."""

    state: str
    district: int
    series: str
    number: int

    @property
    def text(self) -> str:
        """Canonical form, e.g. ``MH12AB1234``."""
        return f"{self.state}{self.district:02d}{self.series}{self.number:04d}"

    @property
    def groups(self) -> tuple[str, str, str, str]:
        """The four printed groups, e.g. ``("MH", "12", "AB", "1234")``."""
        return self.state, f"{self.district:02d}", self.series, f"{self.number:04d}"


def random_plate_number(rng: np.random.Generator) -> PlateNumber:
    """Draw a registration number: state code, district 01-99, 1-3 series letters, 0001-9999."""
    state = STATE_CODES[int(rng.integers(len(STATE_CODES)))]
    district = int(rng.integers(1, 100))
    n_letters = int(rng.choice([1, 2, 3], p=[0.2, 0.65, 0.15]))
    series = "".join(SERIES_LETTERS[int(i)] for i in rng.integers(len(SERIES_LETTERS), size=n_letters))
    number = int(rng.integers(1, 10000))
    return PlateNumber(state, district, series, number)


def font_path(name: str) -> Path:
    """Path of a font file shipped with matplotlib (e.g. ``"DejaVuSans-Bold.ttf"``)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise ConfigError(f"font '{name}' is not in matplotlib's fonts folder {path.parent}")
    return path


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), size)


def _font_size_for_cap_height(name: str, cap_height: float) -> int:
    ref = 100
    top, bottom = _font(name, ref).getbbox("H0")[1::2]
    return max(6, int(round(ref * cap_height / (bottom - top))))


def _plate_colours(rng: np.random.Generator, commercial: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if commercial:
        plate = (int(rng.integers(225, 256)), int(rng.integers(185, 215)), int(rng.integers(0, 60)))
    else:
        v = int(rng.integers(225, 252))
        plate = (v, v - int(rng.integers(0, 6)), v - int(rng.integers(0, 12)))
    ink = tuple(int(c) for c in rng.integers(0, 40, size=3))
    return plate, ink


def render_flat_plate(
    plate: PlateNumber, height: int, font: str, commercial: bool, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Render the plate face-on at ``height`` pixels; returns ``(rgb image, character height)``."""
    cap = height * float(rng.uniform(0.52, 0.62))
    f = _font(font, _font_size_for_cap_height(font, cap))
    gap = cap * float(rng.uniform(0.3, 0.55))
    boxes = [f.getbbox(g) for g in plate.groups]
    widths = [b[2] - b[0] for b in boxes]
    text_w = sum(widths) + gap * 3
    margin = height * float(rng.uniform(0.22, 0.4))
    width = int(round(text_w + 2 * margin))
    plate_rgb, ink = _plate_colours(rng, commercial)
    img = Image.new("RGB", (width, height), plate_rgb)
    draw = ImageDraw.Draw(img)
    border = max(2, int(round(height * rng.uniform(0.03, 0.05))))
    inset = max(1, int(round(height * 0.03)))
    draw.rounded_rectangle(
        [inset, inset, width - 1 - inset, height - 1 - inset], radius=int(height * 0.08), outline=ink, width=border
    )
    top = min(b[1] for b in boxes)
    bottom = max(b[3] for b in boxes)
    y = (height - (bottom - top)) / 2 - top
    x = margin
    for group, box, w in zip(plate.groups, boxes, widths):
        draw.text((x - box[0], y), group, font=f, fill=ink)
        x += w + gap
    return np.asarray(img), int(round(bottom - top))


def _warp_quad(
    w: int, h: int, rng: np.random.Generator, perspective: float, max_rotation: float
) -> tuple[np.ndarray, float]:
    """Corners (tl, tr, br, bl) of a ``w x h`` plate after rotation and corner jitter.

    The quad is shifted to the origin and scaled so that its bounding box is ``h`` pixels high;
    the scale factor is returned with it.
    """
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    corners += rng.uniform(-perspective, perspective, size=(4, 2)) * h
    angle = math.radians(float(rng.uniform(-max_rotation, max_rotation)))
    c, s = math.cos(angle), math.sin(angle)
    centre = np.array([w / 2, h / 2])
    quad = (corners - centre) @ np.array([[c, s], [-s, c]])
    # Scale so that the warped plate's bounding box is exactly ``h`` pixels high.
    scale = h / (quad[:, 1].max() - quad[:, 1].min())
    quad *= scale
    return quad - quad.min(axis=0), scale


def _warp(flat: np.ndarray, quad: np.ndarray, size: tuple[int, int], border: tuple[int, ...]) -> np.ndarray:
    h, w = flat.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    return cv2.warpPerspective(
        flat, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(v) for v in border)
    )


def _degrade(img: np.ndarray, rng: np.random.Generator, noise: float, blur: float) -> np.ndarray:
    """Global lighting change, Gaussian blur and sensor noise (all amounts drawn up to the maxima)."""
    out = img.astype(np.float32) * float(rng.uniform(0.85, 1.08)) + float(rng.uniform(-12, 12))
    sigma = float(rng.uniform(0.0, blur))
    if sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma)
    std = float(rng.uniform(0.0, noise))
    out += rng.standard_normal(size=out.shape, dtype=np.float32) * np.float32(std)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _road_scene(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A procedural rear view of a car on a road; returns the scene and the bumper area (x0, y0, x1, y1)."""
    horizon = int(height * rng.uniform(0.3, 0.45))
    ys = np.linspace(0.0, 1.0, horizon)[:, None, None]
    sky_top = rng.uniform([90, 140, 200], [140, 180, 245])
    sky_bottom = rng.uniform([180, 200, 220], [230, 235, 250])
    scene = np.empty((height, width, 3), dtype=np.float32)
    scene[:horizon] = sky_top * (1 - ys) + sky_bottom * ys
    road = float(rng.uniform(70, 120))
    scene[horizon:] = road + 6 * rng.standard_normal(size=(height - horizon, width, 1), dtype=np.float32)
    img = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for k in range(-2, 3):  # lane markings converging to a vanishing point
        x_far, x_near = width / 2 + k * width * 0.05, width / 2 + k * width * 0.45
        draw.line([(x_far, horizon), (x_near, height)], fill=(220, 220, 210), width=max(2, width // 160))
    car_w = int(width * rng.uniform(0.5, 0.7))
    car_h = int(car_w * rng.uniform(0.55, 0.7))
    cx = int(width / 2 + rng.uniform(-0.1, 0.1) * width)
    bottom = int(height - rng.uniform(0.03, 0.1) * height)
    x0, x1, y0 = cx - car_w // 2, cx + car_w // 2, bottom - car_h
    body = tuple(int(v) for v in rng.integers(20, 235, size=3))
    wheel_w = car_w // 7
    for wx in (x0 + wheel_w // 2, x1 - wheel_w - wheel_w // 2):
        draw.rectangle([wx, bottom - car_h // 8, wx + wheel_w, bottom], fill=(15, 15, 15))
    draw.rounded_rectangle([x0, y0, x1, bottom - car_h // 10], radius=car_h // 6, fill=body)
    glass = tuple(max(0, v // 3) for v in body)
    draw.rounded_rectangle(
        [x0 + car_w // 8, y0 + car_h // 12, x1 - car_w // 8, y0 + car_h * 2 // 5], radius=car_h // 12, fill=glass
    )
    for lx in (x0 + car_w // 20, x1 - car_w // 20 - car_w // 7):
        draw.rectangle([lx, y0 + car_h // 2, lx + car_w // 7, y0 + car_h // 2 + car_h // 10], fill=(200, 30, 30))
    return np.asarray(img).copy(), (x0, y0 + car_h * 2 // 5, x1, bottom - car_h // 10)


def _check_range(name: str, value: Sequence[float], lower: float) -> tuple[float, float]:
    if len(value) != 2 or not lower <= value[0] <= value[1]:
        raise ConfigError(f"synthetic_plates: {name} must be (low, high) with {lower} <= low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def synthetic_plates(
    n: int = 200,
    seed: int = 0,
    scenes: bool = False,
    *,
    commercial_fraction: float = 0.3,
    plate_height: tuple[int, int] | None = None,
    perspective: float = 0.04,
    max_rotation: float = 2.0,
    noise: float = 5.0,
    blur: float = 0.7,
    scene_size: tuple[int, int] = (800, 600),
    fonts: Sequence[str] = DEFAULT_FONTS,
    limit: int | None = None,
) -> ImageSet:
    """Generate ``n`` synthetic Indian licence plates (in memory) with exact text and boxes.

    Args:
        n: number of images; keys are ``plate_0000``, ``plate_0001``, ...
        seed: everything (texts, styles, geometry, noise) is a function of the seed.
        scenes: paste each plate onto the back of a car in a procedural road scene
            (``scene_size`` = (width, height)) instead of returning tight plate crops.
        commercial_fraction: share of yellow (commercial) plates; the rest are white (private).
        plate_height: (min, max) plate height in pixels; default (60, 110) for crops, (24, 40)
            for scenes.
        perspective: corner jitter as a fraction of the plate height (slight perspective).
        max_rotation: rotation drawn uniformly in +/- this many degrees.
        noise: maximum standard deviation of Gaussian sensor noise (0-255 scale), drawn per image.
        blur: maximum Gaussian blur sigma in pixels, drawn per image.
        fonts: font file names in matplotlib's ``mpl-data/fonts/ttf``, drawn uniformly.
        limit: alias of ``n`` accepted for uniformity with the loaders (the smaller one wins).

    Returns:
        An in-memory :class:`ImageSet` named ``synthetic_plates`` (or ``synthetic_plate_scenes``).
    """
    if limit is not None:
        n = min(n, int(limit))
    check_range("synthetic_plates", "n", n, ge=0, integer=True)
    check_range("synthetic_plates", "commercial_fraction", commercial_fraction, ge=0, le=1)
    heights = _check_range("plate_height", plate_height or (SCENE_PLATE_HEIGHT if scenes else CROP_PLATE_HEIGHT), 8)
    for name, value in (("perspective", perspective), ("max_rotation", max_rotation), ("noise", noise), ("blur", blur)):
        check_range("synthetic_plates", name, value, ge=0, finite=True)
    if not fonts:
        raise ConfigError("synthetic_plates: fonts must name at least one font")
    fonts = tuple(fonts)
    for f in fonts:
        font_path(f)
    sw, sh = int(scene_size[0]), int(scene_size[1])
    if scenes and (sw < 10 * heights[1] or sh < 5 * heights[1]):
        raise ConfigError(f"synthetic_plates: scene_size {scene_size} is too small for {heights[1]} px high plates")

    numbers = _unique_numbers(n, seed)
    width = max(4, len(str(max(n - 1, 0))))
    images, records = [], []
    for i, plate in enumerate(numbers):
        rng = np.random.default_rng([seed, i, 1])
        commercial = bool(rng.random() < commercial_fraction)
        font = fonts[int(rng.integers(len(fonts)))]
        height = int(rng.integers(int(heights[0]), int(heights[1]) + 1))
        flat, char_h = render_flat_plate(plate, height, font, commercial, rng)
        quad, scale = _warp_quad(flat.shape[1], flat.shape[0], rng, perspective, max_rotation)
        if scenes:
            img, box = _paste_in_scene(flat, quad, rng, sw, sh)
        else:
            img, box = _crop(flat, quad, rng)
        img = _degrade(img, rng, noise, blur)
        images.append(img)
        records.append(
            Record(
                key=f"plate_{i:0{width}d}",
                text=plate.text,
                boxes=(box,),
                attributes={
                    "plate_type": "commercial" if commercial else "private",
                    "state": plate.state,
                    "district": f"{plate.district:02d}",
                    "series": plate.series,
                    "number": f"{plate.number:04d}",
                    "font": font,
                    "plate_height": box.h,
                    "char_height": int(round(char_h * scale)),
                },
            )
        )
    return ImageSet(records, images, name="synthetic_plate_scenes" if scenes else "synthetic_plates")


def _unique_numbers(n: int, seed: int) -> list[PlateNumber]:
    rng = np.random.default_rng([seed, 0])
    seen: set[str] = set()
    out: list[PlateNumber] = []
    while len(out) < n:
        p = random_plate_number(rng)
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def _crop(flat: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Box]:
    """Warp the plate into its tight bounding rectangle; corners show a plain background colour."""
    w, h = (int(v) for v in np.round(quad.max(axis=0)))
    background = tuple(int(v) for v in rng.integers(30, 200, size=3))
    img = _warp(flat, quad, (w, h), background)
    return img, Box(0, 0, w, h, "plate")


def _paste_in_scene(
    flat: np.ndarray, quad: np.ndarray, rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, Box]:
    """Paste the warped plate on the car's bumper; the box is the plate's bounding box in the scene."""
    scene, (bx0, by0, bx1, by1) = _road_scene(rng, width, height)
    qw, qh = quad.max(axis=0) - quad.min(axis=0)
    cx = (bx0 + bx1) / 2 + rng.uniform(-0.05, 0.05) * (bx1 - bx0)
    cy = by0 + (by1 - by0) * rng.uniform(0.45, 0.6)
    cx = float(np.clip(cx, qw / 2 + 1, width - qw / 2 - 1))
    cy = float(np.clip(cy, qh / 2 + 1, height - qh / 2 - 1))
    offset = np.round([cx - qw / 2, cy - qh / 2])
    x0, y0 = (int(v) for v in offset)
    w, h = (int(v) for v in np.ceil(quad.max(axis=0)))
    box = Box(x0, y0, w, h, "plate").clip(width, height)
    # Warp only inside the plate's bounding box, then blend it into the scene there.
    size = (box.w, box.h)
    plate = _warp(flat, quad, size, (0, 0, 0)).astype(np.float32)
    mask = _warp(np.full(flat.shape[:2], 255, np.uint8), quad, size, (0,)).astype(np.float32)[..., None] / 255.0
    out = scene.copy()
    region = out[box.slices].astype(np.float32)
    out[box.slices] = np.clip(np.round(region * (1 - mask) + plate * mask), 0, 255).astype(np.uint8)
    return out, box
