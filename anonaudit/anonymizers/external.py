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
    listed in :attr:`unpaired_` (set by :meth:`anonymize`); with ``on_mismatch="raise"`` any of
    them is an error, with ``"drop"`` the audit covers the pairs that exist and reports the rest.
    Released files are read lazily from disk, so metadata attacks see the real files.

    In an audit with an auxiliary split (:meth:`anonymize_with_auxiliary`) the release also holds
    the auxiliary people's files: those pair with the auxiliary originals, are not counted as
    extra, and are given to the attackers that want anonymized auxiliary images (the method
    itself cannot be re-applied: ``applies_to_new_images`` is False). Auxiliary originals without
    a released file are no error: the intruder's data need not be in the release.
    """

    applies_to_new_images = False

    def __init__(self, path: str = "", on_mismatch: str = "raise"):
        if not path:
            raise ConfigError("external: 'path' (the folder of anonymized files) is required")
        if on_mismatch not in ("raise", "drop"):
            raise ConfigError(f"external: on_mismatch must be 'raise' or 'drop', got {on_mismatch!r}")
        self.path = path
        self.on_mismatch = on_mismatch

    def anonymize(self, images: ImageSet, show_progress: bool = True) -> ImageSet:
        return self.anonymize_with_auxiliary(images, None, show_progress)[0]

    def anonymize_with_auxiliary(
        self, images: ImageSet, auxiliary: ImageSet | None, show_progress: bool = True
    ) -> tuple[ImageSet, ImageSet | None]:
        """The released files of ``images`` and of the ``auxiliary`` images (None when there are
        none), each as records of its originals (labels kept) pointing at the released files."""
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
        wanted = set(stems) | {_stem_key(k) for k in (auxiliary.keys if auxiliary is not None else ())}
        extra = [k for k in released.keys if _stem_key(k) not in wanted]
        self.unpaired_: dict[str, list[str]] = {"missing": missing, "extra": extra}
        if (missing or extra) and self.on_mismatch == "raise":
            raise MismatchError(
                f"release {folder} does not pair with the originals: {len(missing)} original(s) without a released "
                f"file {missing[:5]}, {len(extra)} released file(s) without an original {extra[:5]} "
                "(use on_mismatch: drop to audit the pairs that exist)"
            )
        paired = _paired(images, released, by_stem)
        if paired is None:
            raise MismatchError(f"release {folder}: no file matches any original name")
        return paired, None if auxiliary is None else _paired(auxiliary, released, by_stem)


def _paired(images: ImageSet, released: ImageSet, by_stem: dict[str, int]) -> ImageSet | None:
    """``images``' records that have a released file, pointing at it (None when none has)."""
    records = []
    for i, key in enumerate(images.keys):
        j = by_stem.get(_stem_key(key))
        if j is not None:
            records.append(dataclasses.replace(images.record(i), path=released.record(j).path))
    return ImageSet(records, name=f"external:{released.name}") if records else None
