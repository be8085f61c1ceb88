"""``ImageSet`` (ordered images with labels) and ``Release`` (originals paired with anonymized)."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, ImageReadError, MismatchError
from .io import IMAGE_SUFFIXES, as_rgb_uint8, content_hash, read_image, write_image
from .records import Box, Record

if TYPE_CHECKING:
    from .degradation import Degradation


#: What became of a released file in an audit (``RUN/files.csv``): read and audited; skipped (its
#: pixels could not be decoded: the reason says why); unpaired (no original to pair it with); partly
#: read (some frames or streams were not decoded). Only ``audited`` files are fully covered.
FILE_STATUSES = ("audited", "skipped", "unpaired", "partly_read")


@dataclass(frozen=True)
class ReleasedFile:
    """One released file (or, for a release held in memory, one released image) and its status.

    ``key`` is the image key: the original's key when the file is paired, else the released file's
    own name. ``file`` is the path of the released file ("" for an image held in memory).
    """

    key: str
    file: str
    status: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in FILE_STATUSES:
            raise ValueError(f"file status must be one of {FILE_STATUSES}, got {self.status!r}")


DECODE_CACHE_ENV = "ANONAUDIT_DECODE_CACHE_MB"
DECODE_CACHE_DEFAULT_MB = 256


class DecodedFiles:
    """The most recently decoded image files, kept up to a size in bytes (least recently used out).

    An audit reads each original once per attack and evaluator; decoding a compressed file costs
    far more than the component that uses it, so recent decodes are kept. The bound (MiB) is
    ``$ANONAUDIT_DECODE_CACHE_MB`` (default 256; 0 keeps nothing), read on every store, so memory
    stays bounded however large the set. A file is recognised by path, size and modification time.
    Kept arrays are shared with every reader and read-only: copy before writing into one.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def budget() -> int:
        raw = os.environ.get(DECODE_CACHE_ENV, "")
        try:
            return max(0, int(float(raw) * 2**20)) if raw.strip() else DECODE_CACHE_DEFAULT_MB * 2**20
        except ValueError:
            raise DataError(f"{DECODE_CACHE_ENV}={raw!r}: expected a size in MiB") from None

    def read(self, path: Path) -> np.ndarray:
        """``read_image(path)``, from memory when decoded recently."""
        try:
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns)
        except OSError:
            return read_image(path)  # read_image names the problem
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        image = read_image(path)
        budget = self.budget()
        with self._lock:
            if image.nbytes <= budget and key not in self._items:
                image.flags.writeable = False  # shared: a reader that writes in place fails loudly
                self._items[key] = image
                self._bytes += image.nbytes
            while self._bytes > budget:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return image

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


DECODED_FILES = DecodedFiles()


class ImageStore:
    """Images written once to ``.npy`` files in ``folder`` and read back by key on every access.

    Holds computed images (an anonymizer's output) that need not stay in memory: an audit of a set
    read from files keeps its releases here, so memory does not grow with the number of images.
    Files are exact (no codec); the folder belongs to whoever created the store.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, Path] = {}

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, key: object) -> bool:
        return key in self._files

    def put(self, key: str, image: np.ndarray) -> None:
        """Store ``image`` (validated as RGB uint8) under ``key``."""
        path = self.folder / f"{len(self._files):08d}.npy"
        np.save(path, as_rgb_uint8(image, key), allow_pickle=False)
        self._files[key] = path

    def get(self, key: str) -> np.ndarray:
        path = self._files[key]
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ImageReadError(path, f"stored image of '{key}' cannot be read back: {exc}") from None


class ImageSet:
    """An ordered set of RGB uint8 images with keys and optional labels.

    Images are held in memory (``from_arrays``), read lazily from files (``from_paths``) through
    the safe reader, so corrupt files fail with their name, or read back from an :class:`ImageStore`
    (``store``: computed images; records carry no path). Metadata lives in :class:`Record`s.
    """

    def __init__(self, records: Sequence[Record], images: Sequence[np.ndarray] | None = None, name: str = "",
                 store: ImageStore | None = None):
        self.records: list[Record] = list(records)
        self.name = name
        self._store = None if images is not None else store
        if self._store is not None:
            self._images = None
            missing = [r.key for r in self.records if r.key not in self._store]
            if missing:
                raise DataError(f"records without a stored image: {missing[:5]}")
        elif images is not None:
            if len(images) != len(self.records):
                raise MismatchError(f"{len(images)} images for {len(self.records)} records")
            self._images: list[np.ndarray] | None = [
                as_rgb_uint8(im, r.key) for im, r in zip(images, self.records)
            ]
        else:
            missing = [r.key for r in self.records if r.path is None]
            if missing:
                raise DataError(f"records without a path or pixels: {missing[:5]}")
            self._images = None
        keys = [r.key for r in self.records]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise DataError(f"duplicate image keys in '{name or 'image set'}': {dup[:5]}")
        self._index = {k: i for i, k in enumerate(keys)}
        self._hashes: dict[int, str] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        images: Sequence[np.ndarray],
        keys: Sequence[str] | None = None,
        *,
        identities: Sequence[str | None] | None = None,
        texts: Sequence[str | None] | None = None,
        boxes: Sequence[Sequence[Box]] | None = None,
        attributes: Sequence[dict[str, Any]] | None = None,
        name: str = "",
    ) -> ImageSet:
        n = len(images)
        keys = list(keys) if keys is not None else [f"{i:06d}" for i in range(n)]
        records = [
            Record(
                key=keys[i],
                identity=identities[i] if identities is not None else None,
                text=texts[i] if texts is not None else None,
                boxes=tuple(boxes[i]) if boxes is not None else (),
                attributes=dict(attributes[i]) if attributes is not None else {},
            )
            for i in range(n)
        ]
        return cls(records, images, name=name)

    @classmethod
    def from_folder(cls, folder: str | Path, name: str = "") -> ImageSet:
        """All images under ``folder`` (recursively), keyed by their path relative to it."""
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder")
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        records = [Record(key=p.relative_to(folder).as_posix(), path=p) for p in paths]
        return cls(records, name=name or folder.name)

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._images is not None:
            return self._images[i]
        if self._store is not None:
            return self._store.get(self.records[i].key)
        path = self.records[i].path
        assert path is not None
        return DECODED_FILES.read(Path(path))

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        where = "in memory" if self.in_memory else "stored" if self._store is not None else "on disk"
        return f"ImageSet(name={self.name!r}, n={len(self)}, {where})"

    @property
    def in_memory(self) -> bool:
        return self._images is not None

    def record(self, i: int) -> Record:
        return self.records[i]

    def index_of(self, key: str) -> int:
        return self._index[key]

    def contains_key(self, key: str) -> bool:
        return key in self._index

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.records]

    @property
    def identities(self) -> list[str | None]:
        return [r.identity for r in self.records]

    @property
    def texts(self) -> list[str | None]:
        return [r.text for r in self.records]

    @property
    def boxes(self) -> list[tuple[Box, ...]]:
        return [r.boxes for r in self.records]

    def attribute(self, name: str) -> list[Any]:
        return [r.attributes.get(name) for r in self.records]

    def has_labels(self, field_name: str) -> bool:
        """True when every record has ``field_name`` (identity, text, boxes or an attribute)."""
        if field_name in ("identity", "text"):
            return all(getattr(r, field_name) not in (None, "") for r in self.records)
        if field_name == "boxes":
            return all(r.boxes for r in self.records)
        return all(r.attributes.get(field_name) not in (None, "") for r in self.records)

    def hash(self, i: int) -> str:
        """Content hash of image ``i`` (pixels and shape), computed once."""
        h = self._hashes.get(i)
        if h is None:
            h = self._hashes[i] = content_hash(self[i])
        return h

    # -- derivation ---------------------------------------------------------------------------
    def subset(self, indices: Iterable[int], name: str | None = None) -> ImageSet:
        idx = list(indices)
        recs = [self.records[i] for i in idx]
        imgs = [self._images[i] for i in idx] if self._images is not None else None
        out = ImageSet(recs, imgs, name=self.name if name is None else name, store=self._store)
        out._hashes = {j: self._hashes[i] for j, i in enumerate(idx) if i in self._hashes}
        return out

    def with_images(self, images: Sequence[np.ndarray], name: str | None = None) -> ImageSet:
        """Same records (keys, labels, boxes), new pixels, held in memory."""
        recs = [dataclasses.replace(r, path=None) for r in self.records]
        return ImageSet(recs, images, name=self.name if name is None else name)

    def map(self, fn: Callable[[np.ndarray, Record], np.ndarray], name: str | None = None) -> ImageSet:
        return self.with_images([fn(self[i], self.records[i]) for i in range(len(self))], name)

    def load(self) -> ImageSet:
        """This set with every image read into memory (errors name the failing file)."""
        if self.in_memory:
            return self
        out = ImageSet(self.records, [self[i] for i in range(len(self))], name=self.name)
        out._hashes = dict(self._hashes)
        return out

    def batches(self, batch_size: int) -> Iterator[tuple[list[int], list[np.ndarray]]]:
        """Stream ``(indices, images)`` batches without holding the whole set in memory."""
        for start in range(0, len(self), batch_size):
            idx = list(range(start, min(start + batch_size, len(self))))
            yield idx, [self[i] for i in idx]

    def split(self, fraction: float, seed: int = 0, by: str | None = None) -> tuple[ImageSet, ImageSet]:
        """Split into ``(first, second)`` with about ``fraction`` of the items in ``first``.

        ``by="identity"`` keeps every identity on one side (identity-disjoint splits).
        """
        if not 0.0 < fraction < 1.0:
            raise DataError(f"split fraction must be in (0, 1), got {fraction}")
        rng = np.random.default_rng(seed)
        if by is None:
            order = rng.permutation(len(self))
            cut = int(round(fraction * len(self)))
            first = sorted(order[:cut].tolist())
        else:
            groups = sorted({str(g) for g in self._group_values(by)})
            chosen = set(rng.permutation(groups)[: int(round(fraction * len(groups)))].tolist())
            first = [i for i, g in enumerate(self._group_values(by)) if str(g) in chosen]
        first_set = set(first)
        second = [i for i in range(len(self)) if i not in first_set]
        return self.subset(first), self.subset(second)

    def _group_values(self, by: str) -> list[Any]:
        if by == "identity":
            if not self.has_labels("identity"):
                raise DataError(f"'{self.name}': cannot split by identity, some images have none")
            return self.identities
        return self.attribute(by)

    def to_folder(self, folder: str | Path, suffix: str = ".png") -> list[Path]:
        """Write every image to ``folder/<key><suffix>`` (no metadata); returns the paths."""
        folder = Path(folder)
        paths = []
        for i, rec in enumerate(self.records):
            p = folder / (Path(rec.key).with_suffix(suffix))
            write_image(p, self[i])
            paths.append(p)
        return paths


class Release:
    """Originals and their anonymized versions, paired by key, plus the anonymizer's identity.

    Every attack and evaluator takes a ``Release``. ``anonymized`` is re-ordered to the originals'
    order; keys present on one side only raise :class:`MismatchError` unless ``on_mismatch="drop"``
    (then they are listed in ``unpaired``). ``degradation`` is the operator the anonymizer declares
    (:mod:`anonaudit.data.degradation`; ``None`` when unknown, e.g. an external release): inversion
    attacks invert it, or estimate one blind when there is none. ``auxiliary`` holds the auxiliary
    (intruder's) people's images as released, when the release has them (an external release
    publishes them alongside); adaptive attackers train on them instead of re-applying the method.
    ``anonymizer`` is the target object that made the release and ``training_keys`` the keys of the
    images a trained target learnt from (both ``None`` when unknown): white-box attacks (memorisation,
    membership) need them and are skipped with the reason otherwise.
    ``files`` lists every released file with its :class:`ReleasedFile` status (the audited pairs, the
    files that could not be decoded, those without an original); ``sources`` are image sets holding
    originals of files that are not among the pairs (e.g. the originals of skipped files), so a
    file scan can compare what such a file embeds with its original (:meth:`original_of`).
    """

    def __init__(
        self,
        originals: ImageSet,
        anonymized: ImageSet,
        name: str = "",
        params: dict[str, Any] | None = None,
        on_mismatch: str = "raise",
        degradation: Degradation | None = None,
        auxiliary: ImageSet | None = None,
        anonymizer: Any = None,
        training_keys: Sequence[str] | None = None,
        files: Sequence[ReleasedFile] | None = None,
        sources: Sequence[ImageSet] = (),
    ):
        if on_mismatch not in ("raise", "drop"):
            raise ValueError("on_mismatch must be 'raise' or 'drop'")
        okeys, akeys = set(originals.keys), set(anonymized.keys)
        missing = sorted(okeys - akeys)  # originals without an anonymized version
        extra = sorted(akeys - okeys)  # anonymized files with no original
        self.unpaired: dict[str, list[str]] = {"missing": missing, "extra": extra}
        if (missing or extra) and on_mismatch == "raise":
            raise MismatchError(
                f"originals and release do not pair up: {len(missing)} original(s) have no anonymized "
                f"version {missing[:5]}, {len(extra)} anonymized file(s) have no original {extra[:5]}"
            )
        keep = [i for i, k in enumerate(originals.keys) if k in akeys]
        self.originals = originals if len(keep) == len(originals) else originals.subset(keep)
        order = [anonymized.index_of(k) for k in self.originals.keys]
        self.anonymized = anonymized if order == list(range(len(anonymized))) else anonymized.subset(order)
        if len(self.originals) == 0:
            raise MismatchError("originals and release share no keys: nothing to audit")
        self.name = name
        self.params = dict(params or {})
        self.degradation = degradation
        self.auxiliary = auxiliary
        self.anonymizer = anonymizer
        self.training_keys = None if training_keys is None else list(training_keys)
        self.files: list[ReleasedFile] = list(files) if files is not None else [
            ReleasedFile(r.key, "" if r.path is None else str(r.path), "audited") for r in self.anonymized.records
        ]
        self.sources = [self.originals, *sources]

    def has_original(self, key: str) -> bool:
        """Whether the pairs or the ``sources`` hold an original of ``key``."""
        return any(images.contains_key(key) for images in self.sources)

    def original_of(self, key: str) -> np.ndarray | None:
        """The original image of ``key`` from the pairs or the ``sources`` (None when none holds it)."""
        for images in self.sources:
            if images.contains_key(key):
                return images[images.index_of(key)]
        return None

    def __len__(self) -> int:
        return len(self.originals)

    def __repr__(self) -> str:
        return f"Release(name={self.name!r}, params={self.params}, n={len(self)})"

    @property
    def keys(self) -> list[str]:
        return self.originals.keys

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.originals[i], self.anonymized[i]

    def subset(self, indices: Iterable[int]) -> Release:
        idx = list(indices)
        return Release(self.originals.subset(idx), self.anonymized.subset(idx), self.name, self.params,
                       degradation=self.degradation, auxiliary=self.auxiliary, anonymizer=self.anonymizer,
                       training_keys=self.training_keys)

    def batches(self, batch_size: int) -> Iterator[Release]:
        for start in range(0, len(self), batch_size):
            yield self.subset(range(start, min(start + batch_size, len(self))))

    def identity(self) -> Release:
        """The originals released as they are: the attack's upper bound."""
        return Release(self.originals, self.originals, "originals", {})
