"""Memorisation of training plates: does a generative plate anonymizer release copies of the plates it learnt from?

``PlateMemorization`` ("plate_memorization") is a white-box check of trained targets (paper 000
claims its WGAN does not memorise its ~1,200 training plates). It needs the release's
``training_keys`` (the keys of the target's training images) and those images, found among the
auxiliary images given to ``fit`` or the release's originals; without them it raises
:class:`~anonaudit.errors.DataError` with the reason. Every plate is compared as a grey crop of
its box (the whole image for a crop without boxes) resized to ``size`` (width, height), scaled to [0, 1].

- ``near_copy_of_training_plate``: share of generated plates whose mean absolute pixel distance to
  the nearest training plate is below the ``quantile`` of the same distance for real plates the
  target never saw (the release's originals that are not training images). Baseline: the share of
  those unseen plates below the threshold (about ``quantile`` by construction); upper bound
  ("original"): the training plates themselves (distance 0), which a generator that memorises
  would release.
- ``ocr_matches_training_plate``: share of generated plates whose OCR reading (normalised, non-empty)
  is the text of a training plate. Baseline: the same for the unseen real plates (coincidences);
  upper bound: the training plates' own readings.

Wilson 95% CIs; per-plate details (nearest training key, distance, reading) in the result.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from ..data.imageset import Box, ImageSet, Release
from ..errors import DataError
from ..models.ocr import check_engine, create_engine
from ..params import check_range
from ..registry import ATTACKS
from ..stats import proportion
from .base import Attack, AttackMetric, AttackResult
from .text import normalize_plate


def plate_crops(
    images: ImageSet, records=None, size: tuple[int, int] = (96, 32)
) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """``(colour crops, grey crops (n, h*w) in [0, 1], keys)``: one per plate box of every image
    (``records`` say where the plates are; default the images' own)."""
    recs = list(records) if records is not None else images.records
    colour, grey, keys = [], [], []
    for i, rec in enumerate(recs):
        image = images[i]
        h, w = image.shape[:2]
        boxes = [b.clip(w, h) for b in rec.boxes] or [Box(0, 0, w, h)]
        for b in boxes:
            if b.area == 0:
                continue
            crop = image[b.slices]
            colour.append(crop)
            g = cv2.cvtColor(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
            grey.append(g.astype(np.float32).ravel() / 255.0)
            keys.append(rec.key)
    return colour, np.stack(grey) if grey else np.zeros((0, size[0] * size[1]), np.float32), keys


def nearest(queries: np.ndarray, references: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of its nearest reference row and the mean absolute distance to it."""
    idx = np.empty(len(queries), np.int64)
    dist = np.empty(len(queries), np.float64)
    for s in range(0, len(queries), chunk):
        d = np.abs(queries[s : s + chunk, None, :] - references[None, :, :]).mean(axis=2)
        idx[s : s + chunk] = d.argmin(axis=1)
        dist[s : s + chunk] = d.min(axis=1)
    return idx, dist


@ATTACKS.register("plate_memorization")
class PlateMemorization(Attack):
    """Generated plates that copy a training plate (pixels or text): a white-box check of trained targets."""

    criteria = ("linkability",)
    attacker_holds = ("release", "training_set", "ocr_engine")
    needs = ("training_keys",)

    param_alternatives = {"engine": ("tesseract", "easyocr")}

    def __init__(
        self, engine: str = "rapidocr", size: tuple[int, int] = (96, 32), quantile: float = 0.05, batch_size: int = 32
    ):
        check_range(self, "quantile", quantile, gt=0, lt=1)
        check_engine(engine)
        self.engine = engine
        self.size = size
        self.quantile = quantile
        self.batch_size = batch_size

    def fit(self, auxiliary: ImageSet | None = None) -> PlateMemorization:
        self.auxiliary_ = auxiliary
        return self

    def _training_set(self, release: Release) -> ImageSet:
        keys = release.training_keys
        if not keys:

            raise DataError("plate_memorization needs a trained target: the release carries no training keys "
                            "(Release.training_keys; classical and external targets have none)")
        wanted = set(keys)
        for pool in (getattr(self, "auxiliary_", None), release.originals):
            if pool is not None:
                idx = [i for i, k in enumerate(pool.keys) if k in wanted]
                if idx:
                    return pool.subset(idx)
        raise DataError(
            f"plate_memorization: none of the target's {len(wanted)} training images is among the "
            "auxiliary images or the originals (a checkpoint trained elsewhere: audit it on its training data)"
        )

    def run(self, release: Release) -> AttackResult:
        size = tuple(int(v) for v in self.size)
        training = self._training_set(release)
        trained = set(training.keys)
        unseen = [i for i, k in enumerate(release.keys) if k not in trained]
        train_colour, train_grey, train_keys = plate_crops(training, size=size)
        gen_colour, gen_grey, gen_keys = plate_crops(release.anonymized, release.originals.records, size)
        if not unseen:
            raise DataError(
                "plate_memorization: every evaluated image is a training image; no unseen plates for the baseline"
            )
        held = release.originals.subset(unseen)
        held_colour, held_grey, _ = plate_crops(held, size=size)

        gen_idx, gen_dist = nearest(gen_grey, train_grey)
        _, held_dist = nearest(held_grey, train_grey)
        _, train_dist = nearest(train_grey, train_grey)  # each training plate's nearest is itself: 0
        threshold = float(np.quantile(held_dist, float(self.quantile)))

        engine = create_engine(self.engine)
        texts = {normalize_plate(t) for t in training.texts if t} - {""}

        def matches(crops: list[np.ndarray]) -> tuple[list[bool], list[str]]:
            readings = [normalize_plate(r.text) for r in engine.read_arrays(crops, int(self.batch_size))]
            return [bool(r) and r in texts for r in readings], readings

        gen_match, gen_read = matches(gen_colour)
        held_match, _ = matches(held_colour)
        train_match, _ = matches(train_colour)
        method = "proportion of plates, Wilson 95% CI"
        metrics = [
            AttackMetric(
                "near_copy_of_training_plate",
                proportion(gen_dist < threshold, method),
                proportion(train_dist < threshold, method),
                float(np.mean(held_dist < threshold)),
                f"generated plates closer to a training plate than the {self.quantile:g} quantile of unseen "
                "real plates "
                f"(mean absolute grey distance < {threshold:.4f} at {size[0]}x{size[1]})",
            ),
        ]
        notes = [
            f"{len(train_keys)} training plates, {len(held_dist)} unseen real plates, {len(gen_dist)} generated plates"
        ]
        if texts:
            metrics.append(AttackMetric(
                "ocr_matches_training_plate", proportion(gen_match, method), proportion(train_match, method),
                float(np.mean(held_match)), f"generated plates whose {self.engine} reading is a training plate's text",
            ))
        else:
            notes.append("the training images have no plate text: no OCR string match")
        details = pd.DataFrame({
            "key": gen_keys, "nearest_training_key": [train_keys[j] for j in gen_idx], "distance": gen_dist,
            "reading": gen_read, "matches_training_text": gen_match,
        })
        return AttackResult(self.name, metrics, details, notes)
