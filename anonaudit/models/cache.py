"""Weight cache: registered model files with URL, sha256 and licence, verified before every use.

``anonaudit models list|fetch NAME|add NAME PATH`` manage it. The cache folder is
``$ANONAUDIT_CACHE`` or ``~/.cache/anonaudit``; files live in ``<cache>/models/<name>/<filename>``.
A file whose sha256 does not match is refused (:class:`WeightIntegrityError`) and never loaded.
Where the publisher gives only a hash prefix, the full sha256 of the first verified copy is recorded
in ``<cache>/models/verified.json`` and required from then on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..errors import ModelUnavailableError, WeightIntegrityError
from ..fileio import atomic_path, write_json_atomic
from .specs import BUILTIN_SPECS, ModelSpec

MODEL_SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in BUILTIN_SPECS}


def register_model(spec: ModelSpec) -> ModelSpec:
    MODEL_SPECS[spec.name] = spec
    return spec


def cache_dir() -> Path:
    root = os.environ.get("ANONAUDIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "anonaudit")
    return Path(root) / "models"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verified_path() -> Path:
    return cache_dir() / "verified.json"


def _recorded_hashes() -> dict[str, str]:
    try:
        return json.loads(_verified_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _record_hash(name: str, digest: str) -> None:
    data = _recorded_hashes()
    data[name] = digest
    write_json_atomic(_verified_path(), data, sort_keys=True)


def get_spec(name: str) -> ModelSpec:
    try:
        return MODEL_SPECS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, MODEL_SPECS, n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise ModelUnavailableError(name, f"no such registered model{hint} (see `anonaudit models list`)") from None


def model_path(name: str) -> Path:
    spec = get_spec(name)
    return cache_dir() / spec.name / spec.filename


def verify(name: str, path: str | Path) -> str:
    """Check ``path`` against the registered hash of ``name``; returns its full sha256."""
    spec = get_spec(name)
    digest = sha256_file(path)
    expected = _recorded_hashes().get(name) if not spec.full_hash else spec.sha256
    ok = digest == expected if expected is not None else digest.startswith(spec.sha256)
    if not ok:
        raise WeightIntegrityError(
            f"{path}: sha256 {digest} does not match {name}'s registered "
            f"{'hash' if spec.full_hash else 'hash prefix'} {expected or spec.sha256}; refusing to load it"
        )
    if not spec.full_hash and name not in _recorded_hashes():
        _record_hash(name, digest)
    return digest


def resolve(name: str) -> Path:
    """Path of a verified local copy of model ``name``.

    Raises :class:`ModelUnavailableError` (with the fetch command) when absent, and
    :class:`WeightIntegrityError` when the file on disk does not match its hash.
    """
    path = model_path(name)
    if not path.is_file():
        raise ModelUnavailableError(name, f"weights not in the cache ({path})", f"anonaudit models fetch {name}")
    verify(name, path)
    return path


def is_available(name: str) -> bool:
    try:
        resolve(name)
        return True
    except (ModelUnavailableError, WeightIntegrityError):
        return False


def add(name: str, source: str | Path) -> Path:
    """Copy a file the user obtained into the cache after verifying it."""
    source = Path(source)
    if not source.is_file():
        raise ModelUnavailableError(name, f"{source} is not a file")
    if source.suffix == ".zip" and get_spec(name).archive_member:
        return _install_from_zip(name, source)
    verify(name, source)
    dest = model_path(name)
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest


def _install_from_zip(name: str, archive: Path) -> Path:
    import zipfile

    spec = get_spec(name)
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if m.endswith("/" + spec.archive_member) or m == spec.archive_member]
        if not members:
            raise ModelUnavailableError(name, f"{archive} has no member {spec.archive_member}")
        with tempfile.TemporaryDirectory() as tmp:
            extracted = Path(zf.extract(members[0], tmp))
            return add(name, extracted)


def fetch(name: str, timeout: float = 60.0) -> Path:
    """Download model ``name`` from its registered URL, verify it, and place it in the cache."""
    spec = get_spec(name)
    dest = model_path(name)
    if dest.is_file():
        verify(name, dest)
        return dest
    if not spec.url:
        raise ModelUnavailableError(name, "no public download of this file; obtain it as described for the model",
                                    f"anonaudit models add {name} PATH")
    suffix = ".zip" if spec.url.endswith(".zip") else Path(spec.filename).suffix
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"download{suffix}"
        try:
            with urllib.request.urlopen(spec.url, timeout=timeout) as resp, open(target, "wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise ModelUnavailableError(
                name, f"download from {spec.url} failed ({exc}); download it elsewhere and run "
                f"`anonaudit models add {name} PATH`"
            ) from None
        return add(name, target)
