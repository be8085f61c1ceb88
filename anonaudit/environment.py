"""What a result's determinism depends on, recorded and compared.

:func:`environment` collects the versions of the numeric libraries, the thread counts, the
deterministic-algorithm flags, the device and the sha256 of the dependency lock
(``requirements/lock-linux-py311.txt``); :func:`differences` lists, in words, how two such records
differ. ``anonaudit train`` stores the record in the checkpoint and its manifest, ``anonaudit run`` in
the run manifest (``environment``) and ``units/environment.json``; loading a checkpoint or resuming a
run under another environment warns with :func:`warn_differences` (:func:`claim_environment`).
:func:`installed_packages` gives the version of every installed
distribution, for the manifest and the certificate.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .fileio import write_json_atomic

#: The lock ``make install`` installs from (present in a source checkout, absent from a wheel install).
LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements" / "lock-linux-py311.txt"

#: Where a run folder's ``units/`` records the environment its stored results were computed under.
ENVIRONMENT_FILE = "environment.json"

#: Distributions whose version changes numeric results.
NUMERIC_PACKAGES = ("numpy", "scipy", "torch", "torchvision", "onnxruntime", "pillow", "opencv-python-headless",
                    "opencv-python", "scikit-learn", "scikit-image")

#: Environment variables that set the thread pools of OpenMP, MKL and OpenBLAS (and OpenBLAS's kernel).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")


class EnvironmentWarning(UserWarning):
    """A checkpoint or stored run was computed under another environment than the current one."""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """``{name: version}`` of every installed distribution, names normalised (PEP 503), sorted."""
    found = {_normalise(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}
    return dict(sorted(found.items()))


@lru_cache(maxsize=8)
def _file_sha256(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_sha256(path: str | Path | None = None) -> str | None:
    """The sha256 of the lock file (default :data:`LOCK_FILE`); None when there is none."""
    path = Path(path) if path is not None else LOCK_FILE
    if not path.is_file():
        return None
    stat = path.stat()
    return _file_sha256(path, stat.st_mtime_ns, stat.st_size)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _torch_state(device: str | None) -> dict[str, Any]:
    """Threads, flags and device of torch (imported here when installed); empty values without it."""
    state: dict[str, Any] = {
        "threads": {"torch threads": None, "torch inter-op threads": None},
        "deterministic": {"torch deterministic algorithms": None, "cuDNN deterministic": None, "cuDNN benchmark": None},
        "device": {"type": device or "cpu", "GPU": None},
    }
    if importlib.util.find_spec("torch") is None:
        return state
    import torch

    state["threads"] = {
        "torch threads": torch.get_num_threads(),
        "torch inter-op threads": torch.get_num_interop_threads(),
    }
    state["deterministic"] = {
        "torch deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "cuDNN deterministic": bool(torch.backends.cudnn.deterministic),
        "cuDNN benchmark": bool(torch.backends.cudnn.benchmark),
    }
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = kind.split(":")[0]
    gpu = torch.cuda.get_device_name(0) if kind == "cuda" and torch.cuda.is_available() else None
    state["device"] = {"type": kind, "GPU": gpu}
    return state


def environment(device: str | None = None, lock: str | Path | None = None) -> dict[str, Any]:
    """What determinism depends on, as a JSON-ready mapping.

    ``python``, ``machine`` (``Linux x86_64``), ``versions`` of :data:`NUMERIC_PACKAGES` (None when
    not installed), ``threads`` (torch's intra- and inter-op pools and :data:`THREAD_VARIABLES`),
    ``deterministic`` (torch's deterministic algorithms, cuDNN's deterministic and benchmark flags),
    ``device`` (``type`` cpu/cuda and the ``GPU`` name; ``device`` overrides the default, CUDA when
    available) and ``lock_sha256``. Importing torch here, when installed, is what reads its threads.
    """
    torch_state = _torch_state(device)
    return {
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "versions": {name: _version(name) for name in NUMERIC_PACKAGES},
        "threads": {**torch_state["threads"], **{v: os.environ.get(v) for v in THREAD_VARIABLES}},
        "deterministic": torch_state["deterministic"],
        "device": torch_state["device"],
        "lock_sha256": lock_sha256(lock),
    }


def _flatten(record: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if not isinstance(record, dict):
        return {prefix: record}
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in record.items():
        flat.update(_flatten(value, (*prefix, str(key))))
    return flat


def _label(path: tuple[str, ...]) -> str:
    if path[0] == "versions" and len(path) == 2:
        return f"{path[1]} version"
    if path[0] == "device" and len(path) == 2:
        return "device" if path[1] == "type" else path[1]
    if path == ("python",):
        return "Python version"
    if path == ("lock_sha256",):
        return "lock sha256"
    return path[-1]


def _shown(value: Any) -> str:
    return "not set" if value is None else str(value)


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """How ``current`` differs from ``recorded``, one line per differing entry, in words.

    E.g. ``"torch version: 2.14.1 recorded, 2.13.0 now"``; an entry one record lacks is shown as
    ``not set``. Equal records give an empty list.
    """
    old, new = _flatten(recorded), _flatten(current)
    lines = []
    for path in list(old) + [p for p in new if p not in old]:
        if old.get(path) != new.get(path):
            lines.append(f"{_label(path)}: {_shown(old.get(path))} recorded, {_shown(new.get(path))} now")
    return lines


def warn_differences(recorded: Any, current: dict[str, Any], what: str) -> list[str]:
    """Warn (:class:`EnvironmentWarning`) once per difference between ``recorded`` and ``current``.

    ``what`` names the thing recorded (a checkpoint's path, a run folder). A record that is not a
    mapping (files written before environments were recorded) is not compared. Returns the lines.
    """
    if not isinstance(recorded, dict):
        return []
    lines = differences(recorded, current)
    for line in lines:
        warnings.warn(f"{what} was computed under another environment: {line}", EnvironmentWarning, stacklevel=3)
    return lines


def claim_environment(folder: str | Path, current: dict[str, Any], resume: bool, what: str) -> list[str]:
    """Keep ``folder/environment.json`` the environment of the results stored in ``folder``.

    Resuming into a folder that records another environment warns once per difference and keeps the
    recorded one (its results are still there); otherwise ``current`` is written (atomically).
    Returns the differences warned about.
    """
    path = Path(folder) / ENVIRONMENT_FILE
    if resume and path.is_file():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        if isinstance(recorded, dict):
            return warn_differences(recorded, current, what)
    write_json_atomic(path, current)
    return []


__all__ = [
    "ENVIRONMENT_FILE",
    "LOCK_FILE",
    "NUMERIC_PACKAGES",
    "THREAD_VARIABLES",
    "EnvironmentWarning",
    "claim_environment",
    "differences",
    "environment",
    "installed_packages",
    "lock_sha256",
    "warn_differences",
]
