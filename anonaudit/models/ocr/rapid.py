"""RapidOCR (PP-OCR ONNX models shipped inside the ``rapidocr`` wheel): the offline default engine.

Recognition runs the package's CTC recogniser directly on each crop, so the engine can expose
per-position alternatives: each emitted character is a run of CTC frames whose arg-max is that
character; its alternatives are the non-blank characters ranked by their highest probability over
the run's frames. The decoded text is exactly RapidOCR's greedy CTC decoding (arg-max, collapse
repeats, drop blanks), restricted to ``allowlist`` when one is given (constrained decoding: every
other character's probability is set to zero before the arg-max, the blank is always allowed).

Batching never changes a reading: crops are padded to a width bucket of their own (a multiple of
64 pixels at the recogniser's 48-pixel input height) and batched only with crops of the same
bucket, so a crop reads the same alone or in any batch (the memo relies on it). The recogniser's
session computes each call on one thread, and a batch is cut into parts of two crops that run in
parallel threads, one per usable CPU (:func:`anonaudit.parallel.worker_count`; ONNX Runtime releases the
GIL), each thread decoding its own parts: data parallelism over crops, which outruns the runtime's
own intra-op threads on small or busy machines. Any batch of two or more crops gives each crop the
same output bits, so parts (never of a lone crop, whose outputs can differ in the last bits) change
nothing.

Text detection (:meth:`RapidOCREngine.detect_arrays`) runs the package's DB detector, for the
plate-detectability evaluator.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np

from ...data.io import as_rgb_uint8, content_hash
from ...data.records import Box
from ...errors import ModelUnavailableError
from ...memo import Memo
from ...parallel import worker_count
from ...params import check_range
from ...registry import OCR_ENGINES
from .base import OCREngine, Reading, resolve_allowlist

_INSTANCES: dict[str, Any] = {}
_LOCK = threading.Lock()

#: Detector settings: limit the longer side to 960 px (PaddleOCR's classic default); the
#: package default (shorter side >= 736 px) blows a 80x500 plate crop up to 736x4600.
DETECTOR_PARAMS = {"Det.limit_type": "max", "Det.limit_side_len": 960}

#: Recogniser (and detector) session settings: one intra-op thread per call (calls run in
#: parallel, see above).
RECOGNIZER_PARAMS = {"EngineConfig.onnxruntime.intra_op_num_threads": 1}

_BUCKET = 64
T = TypeVar("T")


@dataclass(frozen=True)
class TextRegion:
    """One detected text region: its axis-aligned bounding box and the detector's score."""

    x: float
    y: float
    w: float
    h: float
    score: float


def plate_boxes(regions: list[TextRegion], min_aspect: float = 1.5, margin: float = 0.15) -> list[Box]:
    """Plate-shaped boxes from text ``regions``: regions on one line (vertical overlap over half the
    smaller height, horizontal gap under a line height) are merged, lines at least ``min_aspect``
    times as wide as high are kept, grown by ``margin`` of their height on every side."""
    lines: list[list[float]] = []
    for r in sorted(regions, key=lambda r: r.x):
        for line in lines:
            x0, y0, x1, y1 = line
            overlap = min(y1, r.y + r.h) - max(y0, r.y)
            if overlap > 0.5 * min(y1 - y0, r.h) and r.x - x1 < max(y1 - y0, r.h):
                line[:] = [min(x0, r.x), min(y0, r.y), max(x1, r.x + r.w), max(y1, r.y + r.h)]
                break
        else:
            lines.append([r.x, r.y, r.x + r.w, r.y + r.h])
    out = []
    for x0, y0, x1, y1 in lines:
        h = y1 - y0
        if h > 0 and x1 - x0 >= min_aspect * h:
            m = margin * h
            out.append(
                Box(int(round(x0 - m)), int(round(y0 - m)), int(round(x1 - x0 + 2 * m)), int(round(h + 2 * m)), "plate")
            )
    return out


def rapidocr_instance(params: dict[str, Any] | None = None, slot: int = 0):
    """The process-wide ``RapidOCR`` object for ``params`` (constructed once, then reused).

    ``slot`` numbers independent objects of the same settings, for threads that must not share
    one (the package's detector keeps per-call state on the object)."""
    key = json.dumps([params or {}, slot], sort_keys=True)
    with _LOCK:
        inst = _INSTANCES.get(key)
        if inst is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise ModelUnavailableError(
                    "rapidocr", f"package not installed ({exc})", "pip install rapidocr onnxruntime"
                ) from None
            try:
                inst = RapidOCR(params={"Global.log_level": "error", **(params or {})})
            except Exception as exc:  # noqa: BLE001 - the package raises bare errors for missing model files
                raise ModelUnavailableError(
                    "rapidocr", f"cannot load its shipped ONNX models: {exc}", "pip install --force-reinstall rapidocr"
                ) from None
            _INSTANCES[key] = inst
    return inst


def _rapidocr_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("rapidocr")
    except metadata.PackageNotFoundError:
        raise ModelUnavailableError("rapidocr", "package not installed", "pip install rapidocr onnxruntime") from None


#: Values per block when bounding the k-th largest value from block maxima (see :func:`_top_k`).
_TOP_K_BLOCK = 64


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, as ``np.argsort(-values, kind="stable")[:k]`` (ties keep
    index order) but in O(C) for C classes: a full sort per character over RapidOCR's ~18,700-class
    charset dominated decoding time.

    A long array is cut into disjoint groups (every m-th value, m = size // :data:`_TOP_K_BLOCK`,
    which vectorises well); the k-th largest group maximum is a lower bound of the k-th largest
    value (k groups hold a value at least that large), so the values at or above it hold the top k,
    and only those few are sorted. Short arrays take the k-th largest value itself (``np.partition``)."""
    k = min(k, values.size)
    if values.size >= 4 * _TOP_K_BLOCK * k:
        whole = values.size // _TOP_K_BLOCK * _TOP_K_BLOCK
        maxima = values[:whole].reshape(_TOP_K_BLOCK, -1).max(axis=0)
        if whole < values.size:
            maxima = np.append(maxima, values[whole:].max())
        floor = np.partition(maxima, maxima.size - k)[maxima.size - k]
    else:
        floor = np.partition(values, values.size - k)[values.size - k]
    candidates = np.flatnonzero(values >= floor)  # every value tied with the bound too
    return candidates[np.argsort(-values[candidates], kind="stable")][:k]


def ctc_decode(
    probs: np.ndarray, charset: Sequence[str], max_alternatives: int = 5
) -> tuple[str, float, tuple[tuple[tuple[str, float], ...], ...]]:
    """Greedy CTC decoding of one ``(T, C)`` probability matrix (class 0 = blank).

    Returns the text, its confidence (mean probability of the emitted characters, nan when none)
    and per emitted character the top ``max_alternatives`` non-blank classes by their highest
    probability over the frames of that character's run.
    """
    idx = probs.argmax(axis=1)
    text: list[str] = []
    confs: list[float] = []
    alts: list[tuple[tuple[str, float], ...]] = []
    t = 0
    n = len(idx)
    while t < n:
        c = int(idx[t])
        end = t + 1
        while end < n and idx[end] == c:
            end += 1
        if c != 0:
            run = probs[t:end, 1:].max(axis=0)
            order = _top_k(run, max_alternatives)
            text.append(charset[c])
            confs.append(float(probs[t:end, c].max()))
            alts.append(tuple((charset[int(o) + 1], float(run[o])) for o in order))
        t = end
    conf = float(np.mean(confs)) if confs else float("nan")
    return "".join(text), conf, tuple(alts)


#: Crops per session call. Two is the fastest measured on CPU (benchmarks/recognizer_parts.py: 1.15x
#: one whole-batch call with the runtime's own threads, where parts of six, the package's
#: rec_batch_num, gave 0.97x) and, like any part of two or more, gives each crop the bits of one
#: call on the whole batch.
PART_SIZE = 2


def _forward(
    session, batch: np.ndarray, finish: Callable[[np.ndarray], list[T]], part_size: int = PART_SIZE
) -> list[T]:
    """``finish`` of the recogniser's outputs for ``batch``, in batch order.

    The batch is computed in parts of about ``part_size`` crops (never one alone), as many per
    thread, run by parallel threads. Each part's outputs (about 3 MB per crop: the whole character
    set's probabilities at every frame) are finished in the thread that computed them and never
    gathered: copying them into one array took 6.5 s of a two-minute plate audit while the other core idled."""
    n, threads = len(batch), worker_count()
    count = max(1, math.ceil(n / part_size))
    count = min(math.ceil(count / threads) * threads, max(1, n // 2))  # balanced threads, parts of two or more
    bounds = [round(i * n / count) for i in range(count + 1)]
    parts = list(itertools.pairwise(bounds))

    def run(part: tuple[int, int]) -> list[T]:
        return finish(np.asarray(session(batch[part[0] : part[1]])))

    if min(threads, len(parts)) < 2:
        finished = [run(part) for part in parts]
    else:
        with ThreadPoolExecutor(min(threads, len(parts))) as pool:
            finished = list(pool.map(run, parts))
    return [item for part in finished for item in part]


@OCR_ENGINES.register("rapidocr")
class RapidOCREngine(OCREngine):
    """RapidOCR recogniser (PP-OCR, ONNX, CPU) with per-position alternatives.

    Args:
        allowlist: restrict decoding to these characters (``"plates"`` = A-Z0-9; ``None`` = the
            model's whole character set, Chinese included).
        max_alternatives: candidates kept per character position (for top-k metrics).
    """

    def __init__(self, allowlist: str | None = None, max_alternatives: int = 5):
        check_range(self, "max_alternatives", max_alternatives, ge=1, integer=True)
        self.allowlist = allowlist
        self.max_alternatives = max_alternatives
        self._mask: np.ndarray | None = None

    def backend_version(self) -> str:
        return _rapidocr_version()

    def _recognizer(self):
        return rapidocr_instance(RECOGNIZER_PARAMS)._load_rec_model()

    def _class_mask(self, charset: Sequence[str]) -> np.ndarray | None:
        allowed = resolve_allowlist(self.allowlist)
        if allowed is None:
            return None
        if self._mask is None or len(self._mask) != len(charset):
            keep = set(allowed)
            self._mask = np.array([i == 0 or ch in keep for i, ch in enumerate(charset)], dtype=np.float32)
        return self._mask

    def _recognize(self, crops: list[np.ndarray]) -> list[Reading]:
        rec = self._recognizer()
        charset = rec.postprocess_op.character
        mask = self._class_mask(charset)
        _, img_h, base_w = rec.rec_image_shape
        out: list[Reading | None] = [None] * len(crops)

        def decode(preds: np.ndarray) -> list[Reading]:
            if mask is not None:
                preds *= mask
            return [Reading(*ctc_decode(p, charset, self.max_alternatives)) for p in preds]

        buckets: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            h, w = crop.shape[:2]
            width = max(base_w, math.ceil(img_h * w / max(h, 1) / _BUCKET) * _BUCKET)
            buckets.setdefault(width, []).append(i)
        for width, members in sorted(buckets.items()):
            batch = np.stack(
                [rec.resize_norm_img(cv2.cvtColor(crops[i], cv2.COLOR_RGB2BGR), (width + 0.5) / img_h) for i in members]
            ).astype(np.float32)
            for i, reading in zip(members, _forward(rec.session, batch, decode)):
                out[i] = reading
        return [r if r is not None else Reading.empty(True) for r in out]

    # -- text detection ----------------------------------------------------------------------
    def detector_id(self) -> str:
        return f"ocr-det:rapidocr:{self.backend_version()}:{json.dumps(DETECTOR_PARAMS, sort_keys=True)}"

    def detect_arrays(self, images: Sequence[np.ndarray]) -> list[list[TextRegion]]:
        """Text regions found by RapidOCR's DB detector in each image (memoised per content)."""
        arrays = [as_rgb_uint8(im, f"image {i}") for i, im in enumerate(images)]
        memo = Memo(self.detector_id())

        def detect_part(slot: int, part: list[int]) -> list[list[list[float]]]:
            det = rapidocr_instance({**DETECTOR_PARAMS, **RECOGNIZER_PARAMS}, slot)  # one thread per call
            out = []
            for i in part:
                res = det(cv2.cvtColor(arrays[i], cv2.COLOR_RGB2BGR), use_cls=False, use_rec=False)
                boxes = getattr(res, "boxes", None)
                scores = getattr(res, "scores", None)
                regions = []
                if boxes is not None and len(boxes):
                    for quad, score in zip(np.asarray(boxes, dtype=float), scores):
                        x0, y0 = quad[:, 0].min(), quad[:, 1].min()
                        regions.append(
                            [float(x0), float(y0), float(np.ptp(quad[:, 0])), float(np.ptp(quad[:, 1])), float(score)]
                        )
                out.append(regions)
            return out

        def compute(idx: list[int]) -> list[list[list[float]]]:
            # Images in parallel threads, each with its own detector object (same outputs as one
            # thread: each image is detected alone, and the runtime's thread count changes no bits).
            parts = min(worker_count(), len(idx))
            if parts < 2:
                return detect_part(0, idx)
            bounds = [round(k * len(idx) / parts) for k in range(parts + 1)]
            with ThreadPoolExecutor(parts) as pool:
                found = pool.map(detect_part, range(parts), [idx[a:b] for a, b in itertools.pairwise(bounds)])
            return [regions for part in found for regions in part]

        values = memo.get_or_compute([content_hash(a) for a in arrays], compute)
        return [[TextRegion(*r) for r in v] for v in values]
