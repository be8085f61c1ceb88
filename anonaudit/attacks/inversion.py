"""Inversion attacks: undo blur or pixelation, then OCR ("blur is deconvolvable", paper 000).

``DeblurThenOCR`` ("deblur_ocr") deconvolves each plate region with Wiener (scikit-image's
Wiener-Hunt filter, Laplacian prior) and Richardson-Lucy, ``DepixelateThenOCR``
("depixelate_ocr") smooths the mosaic back into strokes (bicubic interpolation between cell
centres, or Gaussian smoothing with sigma = block / 2), and both then OCR the result.

The kernel or block size is **declared** when the release carries the anonymizer's degradation
operator (``release.degradation``, see :mod:`anonaudit.data.degradation`: kind, strength in pixels or,
with ``relative=True``, as a fraction of the region height, in the whole image or only inside the
boxes); the attacks invert exactly that operator and never look at the anonymizer's name. A
declared Gaussian kernel is tried first as declared, then slightly narrower (``sigma_scales``):
under-deconvolving regularises against the 8-bit quantisation of the release and often reads
better. When nothing is declared (an external release, a learned method) the operator is
**estimated blind**: deblurring tries a grid of Gaussian sigmas (fractions of the plate box
height) and keeps, per image, the candidate with the highest OCR confidence; depixelation finds the
mosaic grid (block size and phase) from where the image's horizontal and vertical differences
concentrate. The attacker never sees the ground truth when choosing. A release that declares an
operator the attack does not invert (a mask or noise for either, pixelation for deblurring, blur
for depixelation) is not searched unless ``blind="always"``: its inverted readings are the raw
ones, and the result says so. The notes of every result (the ``message`` column of the results
table) name the operator each inversion assumed: the declared one, or the estimates chosen (kind,
strength in pixels and relative to the plate height); the details give it per image
(``operator_inverted``, ``operator_source``).

Metrics (each on the release, on the originals with plain OCR, and against the no-information
baseline of :class:`~anonaudit.attacks.ocr.NoInformationGuess`): ``exact_match_raw`` and
``char_accuracy_raw`` (plain OCR of the release), ``exact_match_inverted`` and
``char_accuracy_inverted`` (per image the inversion candidate with the highest OCR confidence,
over every method; with ``include_raw=True`` the raw reading competes too), and
``exact_match_<method>`` per inversion method (when every image has a candidate of it).

Deconvolution works on the luminance (mean of R, G, B) in [0, 1], replicated to three channels for
OCR; regions are extended by half-sample-symmetric reflection, the boundary rule of the blur.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage

from ..data.degradation import BoxBlurOperator, Degradation, GaussianBlurOperator, PixelateOperator
from ..data.imageset import Box, ImageSet, Record, Release
from ..errors import ConfigError
from ..models.ocr import OCREngine, Reading, check_engine, create_engine, plate_box
from ..models.ocr.base import PLATE_MARGIN
from ..parallel import map_chunks
from ..params import check_range
from ..progress import progress
from ..registry import ATTACKS
from .base import Attack, AttackerModel, AttackResult
from .ocr import NoInformationGuess, fitted_guess, rate_metric, read_findings, score_readings, truths_of

# -- blur kernels and deconvolution -------------------------------------------------------------


def psf_1d(kind: str, strength_px: float, truncate: float = 4.0) -> np.ndarray:
    """Odd-length 1-D impulse response of the classical blur (the PSF is its outer product).

    ``kind="gaussian"``: ``scipy.ndimage.gaussian_filter1d(sigma, truncate=truncate)``;
    ``kind="box"``: ``uniform_filter1d(size=round(strength))`` (off-centre for even sizes, as the
    filter is). Computed by filtering a unit impulse with the very filter the anonymizer uses.
    """
    if kind == "gaussian":
        r = max(1, int(truncate * float(strength_px) + 0.5))
        delta = np.zeros(2 * r + 1)
        delta[r] = 1.0
        return ndimage.gaussian_filter1d(delta, float(strength_px), truncate=truncate, mode="constant")
    if kind == "box":
        k = max(1, round(strength_px))
        delta = np.zeros(2 * k + 1)
        delta[k] = 1.0
        return ndimage.uniform_filter1d(delta, size=k, mode="constant")
    raise ConfigError(f"unknown blur kernel '{kind}' (known: gaussian, box)")


def blur_psf(kind: str, strength_px: float, truncate: float = 4.0) -> np.ndarray:
    """2-D point spread function (impulse response, centred at ``shape // 2``)."""
    k = psf_1d(kind, strength_px, truncate)
    return np.outer(k, k)


def blur_grey(grey: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Apply the separable blur with odd-length 1-D impulse response ``kernel`` (reflect boundaries).

    ``scipy.ndimage.convolve1d`` along both axes with ``mode="reflect"``, computed by OpenCV's
    separable filter (``BORDER_REFLECT`` is the same half-sample-symmetric rule; a convolution is
    the correlation with the reversed kernel): equal to the scipy filter up to float rounding and
    twice as fast for the long kernels of strong blurs.
    """
    return _separable(grey, np.ascontiguousarray(kernel[::-1]))


def blur_grey_adjoint(grey: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`blur_grey` away from the borders (correlation with the same kernel)."""
    return _separable(grey, kernel)


def _separable(grey: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate both axes of a 2-D float64 image with an odd-length kernel centred on its middle tap."""
    if kernel.ndim != 1 or len(kernel) % 2 != 1:
        raise ValueError(f"blur kernels have odd length, got shape {kernel.shape}")
    k = kernel.astype(np.float64)
    return cv2.sepFilter2D(np.asarray(grey, dtype=np.float64), cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)


def wiener_deconvolve(grey: np.ndarray, psf: np.ndarray, balance: float) -> np.ndarray:
    """Wiener-Hunt deconvolution (``skimage.restoration.wiener``) of a 2-D image.

    The image is extended by symmetric reflection (the blur's boundary rule) by the PSF's size on
    every side before the FFT-based filter, which would otherwise wrap the borders around.
    """
    return wiener_deconvolve_balances(grey, psf, (balance,))[0]


@functools.lru_cache(maxsize=64)
def _laplacian_power(shape: tuple[int, int]) -> np.ndarray:
    """``|reg|**2`` of ``skimage.restoration.wiener``'s default regulariser (the Laplacian's
    transfer function, real part) for a padded image of ``shape``; read-only, cached per shape."""
    from skimage.restoration import uft

    reg, _ = uft.laplacian(2, shape, is_real=True)
    power = np.abs(reg.real.astype(np.float64, copy=False)) ** 2
    power.flags.writeable = False
    return power


def wiener_deconvolve_balances(grey: np.ndarray, psf: np.ndarray, balances: Sequence[float]) -> list[np.ndarray]:
    """:func:`wiener_deconvolve` at every balance in ``balances``, computing the padding, the
    image's spectrum and the PSF's transfer function once.

    The arithmetic is ``skimage.restoration.wiener``'s, operation for operation (``uft.ir2tf``,
    ``uft.urfftn``, ``conj(H) / (|H|**2 + balance * |L|**2)``, ``uft.uirfftn``), so each output
    is bit-identical to a separate ``wiener`` call; only the repeated work is shared.
    """
    from skimage.restoration import uft

    pad = psf.shape[0]
    padded = np.pad(grey, pad, mode="symmetric").astype(np.float64, copy=False)
    transfer = uft.ir2tf(psf.real.astype(np.float64, copy=False), padded.shape, is_real=True)
    numerator, power = np.conj(transfer), np.abs(transfer) ** 2
    regulariser = _laplacian_power(padded.shape)
    spectrum = uft.urfftn(padded)
    out = []
    for balance in balances:
        deconv = uft.uirfftn(numerator / (power + balance * regulariser) * spectrum, shape=padded.shape)
        out.append(deconv[pad:-pad, pad:-pad])
    return out


def richardson_lucy(
    observed: np.ndarray,
    forward: Callable[[np.ndarray], np.ndarray],
    adjoint: Callable[[np.ndarray], np.ndarray],
    num_iter: int,
    init: np.ndarray | None = None,
    eps: float = 1e-7,
) -> np.ndarray:
    """Richardson-Lucy iterations ``x <- x * adjoint(observed / forward(x))``.

    ``forward`` is the blur (normalised kernel), ``adjoint`` its transpose; ``init`` defaults to
    the observation itself. Ratios with a denominator below ``eps`` are set to 0, as in
    ``skimage.restoration.richardson_lucy``.
    """
    x = np.array(observed if init is None else init, dtype=np.float64, copy=True)
    for _ in range(num_iter):
        conv = forward(x)
        ratio = np.where(conv < eps, 0.0, observed / np.maximum(conv, eps))
        x *= adjoint(ratio)
    return x


def richardson_lucy_deconvolve(
    grey: np.ndarray, kind: str, strength_px: float, num_iter: int, truncate: float = 4.0
) -> np.ndarray:
    """Richardson-Lucy with the exact blur operator of the anonymizer (reflect boundaries)."""
    k = psf_1d(kind, strength_px, truncate)
    floor = 1.0 / 255.0  # RL needs a positive image: lift black by one grey level
    est = richardson_lucy(grey + floor, lambda x: blur_grey(x, k), lambda x: blur_grey_adjoint(x, k), num_iter)
    return est - floor


def to_rgb_uint8(grey: np.ndarray) -> np.ndarray:
    """A [0, 1] float image as RGB uint8 (clipped)."""
    g = np.clip(np.round(np.clip(grey, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64).mean(axis=2) / 255.0


# -- depixelation --------------------------------------------------------------------------------


def cell_means(region: np.ndarray, block: int, phase: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, tuple[int, int]]:
    """Mean colour of every mosaic cell; cells start at ``phase = (x, y)`` modulo ``block``.

    Returns ``(means of shape (rows, cols, channels), (left, top))`` where ``left``/``top`` is how
    far the grid origin lies before the region's corner (partial first cells).
    """
    b = int(block)
    h, w = region.shape[:2]
    left, top = (-phase[0]) % b, (-phase[1]) % b
    rows, cols = math.ceil((h + top) / b), math.ceil((w + left) / b)
    sums = np.zeros((rows, cols, region.shape[2]))
    counts = np.zeros((rows, cols, 1))
    yi = (np.arange(h) + top) // b
    xi = (np.arange(w) + left) // b
    np.add.at(sums, (yi[:, None], xi[None, :]), region.astype(np.float64))
    np.add.at(counts, (yi[:, None], xi[None, :]), 1.0)
    return sums / counts, (left, top)


def depixelate(region: np.ndarray, block: int, method: str, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Undo a ``block x block`` mosaic of an RGB uint8 region (grid phase ``(x, y)``).

    ``bicubic``: cubic interpolation between the cell centres (``cv2.resize``, which maps cell
    centres onto block centres for an integer factor); ``gaussian``: Gaussian smoothing of the
    mosaic with ``sigma = block / 2``.
    """
    b = int(block)
    if b < 2:
        return region.copy()
    if method == "gaussian":
        out = ndimage.gaussian_filter(region.astype(np.float32), sigma=(b / 2.0, b / 2.0, 0), mode="reflect")
    elif method == "bicubic":
        means, (left, top) = cell_means(region, b, phase)
        rows, cols = means.shape[:2]
        up = cv2.resize(means.astype(np.float32), (cols * b, rows * b), interpolation=cv2.INTER_CUBIC)
        out = up[top : top + region.shape[0], left : left + region.shape[1]]
    else:
        raise ConfigError(f"unknown depixelation method '{method}' (known: bicubic, gaussian)")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def estimate_grid(
    region: np.ndarray, max_block: int = 64, min_lift: float = 2.5, tie: float = 0.7, min_median_lift: float = 1.5
) -> tuple[int, tuple[int, int]] | None:
    """Block size and phase ``(x, y)`` of a mosaic, from where intensity changes happen.

    In a mosaic, change between neighbouring pixels sits on cell borders. For a block size ``b``,
    the phase whose grid lines carry the most absolute column (row) difference is found; its
    *lift* is ``b`` times the share of all difference on those lines: about 1 without such a grid,
    ``b`` for an exact mosaic of block ``b`` (less after JPEG compression), and the same for its
    multiples (a subset of its lines carrying the same share of them), while divisors lift less.
    The block is the smallest ``b`` lifting within ``tie`` of the best lift (the lower of the
    column and row lifts counts), provided the best lift reaches ``min_lift`` and, at that ``b``,
    the median difference on grid lines is at least ``min_median_lift`` times the mean difference
    (periodic text, e.g. a monospaced plate, has strong lines only where strokes are, not a grid).
    Blocks up to a quarter of the region's width and height are considered (four cells or more
    each way, for reliable line statistics). ``None`` when these fail (not a mosaic).
    """
    img = region.astype(np.float64)
    dx = np.abs(np.diff(img, axis=1)).sum(axis=(0, 2))  # dx[x]: change between columns x and x+1
    dy = np.abs(np.diff(img, axis=0)).sum(axis=(1, 2))
    if dx.sum() <= 0 or dy.sum() <= 0:
        return None

    def grid_lines(d: np.ndarray, b: int) -> tuple[float, float, int]:
        phase_of = (np.arange(len(d)) + 1) % b  # a cell starting at column x+1 has phase (x+1) % b
        sums = np.bincount(phase_of, weights=d, minlength=b)
        p = int(np.argmax(sums))
        return float(b * sums[p] / d.sum()), float(np.median(d[phase_of == p]) / d.mean()), p

    h, w = region.shape[:2]
    scores: dict[int, tuple[float, float, tuple[int, int]]] = {}
    for b in range(2, min(max_block, w // 4, h // 4) + 1):  # at least four cells each way
        (lx, mx, px), (ly, my, py) = grid_lines(dx, b), grid_lines(dy, b)
        scores[b] = (min(lx, ly), min(mx, my), (px, py))
    best = max((lift for lift, _, _ in scores.values()), default=0.0)
    if best < min_lift:
        return None
    b = min(k for k, (lift, _, _) in scores.items() if lift >= tie * best)
    if scores[b][1] < min_median_lift:
        return None
    return b, scores[b][2]


# -- where the declared operator was applied ----------------------------------------------------


def _window(box: Box, pad: int, shape: tuple[int, ...]) -> Box:
    h, w = shape[:2]
    return Box(box.x - pad, box.y - pad, box.w + 2 * pad, box.h + 2 * pad).clip(w, h)


def restore(
    image: np.ndarray,
    op: Degradation,
    released: Record,
    crop: Box,
    region_fn: Callable[[np.ndarray, float, Box], np.ndarray],
    context: Callable[[float], int],
) -> np.ndarray:
    """Invert a declared operator where it was applied, around the OCR crop ``crop``.

    ``region_fn(region, strength_px, region_box)`` restores one region. ``region="boxes"``: each
    box of ``released`` (the released image's record) grown by the operator's margin is restored
    exactly; ``region="image"``: a window around ``crop``, ``context(strength_px)`` pixels wider on
    each side so border effects stay outside the crop (see :meth:`Degradation.regions`).
    """
    return restore_many(image, op, released, crop, lambda region, s, box: [region_fn(region, s, box)], context, 1)[0]


def restore_many(
    image: np.ndarray,
    op: Degradation,
    released: Record,
    crop: Box,
    region_fn: Callable[[np.ndarray, float, Box], Sequence[np.ndarray]],
    context: Callable[[float], int],
    count: int,
) -> list[np.ndarray]:
    """:func:`restore` for ``count`` restorations at once: ``region_fn`` returns ``count`` restored
    versions of each region (e.g. one per Wiener balance, sharing their FFTs), and the result is
    one image per version."""
    outs = [image.copy() for _ in range(count)]
    regions = op.regions(released, image.shape)
    if op.region == "boxes":
        boxes = regions
    else:
        ((_, s),) = regions
        boxes = [(_window(crop, context(s), image.shape), s)]
    for box, s in boxes:
        ys, xs = box.slices
        restored = region_fn(image[ys, xs], s, box)
        if len(restored) != count:
            raise ValueError(f"region_fn returned {len(restored)} restorations, expected {count}")
        for out, region in zip(outs, restored):
            out[ys, xs] = region
    return outs


# -- the attacks --------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One restored plate crop: the method, the operator it assumed and where that came from.

    ``source`` is ``"declared"`` (the release's operator, possibly rescaled, see ``sigma_scales``)
    or ``"estimated"`` (found blind from the image). ``strength_px`` is the strength in pixels
    (the last region's, for a relative operator over several boxes).
    """

    method: str
    strength_px: float
    crop: np.ndarray
    operator: Degradation
    source: str


def _candidates_of(
    attack: InversionAttack, op: Degradation | None, jobs: Sequence[tuple[np.ndarray, Record, Record]]
) -> list[list[Candidate]]:
    """``attack.candidates(image, record, released, op)`` for each job (module level: picklable for
    worker processes)."""
    return [attack.candidates(image, record, released, op) for image, record, released in jobs]


#: What the plan's mode says in metric descriptions.
_HOW = {"declared": "operator declared by the release", "blind": "operator estimated blind", "skip": "none attempted"}


class InversionAttack(Attack):
    """Shared machinery: OCR originals, raw release and every inversion candidate; select; score.

    Subclasses list the operator types they invert (``inverts``) and produce, per image, an
    ordered list of candidates (:meth:`candidates`): those of the declared or estimated operator
    come first.
    """

    requires = ("text",)
    criteria = ("singling_out", "linkability")  # a plate read back names one vehicle, linkable to registers
    attacker_holds = ("release", "plate_boxes", "operator", "ocr_engine")

    def intruder(self) -> AttackerModel:
        """Without the declared operator when told not to use it (``use_known_kernel`` or ``use_known_block``
        false: it estimates the operator blind)."""
        model = super().intruder()
        known = getattr(self, "use_known_kernel", getattr(self, "use_known_block", True))
        return model if known else replace(model, holds=tuple(h for h in model.holds if h != "operator"))
    available_methods: tuple[str, ...] = ()
    #: Degradation operator types this attack inverts.
    inverts: tuple[type[Degradation], ...] = ()
    #: Compute the candidates of several images in worker processes (:func:`anonaudit.parallel.map_chunks`):
    #: for numpy/scipy-only candidates (deconvolution); the results do not depend on it.
    parallel_candidates = False
    blind: str

    engine: str
    engine_params: dict | None
    margin: float
    batch_size: int
    include_raw: bool
    accept_confident: float | None
    seed: int

    param_alternatives = {"engine": ("tesseract", "easyocr"), "blind": ("always", "never")}

    def _init_common(
        self, engine, engine_params, margin, batch_size, include_raw, seed, methods, blind, accept_confident
    ) -> None:
        unknown = sorted(set(methods) - set(self.available_methods))
        if unknown or not methods:
            raise ConfigError(
                f"{self.name}: methods must be a non-empty subset of {self.available_methods}, got {list(methods)}"
            )
        if blind not in ("auto", "always", "never"):
            raise ConfigError(f"{self.name}: blind must be 'auto', 'always' or 'never', got {blind!r}")
        self.blind = blind
        check_engine(engine)
        self.engine = engine
        self.engine_params = engine_params
        self.margin = margin
        self.batch_size = batch_size
        self.include_raw = include_raw
        check_range(self, "accept_confident", accept_confident, gt=0, le=1, optional=True)
        self.accept_confident = accept_confident
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> InversionAttack:
        """Learn the no-information guess from the auxiliary plate texts (if any)."""
        self.guesser_ = NoInformationGuess.fit(auxiliary.texts if auxiliary is not None else [], seed=self.seed)
        return self

    def candidates(
        self, image: np.ndarray, record: Record, released: Record, op: Degradation | None
    ) -> list[Candidate]:
        """Inversion candidates for one released image, best guess first.

        ``record`` is the original's record (the plate box to read), ``released`` the released
        image's (the boxes a declared operator was applied in); ``op`` the declared operator, or
        ``None`` to estimate one blind.
        """
        raise NotImplementedError

    def use_declared(self) -> bool:
        """Whether this attack reads the release's declared operator (``use_known_*``)."""
        raise NotImplementedError

    def plan(self, release: Release) -> tuple[str, Degradation | None]:
        """``("declared", operator)``, ``("blind", None)`` or ``("skip", None)``.

        A declared operator of a type this attack inverts is inverted as declared. With
        ``blind="auto"`` a release declaring nothing (an external release, a learned method) is
        searched blind, and one declaring an operator this attack does not invert (a mask, noise,
        pixelation for the deblurring attack, ...) is skipped: the inverted readings are then the
        raw ones. ``"always"`` searches blind whenever no invertible operator is declared,
        ``"never"`` only inverts declared operators.
        """
        op = release.degradation if self.use_declared() else None
        if isinstance(op, self.inverts):
            return "declared", op
        if self.blind == "never" or (self.blind == "auto" and op is not None):
            return "skip", None
        return "blind", None

    def _crop(self, image: np.ndarray, record: Record) -> np.ndarray:
        ys, xs = plate_box(record, image.shape, self.margin).slices
        return np.ascontiguousarray(image[ys, xs])

    def _invert_all(
        self, engine: OCREngine, release: Release, op: Degradation | None, indices: Sequence[int]
    ) -> list[list[tuple[Candidate, Reading]]]:
        """Inversion candidates and their readings for the images at ``indices`` ([] elsewhere)."""
        records, released = release.originals.records, release.anonymized.records
        out: list[list[tuple[Candidate, Reading]]] = [[] for _ in range(len(release))]
        chunks = [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        for chunk in progress(chunks, desc=f"{self.name} invert", total=len(chunks)):
            jobs = [(release.anonymized[i], records[i], released[i]) for i in chunk]
            if self.parallel_candidates:
                cands = map_chunks(functools.partial(_candidates_of, self, op), jobs, min_per_worker=4)
            else:
                cands = _candidates_of(self, op, jobs)
            readings = iter(engine.read_arrays([c.crop for cs in cands for c in cs], self.batch_size))
            for i, cs in zip(chunk, cands):
                out[i] = [(c, next(readings)) for c in cs]
                for c in cs:
                    c.crop = np.empty((0, 0, 3), np.uint8)  # keep readings only
        return out

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        engine = create_engine(self.engine, **(self.engine_params or {}))
        truths = truths_of(release.originals, self.name)
        records = release.originals.records

        def read(images: ImageSet, what: str) -> list:
            return engine.read(images, self.batch_size, records, self.margin, desc=f"{self.name} {what}")

        original = score_readings(truths, read(release.originals, "originals"), 1, False)
        raw_readings = read(release.anonymized, "release")
        mode, op = self.plan(release)
        accept = self.accept_confident
        confident = [accept is not None and r.confidence >= accept for r in raw_readings]  # nan: never
        todo = [i for i, c in enumerate(confident) if not c] if mode != "skip" else []
        inverted = self._invert_all(engine, release, op, todo)

        def pick(options: list[tuple[Candidate | None, Reading]]) -> tuple[Candidate | None, Reading]:
            return max(options, key=lambda o: -math.inf if math.isnan(o[1].confidence) else o[1].confidence)

        chosen = []
        for reading, cands in zip(raw_readings, inverted):
            with_raw = self.include_raw or not cands  # nothing inverted: the raw reading is the answer
            options: list[tuple[Candidate | None, Reading]] = list(cands) + ([(None, reading)] if with_raw else [])
            chosen.append(pick(options))
        raw = score_readings(truths, raw_readings, 1, False)
        inv = score_readings(truths, [r for _, r in chosen], 1, False)
        g = fitted_guess(self)
        exact_base, char_base = g.exact(truths), g.char_accuracy(truths)
        how = _HOW[mode]
        base = f"baseline: {g.describe()}"
        metrics = [
            rate_metric(
                "exact_match_raw",
                raw["exact"],
                original["exact"],
                exact_base,
                f"plain OCR ({engine.name}) of the release; {base}",
            ),
            rate_metric(
                "exact_match_inverted",
                inv["exact"],
                original["exact"],
                exact_base,
                f"OCR after inversion ({'/'.join(self.methods_used())}, {how}; most confident candidate per image"
                f"{', raw reading included' if self.include_raw else ''}); {base}",
            ),
            rate_metric(
                "char_accuracy_raw",
                raw["char_accuracy"],
                original["char_accuracy"],
                char_base,
                f"plain OCR of the release; {base}",
            ),
            rate_metric(
                "char_accuracy_inverted",
                inv["char_accuracy"],
                original["char_accuracy"],
                char_base,
                f"OCR after inversion; {base}",
            ),
        ]
        for method in self.methods_used():
            if not any(c.method == method for cands in inverted for c, _ in cands):
                continue  # reported only when the method produced a candidate
            # Images without a candidate of this method keep their raw reading (see accept_confident).
            per = [
                pick([(c, r) for c, r in cands if c.method == method] or [(None, reading)])
                for cands, reading in zip(inverted, raw_readings)
            ]
            scores = score_readings(truths, [r for _, r in per], 1, False)
            metrics.append(rate_metric(f"exact_match_{method}", scores["exact"], original["exact"], exact_base,
                                       f"OCR after {method} only ({how}); {base}"))
        raw_label = ["raw (confident)" if conf else "raw" for conf in confident]
        details = pd.DataFrame(
            {
                "key": release.keys,
                "truth": truths,
                "read_original": original["read"],
                "read_raw": raw["read"],
                "read_inverted": inv["read"],
                "method_inverted": [c.method if c is not None else lab for (c, _), lab in zip(chosen, raw_label)],
                "strength_px_inverted": [c.strength_px if c is not None else 0.0 for c, _ in chosen],
                "operator_inverted": [c.operator.describe() if c is not None else "" for c, _ in chosen],
                "operator_source": [c.source if c is not None else "" for c, _ in chosen],
                "conf_raw": raw["conf"],
                "conf_inverted": inv["conf"],
                "exact_original": original["exact"],
                "exact_raw": raw["exact"],
                "exact_inverted": inv["exact"],
                "char_accuracy_raw": raw["char_accuracy"],
                "char_accuracy_inverted": inv["char_accuracy"],
            }
        )
        notes = self._notes(release, mode, op, todo, inverted, chosen)
        if mode != "skip" and accept is not None:
            notes.append(
                f"{sum(confident)} image(s) read raw with confidence >= {accept:g} were not inverted (raw reading kept)"
            )
        findings = read_findings(release.keys, raw, "exact_match_raw", None, f"plain OCR ({engine.name})")
        findings += read_findings(release.keys, inv, "exact_match_inverted", None, f"OCR after inversion ({how})")
        return AttackResult(self.name, metrics, details, notes, findings)

    def _notes(self, release, mode, op, todo, inverted, chosen) -> list[str]:
        """Which operator the inversion assumed: the declared one, or the estimates it chose."""
        if mode == "declared":
            return [f"inversion with the declared operator {op.describe()}{self.declared_variants(op)}"]
        if mode == "skip":
            declared = release.degradation if self.use_declared() else None
            why = (
                f"the release declares {declared.describe()}, which {self.name} does not invert"
                if declared is not None
                else "the release declares no operator and blind='never'"
            )
            return [
                f"no inversion: {why} (inverted readings are the raw readings; blind='always' forces a blind search)"
            ]
        if release.degradation is None:
            why = "no operator declared"
        elif not self.use_declared():
            why = f"declared {release.degradation.kind} ignored: this attack is set to estimate blind"
        else:
            why = f"declared {release.degradation.kind} is not inverted by {self.name}; blind='always'"
        notes = [f"blind inversion ({why}): {self.blind_description()}"]
        notes.append(
            "estimated operators chosen: "
            + summarize_operators(
                [
                    (c, rec)
                    for (c, _), rec in zip(chosen, release.originals.records)
                    if c is not None and c.source == "estimated"
                ]
            )
        )
        missing = sum(1 for i in todo if not inverted[i])
        if missing:
            notes.append(f"{missing} image(s) had nothing to invert (raw reading kept)")
        return notes

    def methods_used(self) -> Sequence[str]:
        return tuple(self.methods)

    def declared_variants(self, op: Degradation) -> str:
        """Variants tried besides the declared operator itself, for the notes ('' when none)."""
        return ""

    def blind_description(self) -> str:
        raise NotImplementedError


def summarize_operators(chosen: Sequence[tuple[Candidate, Record]]) -> str:
    """One line per operator kind: its strengths in pixels and relative to the plate box height."""
    if not chosen:
        return "none (no image was inverted)"
    parts = []
    for kind in sorted({c.operator.kind for c, _ in chosen}):
        picked = [(c, r) for c, r in chosen if c.operator.kind == kind]
        field = picked[0][0].operator.strength_field or "strength"
        px = np.array([c.strength_px for c, _ in picked])
        rel = np.array([c.strength_px / r.boxes[0].h for c, r in picked if r.boxes and r.boxes[0].h])
        values = sorted(set(np.round(px, 2).tolist()))
        if len(values) <= 3:
            spread = ", ".join(f"{v:g} px on {int(np.sum(np.round(px, 2) == v))}" for v in values)
        else:
            spread = f"median {np.median(px):.3g} px, range {px.min():.3g}-{px.max():.3g}"
        ratio = f"; median {np.median(rel):.3g} x plate height" if len(rel) else ""
        parts.append(f"{kind} on {len(picked)} image(s), {field} {spread}{ratio}")
    return "; ".join(parts)


@ATTACKS.register("deblur_ocr")
class DeblurThenOCR(InversionAttack):
    """Deconvolve (Wiener, Richardson-Lucy) the plate region, then OCR it (see module doc).

    Args:
        engine: registered OCR engine name.
        methods: subset of ``("wiener", "richardson_lucy")``.
        wiener_balances: Wiener regularisation weights tried (each is one candidate).
        sigma_scales: for a declared Gaussian kernel, Wiener also tries these multiples of its
            sigma (the declared sigma itself first): a slightly narrower kernel regularises
            against the 8-bit quantisation of the release and often reads better (the OCR
            confidence decides, per image).
        rl_iterations: Richardson-Lucy iterations.
        blind_sigmas: Gaussian sigmas tried when no kernel is declared, as fractions of the plate
            box height (Wiener at each; Richardson-Lucy at the sigma Wiener's best reading chose).
        use_known_kernel: invert the blur operator the release declares (``False``: treat every
            release as of unknown origin).
        blind: when to search blind (see :meth:`InversionAttack.plan`): ``"auto"`` (only for
            releases that declare no operator), ``"always"`` or ``"never"``.
        include_raw: let the raw release reading compete in the inverted selection.
        accept_confident: a raw reading at least this confident (engine confidence in [0, 1]) is
            the attacker's answer and the image is not inverted; ``None`` (default) inverts every
            image, the strongest attack. 0.99 with RapidOCR skips most mildly blurred plates and
            makes audits several times faster (measured on synthetic plates: 2 of 757 skipped
            readings wrong, see docs/plate-attacks.md).
        engine_params, margin, batch_size, seed: as in :class:`~anonaudit.attacks.ocr.OCRReread`.
    """

    available_methods = ("wiener", "richardson_lucy")
    folder_audit = {"plates": {}}
    inverts = (GaussianBlurOperator, BoxBlurOperator)
    parallel_candidates = True

    test_params = {"methods": ["wiener"], "wiener_balances": [0.01], "sigma_scales": [1.0], "blind_sigmas": [0.05]}

    def __init__(
        self,
        engine: str = "rapidocr",
        methods: Sequence[str] = ("wiener", "richardson_lucy"),
        wiener_balances: Sequence[float] = (0.001, 0.01),
        sigma_scales: Sequence[float] = (0.75, 1.0),
        rl_iterations: int = 30,
        blind_sigmas: Sequence[float] = (0.03, 0.05, 0.07, 0.09, 0.12),
        use_known_kernel: bool = True,
        blind: str = "auto",
        include_raw: bool = False,
        accept_confident: float | None = None,
        engine_params: dict | None = None,
        margin: float = PLATE_MARGIN,
        batch_size: int = 32,
        seed: int = 0,
    ):
        self._init_common(
            engine, engine_params, margin, batch_size, include_raw, seed, tuple(methods), blind, accept_confident
        )
        if not wiener_balances or any(b <= 0 for b in wiener_balances):
            raise ConfigError(f"deblur_ocr: wiener_balances must be positive numbers, got {wiener_balances}")
        if not sigma_scales or any(s <= 0 for s in sigma_scales):
            raise ConfigError(f"deblur_ocr: sigma_scales must be positive numbers, got {sigma_scales}")
        if not blind_sigmas or any(s <= 0 for s in blind_sigmas):
            raise ConfigError(f"deblur_ocr: blind_sigmas must be positive fractions, got {blind_sigmas}")
        self.methods = methods
        self.wiener_balances = wiener_balances
        self.sigma_scales = sigma_scales
        self.rl_iterations = rl_iterations
        self.blind_sigmas = blind_sigmas
        self.use_known_kernel = use_known_kernel

    def use_declared(self) -> bool:
        return bool(self.use_known_kernel)

    def blind_description(self) -> str:
        return f"Gaussian sigma searched over {list(self.blind_sigmas)} x plate height by OCR confidence"

    def declared_variants(self, op: Degradation) -> str:
        others = [s for s in self._scales(op) if s != 1.0]
        return (
            f"; Wiener also with sigma x {', '.join(f'{s:g}' for s in others)}"
            if "wiener" in self.methods and others
            else ""
        )

    def _scales(self, op: Degradation) -> list[float]:
        """Kernel scales tried for a declared operator, the declared kernel (1.0) first."""
        if not isinstance(op, GaussianBlurOperator):
            return [1.0]
        return sorted(dict.fromkeys(float(s) for s in self.sigma_scales), key=lambda s: abs(math.log(s)))

    def _deconvolve(
        self, region: np.ndarray, kind: str, strength: float, method: str, balances: Sequence[float], truncate: float
    ) -> list[np.ndarray]:
        """One region restored with ``method``: per Wiener balance (one FFT for all), or one
        Richardson-Lucy restoration; a zero strength leaves the luminance as it is."""
        grey = luminance(region)
        if strength <= 0:
            return [to_rgb_uint8(grey) for _ in balances]
        if method == "wiener":
            return [
                to_rgb_uint8(g) for g in wiener_deconvolve_balances(grey, blur_psf(kind, strength, truncate), balances)
            ]
        return [to_rgb_uint8(richardson_lucy_deconvolve(grey, kind, strength, self.rl_iterations, truncate))]

    def _variants(self, method: str, op: Degradation) -> list[tuple[float, list[float]]]:
        """Kernel scales tried for a declared kernel (declared kernel first), each with the Wiener
        balances tried at it (Richardson-Lucy: the declared kernel, no balance)."""
        if method != "wiener":
            return [(1.0, [float("nan")])]
        return [(sc, list(self.wiener_balances)) for sc in self._scales(op)]

    def candidates(
        self, image: np.ndarray, record: Record, released: Record, op: Degradation | None
    ) -> list[Candidate]:
        if op is not None:
            kind = "gaussian" if isinstance(op, GaussianBlurOperator) else "box"
            truncate = float(getattr(op, "truncate", 4.0))
            crop = plate_box(record, image.shape, self.margin)
            out = []
            for method in self.methods:
                for scale, balances in self._variants(method, op):
                    used = [0.0]

                    def fn(region, s, box, method=method, scale=scale, balances=balances, used=used):
                        used[0] = scale * s
                        return self._deconvolve(region, kind, scale * s, method, balances, truncate)

                    restored = restore_many(
                        image, op, released, crop, fn, lambda s: 2 * int(truncate * s + 1), len(balances)
                    )
                    assumed = op.with_strength(scale * op.strength())
                    out.extend(Candidate(method, used[0], self._crop(r, record), assumed, "declared") for r in restored)
            return out
        # Blind: Gaussian sigma grid (fractions of the plate height) on a window around the crop.
        height = record.boxes[0].h if record.boxes else image.shape[0]
        sigmas = [f * height for f in self.blind_sigmas]
        grey, crop = self._blind_window(image, record, max(sigmas))
        out = []
        if "wiener" in self.methods:
            for s in sigmas:
                for restored in wiener_deconvolve_balances(grey, blur_psf("gaussian", s), self.wiener_balances):
                    crop_s = np.ascontiguousarray(to_rgb_uint8(restored)[crop])
                    out.append(Candidate("wiener", s, crop_s, GaussianBlurOperator(sigma=s), "estimated"))
        else:
            for s in sigmas:
                out.append(self._blind_rl(image, record, s))
        return out

    def _blind_window(self, image: np.ndarray, record: Record, sigma: float) -> tuple[np.ndarray, tuple[slice, slice]]:
        """Luminance of a window around the OCR crop wide enough for ``sigma``, and the crop in it."""
        box = plate_box(record, image.shape, self.margin)
        win = _window(box, 2 * int(4 * sigma + 1), image.shape)
        crop = (slice(box.y - win.y, box.y - win.y + box.h), slice(box.x - win.x, box.x - win.x + box.w))
        return luminance(image[win.slices]), crop

    def _blind_rl(self, image: np.ndarray, record: Record, sigma: float) -> Candidate:
        grey, crop = self._blind_window(image, record, sigma)
        restored = to_rgb_uint8(richardson_lucy_deconvolve(grey, "gaussian", sigma, self.rl_iterations))
        return Candidate(
            "richardson_lucy",
            sigma,
            np.ascontiguousarray(restored[crop]),
            GaussianBlurOperator(sigma=sigma),
            "estimated",
        )

    def _invert_all(self, engine, release, op, indices):
        results = super()._invert_all(engine, release, op, indices)
        if op is not None or not ("wiener" in self.methods and "richardson_lucy" in self.methods):
            return results
        # Blind with both methods: Richardson-Lucy (slow) only at the sigma of the most confident
        # Wiener candidate of each image.
        records = release.originals.records
        todo = [i for i in indices if results[i]]
        extra = []
        for i in todo:
            best = max(results[i], key=lambda cr: np.nan_to_num(cr[1].confidence, nan=-1.0))[0]
            extra.append(self._blind_rl(release.anonymized[i], records[i], best.strength_px))
        for i, c, r in zip(todo, extra, engine.read_arrays([c.crop for c in extra], self.batch_size)):
            c.crop = np.empty((0, 0, 3), np.uint8)
            results[i].append((c, r))
        return results


@ATTACKS.register("depixelate_ocr")
class DepixelateThenOCR(InversionAttack):
    """Smooth a mosaic back (bicubic from cell centres, Gaussian), then OCR (see module doc).

    Args:
        engine: registered OCR engine name.
        methods: subset of ``("bicubic", "gaussian")``.
        blind_blocks: block sizes (pixels) searched by OCR confidence (``blind="always"``) when
            the release declares no mosaic and no mosaic grid is found in the plate region.
        use_known_block: invert the mosaic the release declares (``False``: estimate it blind).
        blind: as in :class:`DeblurThenOCR`; with ``"auto"`` a blind release whose plate region
            shows no mosaic grid is not searched (raw reading kept), with ``"always"`` it is.
        include_raw, accept_confident, engine_params, margin, batch_size, seed: as in
            :class:`DeblurThenOCR`.
    """

    available_methods = ("bicubic", "gaussian")
    folder_audit = {"plates": {}}
    inverts = (PixelateOperator,)

    test_params = {"methods": ["gaussian"], "blind_blocks": [8]}

    def __init__(
        self,
        engine: str = "rapidocr",
        methods: Sequence[str] = ("bicubic", "gaussian"),
        blind_blocks: Sequence[int] = (4, 6, 8, 12, 16),
        use_known_block: bool = True,
        blind: str = "auto",
        include_raw: bool = False,
        accept_confident: float | None = None,
        engine_params: dict | None = None,
        margin: float = PLATE_MARGIN,
        batch_size: int = 32,
        seed: int = 0,
    ):
        self._init_common(
            engine, engine_params, margin, batch_size, include_raw, seed, tuple(methods), blind, accept_confident
        )
        if not blind_blocks or any(int(b) < 2 for b in blind_blocks):
            raise ConfigError(f"depixelate_ocr: blind_blocks must be integers >= 2, got {blind_blocks}")
        self.methods = methods
        self.blind_blocks = blind_blocks
        self.use_known_block = use_known_block

    def use_declared(self) -> bool:
        return bool(self.use_known_block)

    def blind_description(self) -> str:
        return (
            f"mosaic grid estimated from the image, else block size searched over {list(self.blind_blocks)} px by "
            "OCR confidence"
        )

    def candidates(
        self, image: np.ndarray, record: Record, released: Record, op: Degradation | None
    ) -> list[Candidate]:
        out = []
        if op is not None:
            crop = plate_box(record, image.shape, self.margin)
            for method in self.methods:
                used = [0]

                def fn(region, s, box, method=method, used=used):
                    b = max(1, round(s))
                    used[0] = b
                    # The mosaic is anchored at the anonymized region's corner (the image's for
                    # region="image"): its phase inside this region.
                    anchor = (0, 0) if op.region == "boxes" else (-box.x % b, -box.y % b)
                    return depixelate(region, b, method, anchor)

                restored = restore(image, op, released, crop, fn, lambda s: 2 * max(1, round(s)))
                out.append(Candidate(method, float(used[0]), self._crop(restored, record), op, "declared"))
            return out
        crop = self._crop(image, record)
        grid = estimate_grid(crop)
        if grid is not None:
            options = [grid]
        elif self.blind == "always":
            options = [(int(b), (0, 0)) for b in self.blind_blocks]
        else:
            return []  # no mosaic here: nothing to depixelate
        for b, phase in options:
            for method in self.methods:
                restored = np.ascontiguousarray(depixelate(crop, b, method, phase))
                out.append(Candidate(method, float(b), restored, PixelateOperator(block=float(b)), "estimated"))
        return out
