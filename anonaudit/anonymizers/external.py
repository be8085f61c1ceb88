"""An anonymized release made by someone else: a folder of files paired with the originals by
name, or by a table of pairs when the released files were renamed."""

from __future__ import annotations

import csv
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
    ``a/b.png``), or, when ``pairs`` names a CSV file with the columns ``released`` (the file's
    path relative to ``path``) and ``original`` (the original's key), by that table: a release
    whose files were renamed before publication (so that their names no longer carry the
    originals' names or the people's identities) is audited as published. Originals without a released file and
    released files without an original are
    listed in :attr:`unpaired_`, every released image file's path in :attr:`released_files_` and the
    folder's other files (not of a type anonaudit reads, e.g. ``.heic`` or ``.txt``) in
    :attr:`other_files_` (all set by :meth:`anonymize`), so an audit gives every file a status; with
    ``on_mismatch="raise"`` any of
    them is an error, with ``"drop"`` the audit covers the pairs that exist and reports the rest.
    Released files are read lazily from disk, so metadata attacks see the real files.

    In an audit with an auxiliary split (:meth:`anonymize_with_auxiliary`) the release also holds
    the auxiliary people's files: those pair with the auxiliary originals, are not counted as
    extra, and are given to the attackers that want anonymized auxiliary images (the method
    itself cannot be re-applied: ``applies_to_new_images`` is False). Auxiliary originals without
    a released file are no error: the intruder's data need not be in the release.
    """

    applies_to_new_images = False

    test_params = {"path": "released"}  # the constructor needs a folder; the checks never read it
    param_alternatives = {"path": ("elsewhere",), "on_mismatch": ("drop",)}

    def __init__(self, path: str = "", on_mismatch: str = "raise", pairs: str = ""):
        if not path:
            raise ConfigError("external: 'path' (the folder of anonymized files) is required")
        if on_mismatch not in ("raise", "drop"):
            raise ConfigError(f"external: on_mismatch must be 'raise' or 'drop', got {on_mismatch!r}")
        self.path = path
        self.on_mismatch = on_mismatch
        self.pairs = pairs

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
        targets = self._read_pairs(released) if self.pairs else {k: _stem_key(k) for k in released.keys}
        by_stem: dict[str, int] = {}
        for key, stem in targets.items():
            if stem in by_stem:
                raise DataError(f"{folder}: two released files map to the same original name '{stem}'")
            by_stem[stem] = released.index_of(key)
        stems = [_stem_key(k) for k in images.keys]
        missing = [k for k, s in zip(images.keys, stems) if s not in by_stem]
        wanted = set(stems) | {_stem_key(k) for k in (auxiliary.keys if auxiliary is not None else ())}
        extra = [k for k in released.keys if targets.get(k) not in wanted]
        self.unpaired_: dict[str, list[str]] = {"missing": missing, "extra": extra}
        self.released_files_: dict[str, Path] = {r.key: Path(r.path) for r in released.records if r.path is not None}
        self.other_files_: dict[str, Path] = {  # released too, but not image files anonaudit reads: never audited
            p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
        }
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

    def _read_pairs(self, released: ImageSet) -> dict[str, str]:
        """``released key -> original name without extension`` from the ``pairs`` table (released
        files it does not list pair with nothing)."""
        table = Path(self.pairs)
        try:
            with table.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
                columns = set(rows[0]) if rows else set()
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"external pairs table {table}: cannot be read ({exc})") from None
        if not {"released", "original"} <= columns:
            raise DataError(
                f"external pairs table {table}: needs the columns 'released' and 'original' (and a row), has "
                f"{sorted(columns)}"
            )
        have = set(released.keys)
        out: dict[str, str] = {}
        for line, r in enumerate(rows, start=2):
            name, original = PurePosixPath((r["released"] or "").strip()).as_posix(), (r["original"] or "").strip()
            if name not in have:
                raise DataError(f"{table}:{line}: released file '{name}' is not an image in {self.path}")
            if not original:
                raise DataError(f"{table}:{line}: no original named for released file '{name}'")
            if name in out:
                raise DataError(f"{table}:{line}: released file '{name}' is listed twice")
            out[name] = _stem_key(original)
        return out


def _paired(images: ImageSet, released: ImageSet, by_stem: dict[str, int]) -> ImageSet | None:
    """``images``' records that have a released file, pointing at it (None when none has)."""
    records = []
    for i, key in enumerate(images.keys):
        j = by_stem.get(_stem_key(key))
        if j is not None:
            records.append(dataclasses.replace(images.record(i), path=released.record(j).path))
    return ImageSet(records, name=f"external:{released.name}") if records else None
