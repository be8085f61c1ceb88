"""What an audit looked at, by hash: its input and released images and the model weights it loaded.

The runner records, while it audits (so a certificate attests the files that were audited, not
whatever lies in the folders later):

- ``<run>/provenance/inputs.json``: sha256 of every evaluation original and auxiliary image, and
  the code that audited them;
- ``<run>/provenance/released/<target_id>.json``: sha256 of every released image of that target, and
  of every released file it could not fully audit (``not_audited``: skipped, unpaired), with its status;
- the manifest's ``weights``: sha256 of every model weight file the process loaded.

An image held in a file is hashed as the file's bytes (``source: file``); an image held in memory
(generated data, an anonymizer's output) as its pixel array: shape, dtype and bytes (``source:
pixels``). Weight files are found two ways, both recorded: files with a weight suffix opened from
Python (an ``open`` audit hook: ``torch.load``, the model cache's hash check before every use), and
the weight files shipped inside packages whose native code loads them unseen by Python (RapidOCR's
ONNX models, dlib's ``face_recognition_models``, facenet-pytorch's MTCNN, EasyOCR's offline models,
LPIPS) when the process imported them. The list covers the whole process up to the end of the run,
so weights an earlier audit in the same process loaded are listed too. Tesseract runs as a separate
program; its ``traineddata`` files are not listed.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .data.imageset import ImageSet, Release
from .fileio import write_json_atomic

WEIGHT_SUFFIXES = (".onnx", ".pt", ".pth", ".ckpt", ".dat", ".bin", ".safetensors", ".h5", ".tflite")
#: Importable packages that ship weight files (loaded by native code, invisible to the open hook).
WEIGHT_PACKAGES = ("rapidocr", "face_recognition_models", "facenet_pytorch", "easyocr_en_models", "lpips")

_OPENED: set[str] = set()
_HOOKED = False
_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def sha256_pixels(array: np.ndarray) -> str:
    """sha256 of an image array: its shape and dtype, then its bytes (C order)."""
    arr = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def image_hashes(images: ImageSet | None) -> list[dict[str, Any]]:
    """One ``{key, sha256, source, path}`` per image (see the module doc)."""
    if images is None:
        return []
    out = []
    for i, rec in enumerate(images.records):
        if not images.in_memory and rec.path is not None:
            out.append({"key": rec.key, "sha256": sha256_file(rec.path), "source": "file", "path": str(rec.path)})
        else:
            out.append({"key": rec.key, "sha256": sha256_pixels(images[i]), "source": "pixels", "path": None})
    return out


def code_version() -> dict[str, Any]:
    """anonaudit's version and, when it runs from a git checkout, the commit and whether it has local changes."""
    import subprocess
    from importlib import metadata

    try:
        version = metadata.version("anonaudit")
    except metadata.PackageNotFoundError:
        version = None
    out: dict[str, Any] = {"anonaudit": version, "git_commit": None, "git_dirty": None}
    here = Path(__file__).resolve().parent  # the anonaudit package: its commit and its local changes
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "."],
                capture_output=True,
                text=True,
                timeout=10,
            )
            out["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):  # no git program, or not a checkout
        pass
    return out


def record_inputs(run: Path, evaluation: ImageSet, auxiliary: ImageSet | None) -> None:
    """Write ``<run>/provenance/inputs.json``: the originals the audit evaluated, the intruder's data,
    and the code that audited them (:func:`code_version`)."""
    write_json_atomic(run / "provenance" / "inputs.json", {
        "evaluation": image_hashes(evaluation), "auxiliary": image_hashes(auxiliary), "code": code_version(),
    })


def record_release(run: Path, target_id: str, release: Release) -> None:
    """Write ``<run>/provenance/released/<target_id>.json``: the released images of one target and the
    released files not fully audited (their sha256, status and reason)."""
    not_audited = [
        {
            "key": f.key,
            "path": f.file,
            "sha256": sha256_file(f.file),
            "source": "file",
            "status": f.status,
            "reason": f.reason,
        }
        for f in release.files
        if f.status != "audited" and f.file and os.path.isfile(f.file)
    ]
    write_json_atomic(run / "provenance" / "released" / f"{target_id}.json",
                      {"released": image_hashes(release.anonymized), "not_audited": not_audited})


def _hook(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], (str, os.PathLike)):
        path = os.fspath(args[0])
        if path.lower().endswith(WEIGHT_SUFFIXES):
            _OPENED.add(os.path.abspath(path))


def record_weight_loads() -> None:
    """Start noting weight files opened from Python (an audit hook; installed once per process)."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_hook)
        _HOOKED = True


def weights_used() -> list[dict[str, Any]]:
    """Every weight file this process loaded (see the module doc), with its sha256 and size."""
    found: dict[str, str] = dict.fromkeys(_OPENED, "opened")
    for name in WEIGHT_PACKAGES:
        module = sys.modules.get(name)
        if module is None or not getattr(module, "__file__", None):
            continue
        for path in sorted(Path(module.__file__).resolve().parent.rglob("*")):
            if path.suffix.lower() in WEIGHT_SUFFIXES and path.is_file():
                found.setdefault(str(path), f"package:{name}")
    out = []
    for path, how in sorted(found.items()):
        if os.path.isfile(path):
            out.append({"path": path, "sha256": sha256_file(path), "bytes": os.path.getsize(path), "found": how})
    return out
