"""Folders of synthetic plates as a data steward holds them: PNG originals with a labels CSV
(``path,text``) and a release folder whose files each test writes."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from anonaudit.datasets import synthetic_plates

#: Writes released file ``i`` of ``plate`` (its original pixels) into the release folder.
WriteReleased = Callable[[int, np.ndarray, Path], None]


def write_plates(root: Path, n: int, released: WriteReleased, originals: str = "orig", release: str = "rel",
                 seed: int = 5) -> tuple[Path, Path, Path, list[str]]:
    """``n`` synthetic plates as ``root/originals/car{i}.png`` with ``root/labels.csv``, and
    ``released(i, plate, release folder)`` called for each; returns the two folders, the labels
    CSV and the plate texts."""
    plates = synthetic_plates(n=n, seed=seed)
    orig, rel = root / originals, root / release
    orig.mkdir()
    rel.mkdir()
    labels = root / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text"])
        for i in range(n):
            Image.fromarray(plates[i]).save(orig / f"car{i}.png")
            w.writerow([f"car{i}.png", plates.texts[i]])
            released(i, plates[i], rel)
    return orig, rel, labels, list(plates.texts)
