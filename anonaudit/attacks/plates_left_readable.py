"""Plates left readable: which plates in full scenes did the anonymizer leave readable?

The plate counterpart of :mod:`~anonaudit.attacks.detector_miss`. A plate anonymizer only protects
the plates its own detector (or its annotator) found. This attack finds the plates in the
*originals* by itself, without their boxes: RapidOCR's DB text detector gives text regions,
regions on one line are merged (:func:`~anonaudit.models.ocr.rapid.plate_boxes`, no margin: the
detector's regions already reach past the characters), lines at least ``min_aspect`` times as wide
as high are read by the recogniser (A-Z0-9), and a line is a **found plate** when its reading fits
``pattern`` (default :data:`PLATE_PATTERN`: 4 to 10 letters and digits with at least one digit,
which covers the standard EU and US formats; vanity plates without a digit and two-line plates are
not found). Each found plate is then read in the release at the same place with the same
recogniser: it is **left readable** when the release reads exactly what the original read there.

Metrics (higher = more leakage):

- ``plates_left_readable``: share of found plates read exactly in the release (Wilson 95% CI;
  original 1, every found plate reads on the original by construction; baseline: the
  no-information guess of :class:`~anonaudit.attacks.ocr.NoInformationGuess`, fitted on the
  auxiliary plate texts when there are any);
- ``char_accuracy``: mean ``max(0, 1 - CER)`` of the release's reading against the original's
  (percentile-bootstrap 95% CI; original 1; the same baseline guess).

When every original carries boxes (a labelled scene set), the finder itself is measured against
them, as a property of the attack (no chance baseline, so no risk): a found plate *matches* an
annotated box when their intersection over union is at least ``iou`` (one-to-one, greedily by
IoU); ``finder_recall`` is the share of annotated boxes matched and ``finder_precision`` the share
of found plates that match one (both Wilson 95% CIs). The boxes are used for nothing else.

Every plate left readable is a finding naming its file and where the plate is; the text read is its
example (written only with ``--embed-examples``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.imageset import Box, ImageSet, Record, Release
from ..errors import ConfigError, MismatchError
from ..models.ocr import Reading
from ..models.ocr.rapid import RapidOCREngine, plate_boxes
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate, mean_estimate, proportion
from .base import Attack, AttackMetric, AttackResult, FileFinding
from .ocr import TEXT_WITHHELD, NoInformationGuess, fitted_guess
from .text import char_accuracy, normalize_plate

#: Default plate pattern (after normalisation to A-Z0-9): 4 to 10 characters, at least one digit.
PLATE_PATTERN = r"^(?=[A-Z0-9]*[0-9])[A-Z0-9]{4,10}$"

DETAIL_COLUMNS = [
    "key", "x", "y", "w", "h", "read_original", "conf_original", "read_release", "conf_release", "left_readable",
    "char_accuracy", "matched_iou",
]  # fmt: skip


@dataclass(frozen=True)
class FoundPlate:
    """A plate found in one original: where it is and what the recogniser read there."""

    box: Box
    text: str
    confidence: float


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    iw = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    ih = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0, iw) * max(0, ih)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def match_boxes(found: Sequence[Box], truth: Sequence[Box], threshold: float) -> dict[int, tuple[int, float]]:
    """One-to-one matches ``{found index: (truth index, IoU)}`` with IoU >= ``threshold``, the pairs taken
    greedily by decreasing IoU."""
    pairs = sorted(
        ((box_iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), key=lambda p: -p[0]
    )
    matched: dict[int, tuple[int, float]] = {}
    used: set[int] = set()
    for value, i, j in pairs:
        if value < threshold:
            break
        if i not in matched and j not in used:
            matched[i] = (j, value)
            used.add(j)
    return matched


def annotated_texts(record: Record) -> list[str] | None:
    """The annotated text of each of ``record``'s boxes (``attributes["plate_texts"]``, or ``text`` for a
    record with one box); None when they are not known."""
    texts = record.attributes.get("plate_texts")
    if isinstance(texts, (list, tuple)) and len(texts) == len(record.boxes):
        return [str(t) for t in texts]
    return [record.text] if record.text and len(record.boxes) == 1 else None


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``box`` (already clipped to the image)."""
    ys, xs = box.slices
    return np.ascontiguousarray(image[ys, xs])


def find_plates(
    engine: RapidOCREngine, images: Sequence[np.ndarray], pattern: str, min_aspect: float, batch_size: int = 32
) -> list[list[FoundPlate]]:
    """The plates in each image: plate-shaped text lines whose normalised reading fits ``pattern``."""
    regex = re.compile(pattern)
    regions = engine.detect_arrays(images)
    candidates: list[list[Box]] = []
    for image, found in zip(images, regions):
        h, w = image.shape[:2]
        boxes = (b.clip(w, h) for b in plate_boxes(found, min_aspect=min_aspect, margin=0.0))
        candidates.append([b for b in boxes if b.w > 1 and b.h > 1])
    crops = [crop(image, b) for image, boxes in zip(images, candidates) for b in boxes]
    readings = iter(engine.read_arrays(crops, batch_size) if crops else [])
    out = []
    for boxes in candidates:
        plates = []
        for box in boxes:
            r = next(readings)
            text = normalize_plate(r.text)
            if regex.fullmatch(text):
                plates.append(FoundPlate(box, text, r.confidence))
        out.append(plates)
    return out


@ATTACKS.register("plates_left_readable")
class PlatesLeftReadable(Attack):
    """Share of plates found in the original scenes (without their boxes) that OCR still reads in the
    release at the same place (module doc).

    Args:
        pattern: regular expression a reading (normalised to A-Z0-9) must match to be a plate.
        min_aspect: a text line is plate-shaped when at least this many times as wide as high.
        iou: intersection over union at which a found plate matches an annotated box (finder metrics).
        batch_size: crops per recogniser call.
        seed: seed of the no-information baseline's Monte Carlo guesses.
    """

    criteria = ("singling_out", "linkability")  # a plate read back names one vehicle, linkable to registers
    attacker_holds = ("release", "ocr_engine: the offline text detector and recogniser")
    folder_audit = {"plates": {}}  # anonaudit audit --kind plates; needs no label (boxes, if given, test the finder)

    param_alternatives = {"pattern": (r"^[A-Z]{2}[0-9]{2}[A-Z]{1,3}[0-9]{4}$",)}

    def __init__(
        self, pattern: str = PLATE_PATTERN, min_aspect: float = 1.5, iou: float = 0.3, batch_size: int = 32,
        seed: int = 0,
    ):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"plates_left_readable: pattern {pattern!r} is not a regular expression: {exc}") from None
        check_range(self, "min_aspect", min_aspect, gt=0, finite=True)
        check_range(self, "iou", iou, gt=0, le=1)
        check_range(self, "batch_size", batch_size, ge=1, integer=True)
        self.pattern = pattern
        self.min_aspect = min_aspect
        self.iou = iou
        self.batch_size = batch_size
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> PlatesLeftReadable:
        """Learn the no-information guess from the auxiliary set's plate texts (if it has any)."""
        texts = auxiliary.texts if auxiliary is not None else []
        self.guesser_ = NoInformationGuess.fit(texts, seed=self.seed)
        return self

    def _pairs(self, release: Release) -> list[tuple[np.ndarray, np.ndarray]]:
        pairs = [release.pair(i) for i in range(len(release))]
        for key, (original, anonymized) in zip(release.keys, pairs):
            if original.shape[:2] != anonymized.shape[:2]:
                raise MismatchError(
                    f"plates_left_readable reads each plate at its place in the original: '{key}' is "
                    f"{original.shape[1]}x{original.shape[0]} in the originals but {anonymized.shape[1]}x"
                    f"{anonymized.shape[0]} in the release"
                )
        return pairs

    def run(self, release: Release) -> AttackResult:
        engine = RapidOCREngine(allowlist="plates")
        pairs = self._pairs(release)
        found = find_plates(engine, [o for o, _ in pairs], self.pattern, self.min_aspect, self.batch_size)
        crops = [crop(anonymized, p.box) for (_, anonymized), plates in zip(pairs, found) for p in plates]
        released = iter(engine.read_arrays(crops, self.batch_size) if crops else [])
        details = self._details(release, found, released)
        g = fitted_guess(self)
        truths = details["read_original"].tolist()
        base = f"baseline: {g.describe()}"
        whole = Estimate(1.0, 1.0, 1.0, len(details), "every found plate reads on its original as found")
        metrics = [
            AttackMetric(
                "plates_left_readable",
                proportion(details["left_readable"].to_numpy(bool), "share of found plates, Wilson 95% CI"),
                whole,
                g.exact(truths) if truths else float("nan"),
                f"plates found in the originals (RapidOCR text lines fitting {self.pattern}) that OCR reads exactly "
                f"in the release at the same place; {base}",
            ),
            AttackMetric(
                "char_accuracy",
                mean_estimate(details["char_accuracy"].to_numpy(float), "mean, percentile bootstrap 95% CI"),
                whole,
                g.char_accuracy(truths) if truths else float("nan"),
                f"mean max(0, 1 - CER) of the release's reading against the original's, per found plate; {base}",
            ),
        ]
        notes = [(
            f"{len(details)} plates (RapidOCR text lines >= {self.min_aspect:g}:1 whose reading fits {self.pattern}) "
            f"found in {details['key'].nunique()} of {len(release)} originals without their boxes; "
            f"{int(details['left_readable'].sum())} read exactly in the release"
        )]
        finder, finder_notes = self._finder(release.originals, found, details)
        metrics += finder
        notes += finder_notes
        findings = [
            FileFinding(
                r.key, "plate_left_readable",
                f"plate at x={r.x} y={r.y} w={r.w} h={r.h} read in the release as in the original ({TEXT_WITHHELD})",
                ("plates_left_readable",), example=r.read_release,
            )
            for r in details.itertuples() if r.left_readable
        ]  # fmt: skip
        return AttackResult(self.name, metrics, details, notes, findings)

    @staticmethod
    def _details(release: Release, found: list[list[FoundPlate]], released: Iterator[Reading]) -> pd.DataFrame:
        """One row per found plate: its box, both readings and whether the release reads as the original."""
        rows = []
        for key, plates in zip(release.keys, found):
            for p in plates:
                r = next(released)
                read = normalize_plate(r.text)
                rows.append({
                    "key": key, "x": p.box.x, "y": p.box.y, "w": p.box.w, "h": p.box.h, "read_original": p.text,
                    "conf_original": p.confidence, "read_release": read, "conf_release": r.confidence,
                    "left_readable": read == p.text, "char_accuracy": char_accuracy(p.text, read),
                    "matched_iou": float("nan"),
                })  # fmt: skip
        return pd.DataFrame(rows, columns=DETAIL_COLUMNS)

    def _finder(
        self, originals: ImageSet, found: list[list[FoundPlate]], details: pd.DataFrame
    ) -> tuple[list[AttackMetric], list[str]]:
        """Recall and precision of the finder against the originals' boxes (when every original has
        some); fills ``details["matched_iou"]``."""
        records = originals.records
        if not records or not all(r.boxes for r in records):
            return [], ["the originals carry no plate boxes (or not every one does): the finder is not measured"]
        recalled: list[bool] = []
        precise: list[bool] = []
        read_as_annotated: list[bool] = []
        row = 0
        for record, plates in zip(records, found):
            matches = match_boxes([p.box for p in plates], record.boxes, self.iou)
            recalled += [j in {m for m, _ in matches.values()} for j in range(len(record.boxes))]
            precise += [i in matches for i in range(len(plates))]
            texts = annotated_texts(record)
            for i, (j, value) in matches.items():
                details.loc[row + i, "matched_iou"] = value
                if texts is not None:
                    read_as_annotated.append(plates[i].text == normalize_plate(texts[j]))
            row += len(plates)
        how = f"matched one-to-one at IoU >= {self.iou:g}, Wilson 95% CI"
        metrics = [
            AttackMetric("finder_recall", proportion(recalled, f"share of annotated plate boxes found, {how}"), None,
                         float("nan"), "the plate finder's recall on the originals against their annotated boxes "
                         "(a property of the attack, not a leak)"),
            AttackMetric("finder_precision", proportion(precise, f"share of found plates on an annotated box, {how}"),
                         None, float("nan"), "the plate finder's precision on the originals against their annotated "
                         "boxes (a property of the attack, not a leak)"),
        ]  # fmt: skip
        notes = [(
            f"finder against the originals' boxes: {sum(recalled)} of {len(recalled)} annotated plates found, "
            f"{len(precise) - sum(precise)} of {len(precise)} found plates on no annotated box (IoU >= {self.iou:g})"
        )]
        if read_as_annotated:
            notes.append(f"{sum(read_as_annotated)} of {len(read_as_annotated)} found plates on an annotated box read "
                         "exactly as annotated on the original")
        return metrics, notes
