"""Example images for reports: the files an audit saved under ``<run>/examples/<target_id>/``.

By default every example is **redacted** before it is embedded: a release that fails its audit
still shows readable plates or faces, and a report must not publish them again. Redaction
pixelates the whole thumbnail into blocks of 1/:data:`REDACT_CELLS` of its longer side (a plate or
face becomes a few flat cells; the layout of the scene stays visible). ``embed=True`` embeds the
images as released, for internal use. Originals are never embedded: the run folder holds only
released images (``Audit`` saves the first anonymized images of each target), and the reports read
nothing else.

:func:`side_by_side` regroups the examples by index, so that a reader sees the same example (the
same position in every release) as each target released it, next to each other.
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

#: The form of the results table's ``target_id`` (a slug and a hash digest): a tampered table can
#: never name a folder outside ``<run>/examples``.
TARGET_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
#: Redaction cells along the longer side of a thumbnail.
REDACT_CELLS = 10
PER_TARGET = 4


@dataclass
class Example:
    """One embedded example image with its caption."""

    png: bytes
    caption: str
    redacted: bool
    label: str = ""
    note: str = ""

    @property
    def b64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


def redact(image: np.ndarray, cells: int = REDACT_CELLS) -> tuple[np.ndarray, int]:
    """Pixelate ``image`` (HWC uint8) into square blocks of ``ceil(max(h, w) / cells)`` pixels, each
    the mean colour of its pixels; returns the image and the block size."""
    h, w = image.shape[:2]
    block = max(1, math.ceil(max(h, w) / cells))
    out = image.astype(np.float64).copy()
    for y in range(0, h, block):
        for x in range(0, w, block):
            cell = out[y:y + block, x:x + block]
            cell[...] = cell.reshape(-1, cell.shape[-1]).mean(axis=0) if cell.ndim == 3 else cell.mean()
    return np.rint(out).astype(np.uint8), block


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def target_examples(output: Path | None, table: pd.DataFrame, order: list[str], embed: bool = False) -> list[dict]:
    """Per target (in ``order``, by label), up to :data:`PER_TARGET` captioned examples.

    Returns ``[{"label": ..., "examples": [Example, ...]}]`` for the targets that have example files.
    """
    if output is None or "target_id" not in table.columns:
        return []
    ids = table.dropna(subset=["target_id"]).drop_duplicates("target_label").set_index("target_label")["target_id"]
    shown = []
    for label in order:
        target_id = str(ids.get(label, ""))
        folder = output / "examples" / target_id
        if not TARGET_ID.fullmatch(target_id) or not folder.is_dir():
            continue
        pics = sorted(folder.glob("*.png"))[:PER_TARGET]
        examples = []
        for i, path in enumerate(pics, 1):
            if embed:
                examples.append(
                    Example(path.read_bytes(), f"{label}: example {i} as released", False, label, "as released")
                )
                continue
            with Image.open(path) as im:
                image, block = redact(np.asarray(im.convert("RGB")))
            note = f"redacted ({block}-px blocks)"
            examples.append(Example(_png(image), f"{label}: example {i}, {note}", True, label, note))
        if examples:
            shown.append({"label": label, "examples": examples})
    return shown


def side_by_side(shown: list[dict]) -> list[dict]:
    """The examples of :func:`target_examples` by index: ``[{"index": 1, "examples": [Example, ...]}]``,
    each row holding example ``index`` of every target that has one, in target order."""
    rows = max((len(t["examples"]) for t in shown), default=0)
    return [
        {"index": i + 1, "examples": [t["examples"][i] for t in shown if i < len(t["examples"])]} for i in range(rows)
    ]
