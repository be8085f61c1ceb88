"""Face pipeline: detectors (``mtcnn``, ``dlib_hog``), alignment, embedders (``dlib``, ``facenet``,
``arcface_r50``, ``arcface_r100``, ``arcface_trained``), the networks of ArcFace training
(the training itself: :mod:`anonaudit.training.arcface`) and LFW-style verification.

Importing this package registers the detectors and embedders; torch, dlib and onnxruntime are
imported only when a model is first used.
"""

from . import dlib_models, embedders, mtcnn  # noqa: F401  (registration)
from .align import ARCFACE_TEMPLATE, align_arcface, facenet_crop, main_face, umeyama
from .base import LANDMARK_NAMES, Detection, FaceDetector, FaceEmbedder
from .dlib_models import DlibHOGDetector
from .embedders import ArcFaceR50, ArcFaceR100, ArcFaceTrainedEmbedder, DlibEmbedder, FaceNetEmbedder
from .mtcnn import MTCNNDetector
from .verification import verify_pairs

__all__ = [
    "ARCFACE_TEMPLATE",
    "LANDMARK_NAMES",
    "ArcFaceR50",
    "ArcFaceR100",
    "ArcFaceTrainedEmbedder",
    "Detection",
    "DlibEmbedder",
    "DlibHOGDetector",
    "FaceDetector",
    "FaceEmbedder",
    "FaceNetEmbedder",
    "MTCNNDetector",
    "align_arcface",
    "facenet_crop",
    "main_face",
    "umeyama",
    "verify_pairs",
]
