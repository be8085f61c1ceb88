"""Face alignment: 5-landmark similarity warp to the ArcFace template, and FaceNet's margin crop."""

from __future__ import annotations

import cv2
import numpy as np

from ...data.imageset import Box
from .base import Detection

#: insightface's ``arcface_dst``: where the 5 landmarks (LANDMARK_NAMES order) land in a 112x112 crop.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama (1991), as ``skimage.transform.SimilarityTransform`` estimates it. Returns the
    ``2 x 3`` affine matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (n>=2, 2) point arrays, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sig * sign).sum() / var_s if var_s > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def arcface_template(size: int = 112) -> np.ndarray:
    """The ArcFace landmark template scaled to a ``size x size`` crop."""
    return ARCFACE_TEMPLATE * (size / 112.0)


def arcface_matrix(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The ``2 x 3`` similarity matrix taking the 5 ``landmarks`` onto the ArcFace template."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"need 5 finite (x, y) landmarks, got shape {lm.shape}")
    return umeyama(lm, arcface_template(size))


def align_arcface(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The ``size x size`` RGB crop of the face whose 5 landmarks are given (insightface ``norm_crop``)."""
    m = arcface_matrix(landmarks, size)
    return cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def facenet_crop(image: np.ndarray, box: Box | np.ndarray | tuple, size: int = 160, margin: int = 0) -> np.ndarray:
    """facenet-pytorch's ``extract_face``: the box grown by ``margin`` pixels (in output scale), clipped, resized.

    ``box`` is a :class:`Box` or corners ``(x1, y1, x2, y2)``. Resizing uses area interpolation, as
    facenet-pytorch does for numpy images.
    """
    if isinstance(box, Box):
        x1, y1, x2, y2 = box.x, box.y, box.x + box.w, box.y + box.h
    else:
        x1, y1, x2, y2 = (float(v) for v in box)
    mx = margin * (x2 - x1) / (size - margin)
    my = margin * (y2 - y1) / (size - margin)
    h, w = image.shape[:2]
    left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
    right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
    if right <= left or bottom <= top:
        raise ValueError(f"box {box} lies outside the {w}x{h} image")
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def main_face(detections: list[Detection], image_shape: tuple[int, ...], select: str = "largest") -> Detection | None:
    """The detection taken as an image's subject: ``largest`` box, best ``score`` or nearest the ``center``."""
    if not detections:
        return None
    if select == "largest":
        return max(detections, key=lambda d: (d.box.area, d.score))
    if select == "score":
        return max(detections, key=lambda d: d.score)
    if select == "center":
        cy, cx = image_shape[0] / 2, image_shape[1] / 2
        return min(detections, key=lambda d: (d.box.x + d.box.w / 2 - cx) ** 2 + (d.box.y + d.box.h / 2 - cy) ** 2)
    raise ValueError(f"select must be 'largest', 'score' or 'center', not {select!r}")
