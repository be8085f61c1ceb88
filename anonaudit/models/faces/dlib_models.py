"""dlib face models shipped in the ``face_recognition_models`` package, and the ``dlib_hog`` detector.

The model files are located with :func:`importlib.util.find_spec` (the package's own ``__init__``
uses the deprecated ``pkg_resources``; it is never imported) and verified against the sha256 values
in ``MODELS.md`` before dlib opens them. Models are loaded once per process.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ...data.imageset import Box, ImageSet
from ...errors import ModelUnavailableError, WeightIntegrityError
from ...memo import Memo
from ...parallel import map_chunks
from ...registry import DETECTORS
from ..cache import sha256_file
from .base import Detection, FaceDetector

PACKAGE = "face_recognition_models"

#: sha256 of the files we rely on (from MODELS.md); files not listed here are opened unverified.
KNOWN_SHA256 = {
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_68_face_landmarks.dat": "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
}

#: 68-point indices (iBUG 300-W): outer corners of the eyes (image left, image right).
OUTER_EYE_CORNERS = (36, 45)


def _import_dlib():
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ModelUnavailableError("dlib", f"dlib is not installed ({exc})", "pip install dlib-bin") from None
    return dlib


def dlib_model_file(filename: str) -> Path:
    """Path of a model file inside ``face_recognition_models``, verified when its hash is known."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(PACKAGE, "package not installed", "pip install face_recognition_models")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise ModelUnavailableError(
            PACKAGE, f"{path} is missing", "pip install --force-reinstall face_recognition_models"
        )
    _verify(str(path), filename)
    return path


@functools.cache
def _verify(path: str, filename: str) -> None:
    expected = KNOWN_SHA256.get(filename)
    if expected is not None:
        digest = sha256_file(path)
        if digest != expected:
            raise WeightIntegrityError(
                f"{path}: sha256 {digest} does not match the published {expected}; refusing to load it"
            )


@functools.cache
def frontal_face_detector():
    """dlib's HOG + linear SVM frontal face detector."""
    return _import_dlib().get_frontal_face_detector()


@functools.cache
def shape_predictor(points: int):
    """dlib's 5- or 68-point shape predictor."""
    if points not in (5, 68):
        raise ValueError(f"dlib shape predictors have 5 or 68 points, not {points}")
    return _import_dlib().shape_predictor(str(dlib_model_file(f"shape_predictor_{points}_face_landmarks.dat")))


@functools.cache
def face_recognition_model():
    """dlib's ResNet-29 face descriptor network (128-d, 99.38% on LFW as published)."""
    return _import_dlib().face_recognition_model_v1(str(dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))


def _descriptors(crops: list[np.ndarray], num_jitters: int = 0) -> list[np.ndarray]:
    vecs = face_recognition_model().compute_face_descriptor(crops, int(num_jitters))
    return [np.asarray(v, dtype=np.float32) for v in vecs]


def _descriptors_plain(crops: list[np.ndarray]) -> list[np.ndarray]:
    return _descriptors(crops, 0)


def face_descriptors(crops: list[np.ndarray], num_jitters: int = 0) -> np.ndarray:
    """``(n, 128)`` dlib descriptors of 150x150 face chips. dlib holds the GIL while it runs, so large
    batches are spread over worker processes (:mod:`anonaudit.parallel`); results are identical."""
    if not crops:
        return np.zeros((0, 128), dtype=np.float32)
    fn = _descriptors_plain if int(num_jitters) == 0 else functools.partial(_descriptors, num_jitters=int(num_jitters))
    return np.stack(map_chunks(fn, crops))


def to_rectangle(box: Box):
    """A :class:`Box` as a ``dlib.rectangle`` (inclusive right/bottom corner)."""
    return _import_dlib().rectangle(int(box.x), int(box.y), int(box.x + box.w - 1), int(box.y + box.h - 1))


def shape_points(shape) -> np.ndarray:
    """``(n, 2)`` float array of a ``dlib.full_object_detection``'s points."""
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=float)


def landmarks68(image: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 iBUG landmarks ``(68, 2)`` of the face in ``box``."""
    return shape_points(shape_predictor(68)(np.ascontiguousarray(image), to_rectangle(box)))


def five_from_68(points: np.ndarray) -> np.ndarray:
    """The 5 canonical landmarks (eye centres, nose tip, mouth corners) from 68 iBUG points."""
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


@DETECTORS.register("dlib_hog")
class DlibHOGDetector(FaceDetector):
    """dlib's HOG frontal face detector.

    ``upsample`` doubles the image that many times first (finds faces down to ~40/2**upsample px).
    Scores are the SVM margins (``adjust_threshold`` lowers the acceptance threshold below 0).
    The 5 landmarks are derived from dlib's 68-point predictor: its 5-point model has no mouth
    corners, which the ArcFace alignment template needs.
    """

    def __init__(self, upsample: int = 1, adjust_threshold: float = 0.0):
        self.upsample = upsample
        self.adjust_threshold = adjust_threshold

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Detection]]:
        fn = functools.partial(_hog_detect, upsample=int(self.upsample), adjust_threshold=float(self.adjust_threshold))
        return map_chunks(fn, images)  # dlib holds the GIL: worker processes for large batches


def _hog_detect(images: list[np.ndarray], upsample: int, adjust_threshold: float) -> list[list[Detection]]:
    detector = frontal_face_detector()
    out = []
    for img in images:
        img = np.ascontiguousarray(img)
        h, w = img.shape[:2]
        rects, scores, _ = detector.run(img, upsample, adjust_threshold)
        dets = []
        for r, s in zip(rects, scores):
            box = Box(r.left(), r.top(), r.right() - r.left() + 1, r.bottom() - r.top() + 1, "face").clip(w, h)
            if box.area == 0:
                continue
            lm = five_from_68(shape_points(shape_predictor(68)(img, r)))
            dets.append(Detection(box, float(s), lm))
        out.append(sorted(dets, key=lambda d: -d.score))
    return out


def face_landmarks68(images: ImageSet, boxes: list[Box | None]) -> list[np.ndarray | None]:
    """68 landmarks of the face in ``boxes[i]`` of every image (None where no box), memoised per image and box."""
    memo = Memo("landmarks68:dlib")
    todo = [i for i, b in enumerate(boxes) if b is not None]
    keys = [f"{images.hash(i)}:{boxes[i].x},{boxes[i].y},{boxes[i].w},{boxes[i].h}" for i in todo]  # type: ignore[union-attr]
    values = memo.get_or_compute(keys, lambda idx: [landmarks68(images[todo[j]], boxes[todo[j]]) for j in idx])
    out: list[np.ndarray | None] = [None] * len(boxes)
    for i, v in zip(todo, values):
        out[i] = np.asarray(v, dtype=float)
    return out
