"""Loaders for licence-plate data sets on disk: labelled folders, OpenALPR scenes, Pascal-VOC sets.

Every loader returns a lazy, path-based :class:`ImageSet` (pixels are read on access through the
safe reader) whose keys are the image paths relative to the data set's root folder, written with
``/`` (the keys :meth:`ImageSet.from_folder` gives the same folder). Input is validated while
loading: a problem raises :class:`DataError` naming the file (and line) and what is wrong.

``limit`` keeps ``limit`` images for quick runs: chosen at random with ``seed`` (kept in file order),
or the first ``limit`` in file order when ``seed`` is ``None``.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataError
from .imageset import Box, ImageSet, Record
from .io import IMAGE_SUFFIXES

#: Columns of a labels CSV with a fixed meaning; every other column becomes an attribute.
BOX_COLUMNS = ("x", "y", "w", "h")


# -- shared helpers -------------------------------------------------------------------------------
def dataset_root(root: str | Path) -> Path:
    """``root`` as a ``Path``, or a :class:`DataError` when it is not an existing folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: data set folder does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: is a file, expected the data set's folder")
    return path


def select(records: Sequence[Record], limit: int | None, seed: int | None) -> list[Record]:
    """At most ``limit`` records: a seeded random choice kept in order, or the first ones."""
    records = list(records)
    if limit is None:
        return records
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise DataError(f"limit must be a non-negative integer or None, got {limit!r}")
    if limit >= len(records):
        return records
    if seed is None:
        return records[:limit]
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=int(limit), replace=False))
    return [records[i] for i in keep]


def make_imageset(records: Sequence[Record], name: str, limit: int | None, seed: int | None) -> ImageSet:
    """A lazy ImageSet of the selected records (an empty selection is an error)."""
    chosen = select(records, limit, seed)
    if not chosen:
        raise DataError(f"data set '{name}' has no images")
    return ImageSet(chosen, name=name)


def relative_key(root: Path, rel: str, where: str) -> tuple[str, Path]:
    """Validate an image path written in a label file; returns ``(key, absolute path)``.

    Paths must be relative to ``root`` and stay inside it (keys are also output file names).
    """
    text = rel.strip().replace("\\", "/")
    if not text:
        raise DataError(f"{where}: empty image path")
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts:
        raise DataError(f"{where}: image path '{rel}' must be relative to {root} and stay inside it")
    if pure.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"{where}: '{rel}' is not an image file name ({', '.join(IMAGE_SUFFIXES)})")
    path = root / pure
    if not path.is_file():
        raise DataError(f"{where}: image '{rel}' not found (looked for {path})")
    return pure.as_posix(), path


def image_size(path: Path, where: str) -> tuple[int, int]:
    """``(width, height)`` from the image header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as exc:  # noqa: BLE001 - any decoder failure: report the file
        raise DataError(f"{where}: cannot read the size of image {path}: {exc}") from None


def _int(value: str, what: str, where: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: {what} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number != round(number):
        raise DataError(f"{where}: {what} must be a whole number of pixels, got {value!r}")
    return int(round(number))


def _check_box(box: Box, size: tuple[int, int], where: str) -> Box:
    if box.w <= 0 or box.h <= 0:
        raise DataError(f"{where}: box {box.x},{box.y},{box.w},{box.h} has no area (width and height must be > 0)")
    width, height = size
    if box.x < 0 or box.y < 0 or box.x + box.w > width or box.y + box.h > height:
        raise DataError(
            f"{where}: box x={box.x} y={box.y} w={box.w} h={box.h} is not inside the {width}x{height} image"
        )
    return box


# -- labelled folder (CSV) ------------------------------------------------------------------------
def read_labels_csv(root: Path, labels: Path) -> list[Record]:
    """Parse a labels CSV (see :func:`load_labeled_folder`) into records."""
    if not labels.is_file():
        raise DataError(f"{labels}: labels file not found")
    try:
        handle = labels.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"{labels}: cannot be read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            rows = [(reader.line_num, row) for row in reader]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{labels}:{reader.line_num + 1}: not valid UTF-8 CSV: {exc}") from None
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{labels}: empty labels file (expected a header line with a 'path' column)")
    header = [c.strip() for c in rows[0][1]]
    if "path" not in header:
        raise DataError(f"{labels}:{rows[0][0]}: header {header} has no 'path' column")
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup or "" in header:
        raise DataError(f"{labels}:{rows[0][0]}: header has duplicate or empty column names {dup or ['']}")
    box_cols = [c for c in BOX_COLUMNS if c in header]
    if box_cols and len(box_cols) != 4:
        raise DataError(f"{labels}:{rows[0][0]}: box columns need all of x,y,w,h, found only {box_cols}")
    records: list[Record] = []
    seen: dict[str, int] = {}
    for line, row in rows[1:]:
        where = f"{labels}:{line}"
        if len(row) != len(header):
            raise DataError(f"{where}: {len(row)} fields, the header has {len(header)} ({','.join(header)})")
        cells = {c: v.strip() for c, v in zip(header, row)}
        key, path = relative_key(root, cells["path"], where)
        if key in seen:
            raise DataError(f"{where}: image '{key}' is listed twice (first on line {seen[key]})")
        seen[key] = line
        boxes: tuple[Box, ...] = ()
        if box_cols and any(cells[c] for c in BOX_COLUMNS):
            x, y, w, h = (_int(cells[c], c, where) for c in BOX_COLUMNS)
            boxes = (_check_box(Box(x, y, w, h), image_size(path, where), where),)
        attributes: dict[str, Any] = {
            c: (v or None) for c, v in cells.items() if c not in ("path", "identity", "text", *BOX_COLUMNS)
        }
        records.append(
            Record(
                key=key,
                path=path,
                identity=cells.get("identity") or None,
                text=cells.get("text") or None,
                boxes=boxes,
                attributes=attributes,
            )
        )
    return records


def load_labeled_folder(
    root: str | Path,
    labels: str | Path | None = "labels.csv",
    limit: int | None = None,
    seed: int | None = 0,
) -> ImageSet:
    """Images listed in a labels CSV (the format of ``../shared/data/plates_us``).

    The CSV (UTF-8, header line) has a ``path`` column (image path relative to ``root``) and
    optional columns ``identity`` -> ``Record.identity``, ``text`` -> ``Record.text`` (plate text),
    ``x,y,w,h`` -> one box, and any others (``region``, ``gender``, ...) -> ``Record.attributes``
    as strings (empty cells become ``None``). ``labels`` is relative to ``root`` unless absolute;
    ``labels=None`` loads every image under ``root`` without labels.
    """
    root = dataset_root(root)
    if labels is None:
        records = ImageSet.from_folder(root).records
    else:
        labels_path = Path(labels) if Path(labels).is_absolute() else root / labels
        records = read_labels_csv(root, labels_path)
    return make_imageset(records, root.name, limit, seed)


# -- OpenALPR end-to-end benchmark format -----------------------------------------------------------
def _parse_openalpr_line(line: str, where: str) -> tuple[str, Box, str]:
    fields = line.split("\t") if "\t" in line else line.split()
    if len(fields) != 6:
        raise DataError(f"{where}: expected 6 TAB-separated fields NAME x y w h TEXT, got {len(fields)}: {line!r}")
    name, *coords, text = (f.strip() for f in fields)
    x, y, w, h = (_int(v, c, where) for v, c in zip(coords, BOX_COLUMNS))
    if not text:
        raise DataError(f"{where}: empty plate text")
    return name, Box(x, y, w, h, "plate"), text


def load_openalpr_scenes(root: str | Path, limit: int | None = None, seed: int | None = 0) -> ImageSet:
    """Scenes annotated in the OpenALPR benchmark format (``../shared/data/scenes_eu``).

    Each ``NAME.txt`` (searched recursively) has one line per plate,
    ``NAME.jpg<TAB>x<TAB>y<TAB>w<TAB>h<TAB>TEXT``, with the image next to it. Boxes must lie inside
    the image. ``Record.boxes`` holds the plate boxes (label ``"plate"``) and
    ``attributes["plate_texts"]`` their texts in the same order; ``Record.text`` is the text when the
    image has exactly one plate (else ``None``). Images without an annotation file are not loaded.
    """
    root = dataset_root(root)
    txts = sorted(root.rglob("*.txt"))
    if not txts:
        raise DataError(f"{root}: no OpenALPR annotation files (NAME.txt) found")
    plates: dict[str, tuple[Path, list[tuple[Box, str]]]] = {}
    for txt in txts:
        try:
            lines = txt.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{txt}: cannot be read as UTF-8 text: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{txt}:{number}"
            name, box, text = _parse_openalpr_line(line, where)
            rel = (txt.parent / name).relative_to(root).as_posix()
            key, path = relative_key(root, rel, where)
            _check_box(box, image_size(path, where), where)
            plates.setdefault(key, (path, []))[1].append((box, text))
    records = [
        Record(
            key=key,
            path=path,
            boxes=tuple(b for b, _ in found),
            text=found[0][1] if len(found) == 1 else None,
            attributes={"plate_texts": [t for _, t in found]},
        )
        for key, (path, found) in sorted(plates.items())
    ]
    return make_imageset(records, root.name, limit, seed)


# -- Pascal VOC (e.g. the Kaggle Indian number-plate set) -------------------------------------------
def _voc_text(node: ET.Element, tag: str, where: str, required: bool = True) -> str | None:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise DataError(f"{where}: missing <{tag}>")
        return None
    return child.text.strip()


def _voc_image(xml: Path, root: Path, filename: str | None, path_hint: str | None) -> Path:
    names = [n for n in (filename, PurePosixPath((path_hint or "").replace("\\", "/")).name) if n]
    candidates = [d / n for n in names for d in (xml.parent, xml.parent.parent / "images", root, root / "images")]
    candidates += [d / (xml.stem + s) for d in (xml.parent, xml.parent.parent / "images") for s in IMAGE_SUFFIXES]
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(
        f"{xml}: its image {filename or xml.stem!r} was not found next to it, in an 'images' folder or in {root}"
    )


def _voc_box(obj: ET.Element, size: tuple[int, int], where: str) -> Box:
    bnd = obj.find("bndbox")
    if bnd is None:
        raise DataError(f"{where}: <object> without <bndbox>")
    vals = {}
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        raw = _voc_text(bnd, tag, where)
        try:
            vals[tag] = float(raw)  # type: ignore[arg-type]
        except ValueError:
            raise DataError(f"{where}: <{tag}> must be a number, got {raw!r}") from None
    if vals["xmax"] <= vals["xmin"] or vals["ymax"] <= vals["ymin"]:
        raise DataError(f"{where}: empty or inverted box {vals}")
    x0, y0 = int(round(vals["xmin"])), int(round(vals["ymin"]))
    x1, y1 = int(round(vals["xmax"])), int(round(vals["ymax"]))
    box = Box(x0, y0, x1 - x0, y1 - y0, _voc_text(obj, "name", where) or "").clip(*size)
    if box.area == 0:
        raise DataError(f"{where}: box {vals} lies outside the {size[0]}x{size[1]} image")
    return box


def read_voc_annotation(xml: Path, root: Path, classes: Iterable[str] | None = None) -> tuple[Path, list[Box]]:
    """Image path and object boxes of one Pascal-VOC XML file (boxes labelled with ``<name>``)."""
    try:
        tree = ET.parse(xml)
    except ET.ParseError as exc:
        raise DataError(f"{xml}: malformed XML ({exc})") from None
    except OSError as exc:
        raise DataError(f"{xml}: cannot be read: {exc.strerror or exc}") from None
    ann = tree.getroot()
    if ann.tag != "annotation":
        raise DataError(f"{xml}: root element is <{ann.tag}>, expected Pascal-VOC <annotation>")
    image = _voc_image(xml, root, _voc_text(ann, "filename", str(xml), False), _voc_text(ann, "path", str(xml), False))
    size_node = ann.find("size")
    size = None
    if size_node is not None:
        w, h = _voc_text(size_node, "width", str(xml), False), _voc_text(size_node, "height", str(xml), False)
        if w and h and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0:
            size = (int(w), int(h))
    size = size or image_size(image, str(xml))
    wanted = None if classes is None else set(classes)
    boxes = []
    for k, obj in enumerate(ann.iter("object"), start=1):
        where = f"{xml}: object {k}"
        name = _voc_text(obj, "name", where)
        if wanted is None or name in wanted:
            boxes.append(_voc_box(obj, size, where))
    return image, boxes


def load_pascal_voc(
    root: str | Path,
    limit: int | None = None,
    seed: int | None = 0,
    classes: Sequence[str] | None = None,
    text_from_name: bool = False,
) -> ImageSet:
    """A Pascal-VOC annotated set, such as the public Kaggle Indian number-plate data.

    Every ``*.xml`` under ``root`` is one image's ``<annotation>``; the image is found from
    ``<filename>`` (or ``<path>``, or the XML's own name) next to the XML, in a sibling ``images``
    folder or in ``root``. Each ``<object>`` gives a box ``x=xmin, y=ymin, w=xmax-xmin,
    h=ymax-ymin`` labelled with its ``<name>``, clipped to the image (a box entirely outside it is
    an error). ``classes`` keeps only objects with those names. With ``text_from_name=True`` the
    object names are plate texts: ``Record.text`` is set when an image has exactly one object.
    """
    root = dataset_root(root)
    xmls = sorted(root.rglob("*.xml"))
    if not xmls:
        raise DataError(f"{root}: no Pascal-VOC annotation files (*.xml) found")
    records, owner = [], {}
    for xml in xmls:
        image, boxes = read_voc_annotation(xml, root, classes)
        try:
            key = image.relative_to(root).as_posix()
        except ValueError:
            raise DataError(f"{xml}: its image {image} is outside the data set folder {root}") from None
        if key in owner:
            raise DataError(f"{xml}: image '{key}' is already annotated by {owner[key]}")
        owner[key] = xml
        text = boxes[0].label if text_from_name and len(boxes) == 1 else None
        records.append(Record(key=key, path=image, boxes=tuple(boxes), text=text, attributes={"annotation": xml.name}))
    return make_imageset(records, root.name, limit, seed)
