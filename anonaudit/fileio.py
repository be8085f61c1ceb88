"""Files written whole or not at all, and PyTorch files read without running their code.

Every file the suite writes for later reading (results, manifests, images, checkpoints, cached
weights) goes through :func:`atomic_path`: the content is written to a temporary file beside the
target, which then replaces the target with ``os.replace``. An interruption leaves the previous file
or the new one, never half a file. :func:`torch_load` is the one place a ``.pt`` file is read:
``torch.load(weights_only=True)`` (no pickled code runs), with an error that names the file.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import AnonauditError, ModelUnavailableError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on leaving the block it replaces ``path``.

    The parent folder is created. When the block raises, the temporary file is removed and ``path``
    is left as it was. The temporary name is hidden (``.name.<pid>.<thread>.tmp``), so concurrent
    writers of the same file never share one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return path


def write_json_atomic(path: str | Path, data: Any, **dumps: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (values JSON cannot hold become strings);
    ``dumps`` are further :func:`json.dumps` arguments (e.g. ``sort_keys=True``). Returns ``path``."""
    return write_atomic(path, json.dumps(data, **{"indent": 2, "default": str, **dumps}))


def torch_save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns ``path``."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def torch_load(
    path: str | Path,
    map_location: Any = "cpu",
    error: Callable[[str, str], AnonauditError] = ModelUnavailableError,
    what: str = "weight file",
) -> Any:
    """The content of the PyTorch file ``path``, read with ``torch.load(weights_only=True)``.

    A missing file, or one torch cannot read that way (truncated, corrupt, not a PyTorch file, or
    holding pickled objects other than tensors and plain values), raises ``error(str(path), problem)``
    (:class:`~anonaudit.errors.ModelUnavailableError` unless the caller names its own), so the
    message names the file and what is wrong with it: "<what> not found", "not a file" or "corrupt or
    not a <what> (<the error torch raised>)", where ``what`` names the kind of file expected.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise error(str(path), f"{what} not found" if not path.exists() else "not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zips, pickles and foreign files fail in many ways
        raise error(str(path), f"corrupt or not a {what} ({type(exc).__name__}: {exc})") from None
