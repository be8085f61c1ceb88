"""An anonymized release made by someone else: a folder of files paired with the originals by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from ..data.imageset import ImageSet
from ..data.io import IMAGE_SUFFIXES
from ..errors import ConfigError, DataError, MismatchError
from ..registry import ANONYMIZERS
from .base import Anonymizer


def _stem_key(key: str) -> str:
    p = PurePosixPath(key)
    return str(p.with_suffix("")) if p.suffix.lower() in IMAGE_SUFFIXES else key


@ANONYMIZERS.register("external")
class ExternalRelease(Anonymizer):
    """Audit a release you did not produce: ``path`` holds the anonymized files.

    Files are matched to originals by relative path without extension (``a/b.jpg`` pairs with
    ``a/b.png``). Originals without a released file and released files without an original are
    listed in :attr:`unpaired`; with ``on_mismatch="raise"`` any of them is an error, with ``"drop"``
    the audit covers the pairs that exist and reports the rest. Released files are read lazily
    from disk, so metadata attacks see the real files.
    """

    def __init__(self, path: str = "", on_mismatch: str = "raise"):
        if not path:
            raise ConfigError("external: 'path' (the folder of anonymized files) is required")
        if on_mismatch not in ("raise", "drop"):
            raise ConfigError(f"external: on_mismatch must be 'raise' or 'drop', got {on_mismatch!r}")
        self.path = path
        self.on_mismatch = on_mismatch
        self.unpaired: dict[str, list[str]] = {"missing": [], "extra": []}

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        folder = Path(self.path)
        if not folder.is_dir():
            raise DataError(f"external release folder {folder} does not exist or is not a folder")
        released = ImageSet.from_folder(folder)
        by_stem: dict[str, int] = {}
        for i, key in enumerate(released.keys):
            stem = _stem_key(key)
            if stem in by_stem:
                raise DataError(f"{folder}: two released files map to the same original name '{stem}'")
            by_stem[stem] = i
        stems = [_stem_key(k) for k in images.keys]
        missing = [k for k, s in zip(images.keys, stems) if s not in by_stem]
        wanted = set(stems)
        extra = [k for k in released.keys if _stem_key(k) not in wanted]
        self.unpaired = {"missing": missing, "extra": extra}
        if (missing or extra) and self.on_mismatch == "raise":
            raise MismatchError(
                f"release {folder} does not pair with the originals: {len(missing)} original(s) without a released "
                f"file {missing[:5]}, {len(extra)} released file(s) without an original {extra[:5]} "
                "(use on_mismatch: drop to audit the pairs that exist)"
            )
        records = []
        for i, key in enumerate(images.keys):
            j = by_stem.get(stems[i])
            if j is not None:
                records.append(dataclasses.replace(images.record(i), path=released.record(j).path))
        if not records:
            raise MismatchError(f"release {folder}: no file matches any original name")
        return ImageSet(records, name=f"external:{folder.name}")
