"""Learned restoration, then OCR: undo the anonymization with a network trained by the attacker.

``RestoreThenOCR`` ("restore_then_ocr") is the learned de-anonymizer of pix2pix-style restorers and
SEBA's de-anonymizers, for plates. The attacker makes ``(anonymize(x), x)`` pairs from plates it
holds (synthetic plates it renders, ``synthetic`` of them, and the auxiliary real plates),
anonymized as the release was (the target's own method, the declared operator or a blind estimate:
:mod:`~anonaudit.attacks.mimic`), trains a small U-Net (:mod:`anonaudit.models.restorer`) to map the
anonymized plate crop back to the original, restores every released plate crop and reads it with
the suite's OCR engine (RapidOCR by default, as :class:`~anonaudit.attacks.ocr.OCRReread`). The
upper bound is the same engine on the originals.

Metrics, as ``ocr``'s and against the same no-information baseline: ``exact_match`` (Wilson 95%
CI, with the training cost in its extras: ``training_seconds``, ``training_steps``),
``char_accuracy`` (percentile bootstrap) and ``training_seconds`` (the cost, steps as its ``n``).
Training is seeded, budgeted and cached as the parrot recogniser's
(:mod:`~anonaudit.attacks.parrot_ocr`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..models.ocr import OCREngine, check_engine, create_engine, plate_crop
from ..models.ocr.base import PLATE_MARGIN
from ..models.restorer import Restorer, check_size, train_restorer
from ..models.small_nets import Budget, cache_key
from ..params import check_range
from ..registry import ATTACKS
from .base import Attack, AttackResult
from .mimic import TrainingPlates, training_plates
from .ocr import NoInformationGuess, fitted_guess, rate_metric, read_findings, score_readings, truths_of
from .parrot_ocr import check_learning_params, training_cost_metric, training_note


@ATTACKS.register("restore_then_ocr")
class RestoreThenOCR(Attack):
    """Restore released plates with a U-Net trained on anonymized plates, then OCR them (see module doc).

    Args:
        steps: most training steps (Adam, one-cycle schedule, L1 loss).
        max_seconds: most training seconds (``None``: the steps alone bound training).
        batch_size: plates per training step.
        lr: peak learning rate.
        synthetic: synthetic plates the attacker renders (0: only the auxiliary plates).
        synthetic_params: parameters of :func:`~anonaudit.data.synthetic_plates.synthetic_plates` for them.
        synthetic_seed: their seed (the attacker's own).
        auxiliary_share: share of each batch drawn from the auxiliary plates (``None``: uniform).
        size: (height, width) the restorer works at (multiples of ``2**depth``).
        width: U-Net channels at full resolution.
        depth: U-Net levels.
        engine: registered OCR engine reading the restored plates.
        engine_params: its parameters.
        margin: margin around the plate box restored and read (fraction of the box size).
        batch_size_ocr: crops per engine call.
        cache: keep the trained weights in the suite's cache and reuse them.
        seed: training seed, and the seed of the no-information baseline.
    """

    requires = ("text",)
    criteria = ("singling_out", "linkability")  # a plate read back names one vehicle, linkable to registers
    attacker_holds = ("release", "plate_boxes", "method", "plate_renderer", "auxiliary", "ocr_engine")
    attacker_trains = ("a U-Net restorer on synthetic and auxiliary plates anonymized by the method, paired with the "
                       "clear ones")
    test_params = {"steps": 2, "synthetic": 8, "size": [16, 64], "width": 4}
    param_alternatives = {"engine": ("tesseract", "easyocr")}

    def __init__(
        self,
        steps: int = 1500,
        max_seconds: float | None = None,
        batch_size: int = 16,
        lr: float = 2e-3,
        synthetic: int = 2000,
        synthetic_params: dict | None = None,
        synthetic_seed: int = 1000,
        auxiliary_share: float | None = None,
        size: Sequence[int] = (32, 128),
        width: int = 16,
        depth: int = 2,
        engine: str = "rapidocr",
        engine_params: dict | None = None,
        margin: float = PLATE_MARGIN,
        batch_size_ocr: int = 32,
        cache: bool = True,
        seed: int = 0,
    ):
        Budget(steps, max_seconds, batch_size, lr)  # raises ConfigError on a bad budget
        check_learning_params("restore_then_ocr", synthetic, synthetic_params, auxiliary_share, synthetic_seed)
        check_range(self, "width", width, ge=1, integer=True)
        check_range(self, "depth", depth, ge=1, integer=True)
        check_size(size, depth)
        check_engine(engine)
        check_range(self, "margin", margin, ge=0, lt=1)
        self.steps, self.max_seconds, self.batch_size, self.lr = steps, max_seconds, batch_size, lr
        self.synthetic, self.synthetic_params, self.synthetic_seed = synthetic, synthetic_params, synthetic_seed
        self.auxiliary_share = auxiliary_share
        self.size, self.width, self.depth = size, width, depth
        self.engine, self.engine_params = engine, engine_params
        self.margin, self.batch_size_ocr = margin, batch_size_ocr
        self.cache = cache
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> RestoreThenOCR:
        """Keep the auxiliary plates (trained on in :meth:`run`) and learn the no-information guess."""
        self.auxiliary_ = auxiliary
        self.guesser_ = NoInformationGuess.fit(auxiliary.texts if auxiliary is not None else [], seed=self.seed)
        return self

    def make_engine(self) -> OCREngine:
        return create_engine(self.engine, **(self.engine_params or {}))

    def train(self, release: Release) -> tuple[Restorer, TrainingPlates]:
        """The restorer trained for ``release`` (or loaded from the cache) and its training plates."""
        hw = check_size(self.size, self.depth)
        plates = training_plates(release, getattr(self, "auxiliary_", None), self.synthetic, self.synthetic_params,
                                 self.synthetic_seed, hw, self.margin)
        draw = plates.sampler(self.auxiliary_share)

        def pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
            idx = draw(rng, n)
            return plates.anonymized[idx], plates.clean[idx]

        key = cache_key(data=plates.fingerprint(), attack=self.name) if self.cache else None
        restorer = train_restorer(pairs, hw, self.steps, self.seed, batch_size=self.batch_size, lr=self.lr,
                                  max_seconds=self.max_seconds, width=self.width, depth=self.depth, cache_key=key)
        return restorer, plates

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        truths = truths_of(release.originals, self.name)
        restorer, plates = self.train(release)
        engine = self.make_engine()
        records = release.originals.records
        released = [plate_crop(release.anonymized[i], records[i], self.margin) for i in range(len(release))]
        restored = restorer.restore(released)
        rel = score_readings(truths, engine.read_arrays(restored, self.batch_size_ocr), 1, False)
        orig = score_readings(truths, engine.read(release.originals, self.batch_size_ocr, records, self.margin,
                                                  desc=f"{self.name} originals"), 1, False)
        g = fitted_guess(self)
        base = f"baseline: {g.describe()}"
        how = f"{engine.name} on plates restored by a U-Net trained on anonymized plates"
        exact = rate_metric("exact_match", rel["exact"], orig["exact"], g.exact(truths),
                            f"plates read exactly by {how}; {base}")
        exact.release.extra.update(training_seconds=round(restorer.cost.seconds, 1),
                                   training_steps=restorer.cost.steps)
        metrics = [exact, rate_metric("char_accuracy", rel["char_accuracy"], orig["char_accuracy"],
                                      g.char_accuracy(truths), f"mean max(0, 1 - CER) of {how}; {base}"),
                   training_cost_metric(restorer.cost, "U-Net restorer")]
        notes = [
            ("attacker model: holds the release, each plate's box, its own synthetic plate renderer and the auxiliary "
             "plates with their texts, reproduces the release's anonymization on them (the target's method, the "
             f"declared operator or a blind estimate), trains a restorer on the pairs and reads with {engine.name}"),
            training_note(plates, f"U-Net {restorer.cost.describe()}", self.auxiliary_share),
        ]
        details = pd.DataFrame({
            "key": release.keys,
            "truth": truths,
            "read_release": rel["read"],
            "read_original": orig["read"],
            "conf_release": rel["conf"],
            "exact_release": rel["exact"],
            "exact_original": orig["exact"],
            "char_accuracy_release": rel["char_accuracy"],
            "char_accuracy_original": orig["char_accuracy"],
        })
        findings = read_findings(release.keys, rel, "exact_match", None, f"restorer then OCR ({engine.name})")
        return AttackResult(self.name, metrics, details, notes, findings)
