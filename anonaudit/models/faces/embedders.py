"""Face embedders registered in ``EMBEDDERS``: ``dlib`` (offline default), ``facenet``, ``arcface_r50``,
``arcface_r100`` and ``arcface_trained``.

Each finds its image's main face with a registered detector (memoised per image, so detections are
shared with every other component using the same detector), aligns it the way the network was
trained, and returns L2-normalised float32 rows; images without a face give a NaN row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...data.imageset import ImageSet
from ...errors import ModelUnavailableError
from ...fileio import torch_load
from ...registry import DETECTORS, EMBEDDERS
from .. import cache
from .align import align_arcface, facenet_crop, main_face
from .base import Detection, FaceEmbedder, l2_normalise, make_detector


class DetectingEmbedder(FaceEmbedder):
    """Shared machinery: detect (memoised), pick the main face, embed the crops in one batch."""

    detector: str
    select: str
    device: str = "cpu"
    #: whether ``crop`` needs the detector's 5 landmarks (faces without them are skipped)
    needs_landmarks = True

    def main_faces(self, images: list[np.ndarray]) -> list[Detection | None]:
        dets = make_detector(self.detector, self.device).detect(ImageSet.from_arrays(images))
        return [main_face(d, img.shape, self.select) for d, img in zip(dets, images)]

    def crop(self, image: np.ndarray, face: Detection) -> Any:
        raise NotImplementedError

    def embed_crops(self, crops: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def embed_arrays(self, images: list[np.ndarray]) -> np.ndarray:
        out = np.full((len(images), self.dim), np.nan, dtype=np.float32)
        faces = self.main_faces(images)
        todo = [
            i for i, f in enumerate(faces) if f is not None and (f.landmarks is not None or not self.needs_landmarks)
        ]
        if todo:
            crops = [self.crop(images[i], faces[i]) for i in todo]
            out[todo] = l2_normalise(np.asarray(self.embed_crops(crops), dtype=np.float32))
        return out


_DIGESTS: dict[str, str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a weight file, computed once per (path, size, mtime) in this process."""
    st = path.stat()
    key = f"{path.resolve()}:{st.st_mtime_ns}:{st.st_size}"
    if key not in _DIGESTS:
        _DIGESTS[key] = cache.sha256_file(path)
    return _DIGESTS[key]


@EMBEDDERS.register("dlib")
class DlibEmbedder(DetectingEmbedder):
    """dlib's ResNet face descriptor (128-d) on 150x150 chips aligned with its 5-point predictor.

    Works offline: the weights ship in ``face_recognition_models``. ``num_jitters`` > 0 averages
    that many randomly jittered copies (dlib's option; slower, slightly more accurate).
    ``upsample`` is the HOG detector's (0 finds faces from ~80 px and is ~5x faster than 1).
    """

    dim = 128
    needs_landmarks = False

    def __init__(
        self,
        detector: str = "dlib_hog",
        select: str = "largest",
        num_jitters: int = 0,
        padding: float = 0.25,
        upsample: int = 1,
        device: str = "cpu",
    ):
        self.detector = detector
        self.select = select
        self.num_jitters = num_jitters
        self.padding = padding
        self.upsample = upsample
        self.device = device

    def model_id(self) -> str:  # device does not change dlib's output
        return f"embedder:dlib:{self.detector}:{self.upsample}:{self.select}:{self.num_jitters}:{self.padding}"

    def main_faces(self, images: list[np.ndarray]) -> list[Detection | None]:
        if self.detector != "dlib_hog":
            return super().main_faces(images)
        dets = DETECTORS.create("dlib_hog", upsample=self.upsample).detect(ImageSet.from_arrays(images))
        return [main_face(d, img.shape, self.select) for d, img in zip(dets, images)]

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray:
        import dlib

        from .dlib_models import shape_predictor, to_rectangle

        img = np.ascontiguousarray(image)
        shape = shape_predictor(5)(img, to_rectangle(face.box))
        return dlib.get_face_chip(img, shape, size=150, padding=float(self.padding))

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        from .dlib_models import face_descriptors

        return face_descriptors(crops, int(self.num_jitters))


@EMBEDDERS.register("facenet")
class FaceNetEmbedder(DetectingEmbedder):
    """FaceNet InceptionResnetV1 (facenet-pytorch architecture) on 160x160 MTCNN-style crops.

    ``weights`` is a model-cache entry (default ``facenet-vggface2``, fetched with
    ``anonaudit models fetch facenet-vggface2``) or a path to a state dict. facenet-pytorch's own
    downloader is never used.
    """

    dim = 512
    needs_landmarks = False

    def __init__(
        self,
        weights: str = "facenet-vggface2",
        detector: str = "mtcnn",
        select: str = "largest",
        margin: int = 0,
        device: str = "cpu",
    ):
        self.weights = weights
        self.detector = detector
        self.select = select
        self.margin = margin
        self.device = device
        self._net = None
        self._path: Path | None = None

    def _weights_path(self) -> Path:
        if self._path is None:
            local = Path(self.weights)
            self._path = local if local.suffix in (".pt", ".pth") and local.is_file() else cache.resolve(self.weights)
        return self._path

    def model_id(self) -> str:
        return f"embedder:facenet:{file_digest(self._weights_path())}:{self.detector}:{self.select}:{self.margin}"

    def _model(self):
        if self._net is None:
            from facenet_pytorch import InceptionResnetV1

            from .arcface import TorchFaceModel
            from .mtcnn import resolve_device

            path = self._weights_path()
            state = torch_load(path)
            if not isinstance(state, dict):
                raise ModelUnavailableError(str(path), "not a PyTorch state dict")
            state = {k: v for k, v in state.items() if not k.startswith("logits.")}  # classifier head of training
            net = InceptionResnetV1(pretrained=None, classify=False)
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ModelUnavailableError(
                    str(path), f"does not match InceptionResnetV1: {str(exc).splitlines()[0]}"
                ) from None
            self._net = TorchFaceModel(net, resolve_device(self.device))
        return self._net

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray:
        return facenet_crop(image, face.box, size=160, margin=int(self.margin))

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        from .arcface import preprocess

        return self._model()(preprocess(crops, mean=127.5, std=128.0))  # facenet fixed_image_standardization


class ArcFaceEmbedder(DetectingEmbedder):
    """ArcFace IResNet on 112x112 crops aligned to insightface's 5-point template.

    ``weights=None`` loads insightface's ONNX file from the model cache (``cache_name``); a path to
    an ``.onnx`` file loads that; any other path is read as an ``arcface_torch`` PyTorch state dict
    for ``arch``. Input is RGB, ``(x - input_mean) / input_std`` (insightface: 127.5, 127.5).
    """

    dim = 512
    arch = "iresnet50"
    cache_name = "arcface-r50"

    def __init__(
        self,
        weights: str | None = None,
        detector: str = "mtcnn",
        select: str = "largest",
        device: str = "cpu",
        input_mean: float = 127.5,
        input_std: float = 127.5,
    ):
        self.weights = weights
        self.detector = detector
        self.select = select
        self.device = device
        self.input_mean = input_mean
        self.input_std = input_std
        self._net = None
        self._path: Path | None = None

    def _weights_path(self) -> Path:
        if self._path is None:
            if self.weights is None:
                self._path = cache.resolve(self.cache_name)
            elif Path(self.weights).is_file():
                self._path = Path(self.weights)
            else:
                raise ModelUnavailableError(str(self.weights), "weight file not found")
        return self._path

    def model_id(self) -> str:
        weights = file_digest(self._weights_path())
        return f"embedder:{self.name}:{weights}:{self.detector}:{self.select}:{self.input_mean}:{self.input_std}"

    def _model(self):
        if self._net is None:
            from .arcface import OnnxFaceModel, TorchFaceModel, load_iresnet
            from .mtcnn import resolve_device

            path = self._weights_path()
            device = resolve_device(self.device)
            if path.suffix.lower() == ".onnx":
                self._net = OnnxFaceModel(path, device)
            else:
                self._net = TorchFaceModel(load_iresnet(path, self.arch), device)
        return self._net

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray:
        return align_arcface(image, face.landmarks, 112)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        from .arcface import preprocess

        return self._model()(preprocess(crops, float(self.input_mean), float(self.input_std)))


@EMBEDDERS.register("arcface_r50")
class ArcFaceR50(ArcFaceEmbedder):
    """insightface ArcFace IResNet-50 (buffalo_l ``w600k_r50.onnx``, or an ``iresnet50`` state dict)."""

    arch = "iresnet50"
    cache_name = "arcface-r50"


@EMBEDDERS.register("arcface_r100")
class ArcFaceR100(ArcFaceEmbedder):
    """insightface ArcFace IResNet-100 (antelopev2 ``glintr100.onnx``, or an ``iresnet100`` state dict)."""

    arch = "iresnet100"
    cache_name = "arcface-r100"


@EMBEDDERS.register("arcface_trained")
class ArcFaceTrainedEmbedder(DetectingEmbedder):
    """An ArcFace IResNet trained by ``anonaudit train`` (method ``arcface``, :mod:`anonaudit.training.arcface`).

    ``checkpoint`` is the run's ``checkpoint.pt``; faces are aligned to the template at the training
    input size. ``detector="none"`` takes every image as an aligned crop (only resized).
    """

    def __init__(self, checkpoint: str, detector: str = "mtcnn", select: str = "largest", device: str = "cpu"):
        self.checkpoint = checkpoint
        self.detector = detector
        self.select = select
        self.device = device
        self._net = None
        self._ckpt: dict[str, Any] | None = None

    def _load(self):
        if self._net is None:
            from .arcface import TorchFaceModel
            from .arcface_train import load_trained
            from .mtcnn import resolve_device

            model, self._ckpt = load_trained(self.checkpoint)
            self._net = TorchFaceModel(model, resolve_device(self.device))
        return self._net

    @property
    def input_size(self) -> int:
        self._load()
        return int(self._ckpt["config"]["input_size"])

    @property
    def dim(self) -> int:  # type: ignore[override]
        self._load()
        return int(self._ckpt["config"]["embedding_dim"])

    def model_id(self) -> str:
        path = Path(self.checkpoint)
        if not path.is_file():
            raise ModelUnavailableError(str(path), "checkpoint not found")
        return f"embedder:arcface_trained:{file_digest(path)}:{self.detector}:{self.select}"

    def embed_arrays(self, images: list[np.ndarray]) -> np.ndarray:
        if self.detector != "none":
            return super().embed_arrays(images)
        import cv2

        size = self.input_size
        crops = [cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA) for im in images]
        return (
            l2_normalise(np.asarray(self.embed_crops(crops), dtype=np.float32))
            if crops
            else np.zeros((0, self.dim), np.float32)
        )

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray:
        return align_arcface(image, face.landmarks, self.input_size)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        from .arcface import preprocess

        return self._load()(preprocess(crops, 127.5, 127.5))
