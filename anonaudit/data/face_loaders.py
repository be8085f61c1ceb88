"""Loaders for face data sets: LFW-style folders and pairs files, CelebA and CelebA-HQ layouts.

Same conventions as :mod:`anonaudit.data.loaders`: lazy path-based :class:`ImageSet`, keys are
image paths relative to the root, errors name the file and line, ``limit``/``seed`` subsample.
Gender is stored as ``attributes["gender"]`` in ``{"male", "female", None}``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from .imageset import ImageSet, Record
from .io import IMAGE_SUFFIXES
from .loaders import dataset_root, make_imageset, read_labels_csv, select

_GENDERS = {"male": "male", "m": "male", "man": "male", "female": "female", "f": "female", "woman": "female"}
_LFW_FILE = re.compile(r"^(?P<name>.+)_(?P<number>\d+)$")
_PARTITIONS = {"0": "train", "1": "val", "2": "test"}


def _gender(value: str | None, where: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return _GENDERS[value.strip().lower()]
    except KeyError:
        raise DataError(f"{where}: gender must be male/female (or m/f, or empty), got {value!r}") from None


# -- LFW --------------------------------------------------------------------------------------------
def load_lfw(
    root: str | Path,
    labels: str | Path | None = None,
    limit: int | None = None,
    seed: int | None = 0,
    disjoint_from: dict | None = None,
) -> ImageSet:
    """An LFW-style face set: ``[images/]Person_Name/Person_Name_0001.jpg`` folders.

    ``labels`` is a CSV ``path,identity,gender`` (relative to ``root`` unless absolute; other
    columns become attributes). By default ``root/labels.csv`` is used when present; without a
    labels file every image under ``root`` is loaded and its identity is its folder's name.
    A missing identity in the CSV also falls back to the folder name.

    ``disjoint_from`` is another selection of the same folder, ``{limit: N, seed: S}`` (as this
    loader's own ``limit`` and ``seed``): every person with a photo in it is left out before
    ``limit`` and ``seed`` choose this set. A model trained on
    ``{limit: 200, seed: 1, disjoint_from: {limit: 150, seed: null}}`` never saw anyone of an
    audit of ``{limit: 150, seed: null}``.
    """
    root = dataset_root(root)
    if labels is None and (root / "labels.csv").is_file():
        labels = "labels.csv"
    if labels is not None:
        labels_path = Path(labels) if Path(labels).is_absolute() else root / labels
        records = read_labels_csv(root, labels_path)
        where = str(labels_path)
    else:
        records = ImageSet.from_folder(root).records
        where = str(root)
    out = []
    for rec in records:
        attributes = dict(rec.attributes)
        if "gender" in attributes:
            attributes["gender"] = _gender(attributes["gender"], f"{where}: image {rec.key}")
        identity = rec.identity or Path(rec.key).parent.name
        if not identity:
            raise DataError(f"{where}: image {rec.key} has no identity (no identity column and not in a person folder)")
        out.append(Record(key=rec.key, path=rec.path, identity=identity, attributes=attributes, boxes=rec.boxes))
    if disjoint_from is not None:
        out = _without_people_of(out, disjoint_from, where)
    return make_imageset(out, root.name, limit, seed)


def _without_people_of(records: list[Record], other: dict, where: str) -> list[Record]:
    """``records`` without every person who has a photo in the selection ``other`` of them."""
    if not isinstance(other, dict) or not set(other) <= {"limit", "seed"}:
        raise DataError(f"{where}: disjoint_from must be a selection {{limit: N, seed: S}}, got {other!r}")
    people = {r.identity for r in select(records, other.get("limit"), other.get("seed", 0))}
    kept = [r for r in records if r.identity not in people]
    if not kept:
        raise DataError(f"{where}: disjoint_from {other!r} covers every person of the data set")
    return kept


def lfw_index(images: ImageSet) -> dict[tuple[str, int], str]:
    """Map ``(person, image number)`` to keys, from file names ``<person>_<NNNN>.<ext>``."""
    index = {}
    for rec in images.records:
        m = _LFW_FILE.match(Path(rec.key).stem)
        if m:
            index[(m["name"], int(m["number"]))] = rec.key
    return index


def load_lfw_pairs(path: str | Path, images: ImageSet, on_missing: str = "raise") -> list[tuple[str, str, bool]]:
    """Parse an LFW ``pairs.txt`` into ``(key_a, key_b, same_person)`` in terms of ``images``' keys.

    Format: a header line ``N`` (one set of N matched + N mismatched pairs, e.g. ``pairsDevTrain.txt``)
    or ``FOLDS N`` (``pairs.txt``: 10 folds of 300 + 300), then lines ``name n1 n2`` (same person)
    and ``name1 n1 name2 n2`` (different people), TAB or space separated. Pairs keep the file's
    order, so fold ``f`` is ``pairs[f * 2N:(f + 1) * 2N]``. A pair whose image is not in ``images``
    raises (``on_missing="raise"``) or is left out (``on_missing="drop"``).
    """
    if on_missing not in ("raise", "drop"):
        raise ValueError("on_missing must be 'raise' or 'drop'")
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as a text pairs file: {exc}") from None
    rows = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        raise DataError(f"{path}: empty pairs file")
    header_line, header = rows[0]
    if not (1 <= len(header) <= 2 and all(h.isdigit() for h in header)):
        raise DataError(f"{path}:{header_line}: header must be 'N' or 'FOLDS N' (integers), got {' '.join(header)!r}")
    folds, per_class = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    index = lfw_index(images)
    pairs: list[tuple[str, str, bool]] = []
    counts = {True: 0, False: 0}
    for line, fields in rows[1:]:
        where = f"{path}:{line}"
        if len(fields) == 3:
            (a, na), (b, nb), same = (fields[0], fields[1]), (fields[0], fields[2]), True
        elif len(fields) == 4:
            (a, na), (b, nb), same = (fields[0], fields[1]), (fields[2], fields[3]), False
        else:
            raise DataError(f"{where}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {' '.join(fields)!r}")
        if not (na.isdigit() and nb.isdigit()):
            raise DataError(f"{where}: image numbers must be integers, got {na!r} and {nb!r}")
        counts[same] += 1
        keys = [index.get((a, int(na))), index.get((b, int(nb)))]
        if None in keys:
            if on_missing == "drop":
                continue
            missing = [f"{p}_{int(n):04d}" for (p, n), k in zip(((a, na), (b, nb)), keys) if k is None]
            raise DataError(f"{where}: image(s) {missing} not in image set '{images.name}' (on_missing='drop' skips)")
        pairs.append((keys[0], keys[1], same))  # type: ignore[arg-type]
    expected = folds * per_class
    if counts[True] != expected or counts[False] != expected:
        raise DataError(
            f"{path}: header promises {folds} x {per_class} matched and mismatched pairs, found "
            f"{counts[True]} matched and {counts[False]} mismatched"
        )
    return pairs


# -- CelebA / CelebA-HQ -----------------------------------------------------------------------------
_CELEBA_IMAGE_DIRS = ("img_align_celeba", "img_celeba", "CelebA-HQ-img", "CelebAMask-HQ/CelebA-HQ-img", "images")
_CELEBA_ATTR_FILES = (
    "list_attr_celeba.txt",
    "CelebAMask-HQ-attribute-anno.txt",
    "CelebAMask-HQ/CelebAMask-HQ-attribute-anno.txt",
)
_HQ_MAPPING = ("CelebA-HQ-to-CelebA-mapping.txt", "CelebAMask-HQ/CelebA-HQ-to-CelebA-mapping.txt")


def _first_existing(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).exists()), None)


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        subdirs = [p for p in folder.iterdir() if p.is_dir()]
        if len(subdirs) == 1:  # e.g. Kaggle's img_align_celeba/img_align_celeba/
            return _image_files(subdirs[0])
    stems_numeric = all(p.stem.isdigit() for p in files)
    return sorted(files, key=(lambda p: (int(p.stem), p.name)) if stems_numeric else (lambda p: p.name))


def _read_table(path: Path) -> list[tuple[int, list[str]]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as text: {exc}") from None
    return [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]


def read_celeba_attributes(path: Path) -> dict[str, dict[str, bool]]:
    """``list_attr_celeba.txt`` format: count line, attribute names line, ``file v1 .. vk`` (-1/1)."""
    rows = _read_table(path)
    if len(rows) < 2 or len(rows[0][1]) != 1 or not rows[0][1][0].isdigit():
        raise DataError(f"{path}:1: expected the number of images on the first line, then attribute names")
    count, names = int(rows[0][1][0]), rows[1][1]
    table: dict[str, dict[str, bool]] = {}
    for line, fields in rows[2:]:
        if len(fields) != len(names) + 1:
            raise DataError(f"{path}:{line}: {len(fields) - 1} values for {len(names)} attributes")
        bad = [v for v in fields[1:] if v not in ("1", "-1", "0")]
        if bad:
            raise DataError(f"{path}:{line}: attribute values must be 1 or -1 (or 0), got {bad[:3]}")
        table[fields[0]] = {n: v == "1" for n, v in zip(names, fields[1:])}
    if len(table) != count:
        raise DataError(f"{path}: first line says {count} images, the file lists {len(table)}")
    return table


def _read_pairs_file(path: Path, what: str) -> dict[str, str]:
    """Two-column ``file value`` tables (identity_CelebA.txt, list_eval_partition.txt)."""
    out = {}
    for line, fields in _read_table(path):
        if len(fields) != 2:
            raise DataError(f"{path}:{line}: expected '<image file> <{what}>', got {' '.join(fields)!r}")
        out[fields[0]] = fields[1]
    return out


def _hq_to_original(root: Path) -> dict[str, str] | None:
    mapping = _first_existing(root, _HQ_MAPPING)
    if mapping is None:
        return None
    rows = _read_table(mapping)
    out = {}
    for line, fields in rows[1:]:  # header: idx orig_idx orig_file
        if len(fields) != 3 or not fields[0].isdigit():
            raise DataError(f"{mapping}:{line}: expected 'idx orig_idx orig_file', got {' '.join(fields)!r}")
        out[f"{int(fields[0])}.jpg"] = fields[2]
    return out


def load_celeba(
    root: str | Path, images: str | None = None, limit: int | None = None, seed: int | None = 0
) -> ImageSet:
    """CelebA (``img_align_celeba/``) or CelebA-HQ (``CelebA-HQ-img/``) from a user's folder.

    The image folder is ``images`` (relative to ``root``) or the first of the usual names found.
    Labels, each optional, read from ``root``: ``list_attr_celeba.txt`` (or CelebAMask-HQ's
    ``CelebAMask-HQ-attribute-anno.txt``) -> one boolean attribute per column plus
    ``gender`` from ``Male``; ``identity_CelebA.txt`` -> ``Record.identity`` (for CelebA-HQ through
    ``CelebA-HQ-to-CelebA-mapping.txt``); ``list_eval_partition.txt`` -> ``attributes["partition"]``
    (train/val/test). The images on disk define the set (a partial download is fine), but every
    image must have a row in each label file present.
    """
    root = dataset_root(root)
    folder = root / images if images else _first_existing(root, _CELEBA_IMAGE_DIRS)
    if folder is None or not folder.is_dir():
        raise DataError(f"{root}: no CelebA image folder ({images or ', '.join(_CELEBA_IMAGE_DIRS)})")
    files = _image_files(folder)
    if not files:
        raise DataError(f"{folder}: no image files")
    attr_file = _first_existing(root, _CELEBA_ATTR_FILES)
    attrs = read_celeba_attributes(attr_file) if attr_file else None
    id_file = root / "identity_CelebA.txt"
    identities = _read_pairs_file(id_file, "identity") if id_file.is_file() else None
    part_file = root / "list_eval_partition.txt"
    partitions = _read_pairs_file(part_file, "partition") if part_file.is_file() else None
    hq = _hq_to_original(root) if folder.name == "CelebA-HQ-img" else None

    def lookup(table: dict[str, str] | dict[str, dict[str, bool]] | None, source: Path, name: str, orig: bool):
        if table is None:
            return None
        label_name = hq.get(name, name) if orig and hq is not None else name
        try:
            return table[label_name]
        except KeyError:
            raise DataError(f"{source}: no row for image {label_name} ({folder / name})") from None

    records = []
    for p in files:
        attributes: dict[str, object] = {}
        row = lookup(attrs, attr_file, p.name, orig=False)  # type: ignore[arg-type]
        if row is not None:
            attributes.update(row)
            if "Male" in row:
                attributes["gender"] = "male" if row["Male"] else "female"
        part = lookup(partitions, part_file, p.name, orig=hq is not None)
        if part is not None:
            if part not in _PARTITIONS:
                raise DataError(f"{part_file}: partition of {p.name} must be 0, 1 or 2, got {part!r}")
            attributes["partition"] = _PARTITIONS[part]
        identity = lookup(identities, id_file, p.name, orig=hq is not None)
        records.append(Record(key=p.relative_to(root).as_posix(), path=p, identity=identity, attributes=attributes))
    return make_imageset(records, root.name, limit, seed)
