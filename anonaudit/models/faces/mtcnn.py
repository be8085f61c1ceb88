"""MTCNN face detector (facenet-pytorch; its P/R/O-net weights ship in the wheel, so it works offline)."""

from __future__ import annotations

import functools
import math

import numpy as np

from ...data.imageset import Box
from ...errors import ModelUnavailableError
from ...registry import DETECTORS
from .base import Detection, FaceDetector


def resolve_device(device: str | None) -> str:
    """``"auto"``/None -> ``"cuda"`` when available else ``"cpu"``; other values unchanged."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@functools.lru_cache(maxsize=8)
def _mtcnn(device: str, min_face_size: int, thresholds: tuple[float, float, float], factor: float):
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ModelUnavailableError(
            "mtcnn", f"facenet-pytorch is not installed ({exc})", "pip install facenet-pytorch"
        ) from None
    model = MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds), factor=factor, device=device)
    return model.eval()


def box_from_corners(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
    """The smallest integer box covering corners ``(x1, y1)-(x2, y2)``, clipped to the image."""
    x0, y0 = math.floor(x1), math.floor(y1)
    return Box(x0, y0, math.ceil(x2) - x0, math.ceil(y2) - y0, "face").clip(width, height)


@DETECTORS.register("mtcnn")
class MTCNNDetector(FaceDetector):
    """facenet-pytorch MTCNN: boxes, probabilities and 5 landmarks, batched over equal-size images.

    Landmarks come in :data:`~anonaudit.models.faces.base.LANDMARK_NAMES` order (MTCNN's own).
    """

    def __init__(
        self,
        device: str = "cpu",
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
    ):
        self.device = device
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.factor = factor

    def model_id(self) -> str:  # the device does not change the output beyond float noise
        return f"detector:{self.name}:{self.min_face_size}:{tuple(self.thresholds)}:{self.factor}"

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Detection]]:
        import torch

        model = _mtcnn(
            resolve_device(self.device),
            int(self.min_face_size),
            tuple(float(t) for t in self.thresholds),
            float(self.factor),
        )
        out: list[list[Detection]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            by_shape.setdefault(img.shape, []).append(i)
        for shape, idx in by_shape.items():
            batch = np.stack([images[i] for i in idx])
            with torch.no_grad():
                boxes, probs, points = model.detect(batch, landmarks=True)
            h, w = shape[:2]
            for j, i in enumerate(idx):
                if boxes[j] is None:
                    continue
                dets = []
                for b, p, lm in zip(boxes[j], probs[j], points[j]):
                    box = box_from_corners(*b, w, h)
                    if box.area > 0:
                        dets.append(Detection(box, float(p), np.asarray(lm, float)))
                out[i] = sorted(dets, key=lambda d: -d.score)
        return out
