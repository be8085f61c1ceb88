"""The parrot recogniser: a plate reader trained on anonymized plates, then run on the release.

``ParrotOCR`` ("parrot_ocr") is the learning intruder of McPherson, Shokri and Shmatikov,
"Defeating Image Obfuscation with Deep Learning" (2016), for plates: it does not undo the
anonymization, it learns to read through it. It trains a small CRNN with CTC
(:mod:`anonaudit.models.ocr.crnn`) on ``(anonymize(x), text(x))`` pairs, where ``x`` are synthetic
plates it renders itself (``synthetic`` of them) and the auxiliary real plates with a text, and
``anonymize`` is the release's method as the attacker can reproduce it (the target's own method,
the declared operator, or a blind estimate: :mod:`~anonaudit.attacks.mimic`). It then reads the
plate region of every released image.

Metrics, as :class:`~anonaudit.attacks.ocr.OCRReread`'s and against the same no-information
baseline: ``exact_match`` (Wilson 95% CI) and ``char_accuracy`` (percentile bootstrap), on the
release and on the originals (read by the same CRNN trained on the same plates un-anonymized, the
reader of unprotected plates; or, with ``original_reader="parrot"``, by the parrot itself).
``training_seconds`` gives the training cost (steps as its ``n``; no baseline, so no risk), also in
the extras of ``exact_match`` (the ``message`` column of the results table). Greedy CTC decoding
over the plate alphabet (A-Z, 0-9). The notes give the attacker model, the training data and cost;
one ``read`` finding per released plate read exactly.

Training is seeded and budgeted (``steps``, ``max_seconds``); the weights are cached in the suite's
model-output cache under a hash of every training crop and text, the seed, the budget and the
architecture (so by target, auxiliary set, seed and budget), and a second run loads them (the notes
say so and give the cost of the original training).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import ConfigError
from ..measurement import Measurement
from ..models.ocr.base import PLATE_CHARS, PLATE_MARGIN
from ..models.ocr.crnn import CRNNReader, check_reader_size, train_crnn
from ..models.small_nets import Budget, TrainingCost, cache_key
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate
from .base import Attack, AttackResult
from .mimic import TrainingPlates, crops, training_plates
from .ocr import NoInformationGuess, fitted_guess, rate_metric, read_findings, score_readings, truths_of


def check_learning_params(name: str, synthetic: int, synthetic_params: dict | None, auxiliary_share: float | None,
                          synthetic_seed: int) -> None:
    """Shared checks of the learned plate attacks' data parameters (:class:`ConfigError` naming the attack)."""
    if synthetic_params is not None and not isinstance(synthetic_params, dict):
        raise ConfigError(f"{name}: synthetic_params must be a mapping or null, got {synthetic_params!r}")
    check_range(name, "synthetic", synthetic, ge=0, integer=True)
    check_range(name, "auxiliary_share", auxiliary_share, ge=0, le=1, optional=True)
    check_range(name, "synthetic_seed", synthetic_seed, integer=True)


def training_cost_metric(cost: TrainingCost, network: str) -> Measurement:
    """The training cost as a row of the results table: ``training_seconds`` (wall clock on this
    machine, or of the earlier training when the weights were cached), the steps as its ``n``; not a
    success rate (no baseline, no risk)."""
    how = "loaded from the cache, seconds of the earlier training" if cost.cached else "trained in this run"
    return Measurement("training_seconds", Estimate(round(cost.seconds, 1), n=cost.steps,
                                                    method=f"wall-clock seconds of training, steps in n ({how})"),
                       None, float("nan"), f"seconds the attacker spent training its {network} (cost, not success)")


def training_note(plates: TrainingPlates, cost_text: str, auxiliary_share: float | None) -> str:
    """What the attacker trained on, for the notes."""
    share = ""
    if auxiliary_share is not None and plates.n_auxiliary:
        share = f", {auxiliary_share:.0%} of each batch auxiliary"
    return (f"trained on {plates.n_synthetic} synthetic plates rendered by the attacker and {plates.n_auxiliary} "
            f"auxiliary plates{share}, anonymized with {plates.mimic.description} (source: {plates.mimic.source}); "
            f"{cost_text}")


#: What reads the originals (see :class:`ParrotOCR`).
ORIGINAL_READERS = ("clean", "parrot")


@ATTACKS.register("parrot_ocr")
class ParrotOCR(Attack):
    """Read plates with a CRNN trained on anonymized plates (see module doc).

    Args:
        steps: most training steps (Adam, one-cycle schedule).
        max_seconds: most training seconds (``None``: the steps alone bound training).
        batch_size: plates per training step.
        lr: peak learning rate.
        synthetic: synthetic plates the attacker renders (0: only the auxiliary plates).
        synthetic_params: parameters of :func:`~anonaudit.data.synthetic_plates.synthetic_plates`
            for them (fonts, plate heights, ``scenes``, ...).
        synthetic_seed: their seed (the attacker's own; keep it apart from the evaluation data's).
        auxiliary_share: share of each batch drawn from the auxiliary plates (``None``: uniform
            over all training plates).
        size: (height, width) the plate crop is resized to (multiples of 8 and 4).
        hidden: half the channels of the column (context) convolutions.
        channels: channels of the first convolution (doubling twice).
        margin: margin around the plate box read (fraction of the box size), as OCR's.
        original_reader: what reads the originals (the upper bound): ``"clean"``, the same CRNN
            trained on the same plates un-anonymized (the reader of unprotected plates; trained once
            per audit, cached); ``"parrot"``, the parrot itself (cheaper; a parrot of a strong
            anonymization reads clean plates poorly).
        cache: keep the trained weights in the suite's cache and reuse them.
        seed: training seed, and the seed of the no-information baseline.
    """

    requires = ("text",)
    criteria = ("singling_out", "linkability")  # a plate read back names one vehicle, linkable to registers
    attacker_holds = ("release", "plate_boxes", "method", "plate_renderer", "auxiliary")
    attacker_trains = "a CRNN recogniser (CTC) on synthetic and auxiliary plates anonymized by the method"
    param_alternatives = {"original_reader": ("parrot",)}
    test_params = {"steps": 80, "synthetic": 60, "size": [16, 64], "hidden": 16, "channels": 8, "lr": 0.01}

    def __init__(
        self,
        steps: int = 3000,
        max_seconds: float | None = None,
        batch_size: int = 32,
        lr: float = 3e-3,
        synthetic: int = 2000,
        synthetic_params: dict | None = None,
        synthetic_seed: int = 1000,
        auxiliary_share: float | None = None,
        size: Sequence[int] = (32, 128),
        hidden: int = 64,
        channels: int = 16,
        margin: float = PLATE_MARGIN,
        original_reader: str = "clean",
        cache: bool = True,
        seed: int = 0,
    ):
        Budget(steps, max_seconds, batch_size, lr)  # raises ConfigError on a bad budget
        check_learning_params("parrot_ocr", synthetic, synthetic_params, auxiliary_share, synthetic_seed)
        check_reader_size(size)
        check_range(self, "hidden", hidden, ge=1, integer=True)
        check_range(self, "channels", channels, ge=1, integer=True)
        check_range(self, "margin", margin, ge=0, lt=1)
        self.steps, self.max_seconds, self.batch_size, self.lr = steps, max_seconds, batch_size, lr
        self.synthetic, self.synthetic_params, self.synthetic_seed = synthetic, synthetic_params, synthetic_seed
        self.auxiliary_share = auxiliary_share
        self.size = size
        self.hidden, self.channels = hidden, channels
        self.margin = margin
        if original_reader not in ORIGINAL_READERS:
            raise ConfigError(f"parrot_ocr: original_reader must be one of {ORIGINAL_READERS}, got {original_reader!r}")
        self.original_reader = original_reader
        self.cache = cache
        self.seed = seed

    def fit(self, auxiliary: ImageSet | None = None) -> ParrotOCR:
        """Keep the auxiliary plates (trained on in :meth:`run`, once the release's method is known)
        and learn the no-information guess from their texts."""
        self.auxiliary_ = auxiliary
        self.guesser_ = NoInformationGuess.fit(auxiliary.texts if auxiliary is not None else [], seed=self.seed)
        return self

    def train(self, release: Release) -> tuple[CRNNReader, CRNNReader | None, TrainingPlates]:
        """The parrot trained for ``release``, the reader of the originals (``None`` with
        ``original_reader="parrot"``; both loaded from the cache when trained before) and the training plates."""
        hw = check_reader_size(self.size)
        plates = training_plates(release, getattr(self, "auxiliary_", None), self.synthetic, self.synthetic_params,
                                 self.synthetic_seed, hw, self.margin)
        parrot = self._train_reader(plates.anonymized, plates, hw)
        clean = None if self.original_reader == "parrot" else self._train_reader(plates.clean, plates, hw)
        return parrot, clean, plates

    def _train_reader(self, images: np.ndarray, plates: TrainingPlates, hw: tuple[int, int]) -> CRNNReader:
        draw = plates.sampler(self.auxiliary_share)

        def samples(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[str]]:
            idx = draw(rng, n)
            return images[idx], [plates.texts[i] for i in idx]

        key = cache_key(data=plates.fingerprint(images), attack=self.name) if self.cache else None
        return train_crnn(samples, hw, self.steps, self.seed, alphabet=PLATE_CHARS, batch_size=self.batch_size,
                          lr=self.lr, max_seconds=self.max_seconds, hidden=self.hidden, channels=self.channels,
                          cache_key=key)

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        truths = truths_of(release.originals, self.name)
        parrot, clean, plates = self.train(release)
        records, hw = release.originals.records, check_reader_size(self.size)
        rel = score_readings(truths, parrot.read(list(crops(release.anonymized, records, hw, self.margin))), 1, False)
        originals = list(crops(release.originals, records, hw, self.margin))
        orig = score_readings(truths, (clean or parrot).read(originals), 1, False)
        return self.result(release, truths, rel, orig, (parrot, clean), plates)

    def result(self, release: Release, truths: list[str], rel: pd.DataFrame, orig: pd.DataFrame,
               readers: tuple[CRNNReader, CRNNReader | None], plates: TrainingPlates) -> AttackResult:
        reader, clean = readers
        g = fitted_guess(self)
        base = f"baseline: {g.describe()}"
        how = "a CRNN trained on anonymized plates (parrot recogniser, greedy CTC over A-Z0-9)"
        exact = rate_metric("exact_match", rel["exact"], orig["exact"], g.exact(truths),
                            f"plates read exactly by {how}; {base}")
        exact.release.extra.update(training_seconds=round(reader.cost.seconds, 1), training_steps=reader.cost.steps)
        metrics = [exact, rate_metric("char_accuracy", rel["char_accuracy"], orig["char_accuracy"],
                                      g.char_accuracy(truths), f"mean max(0, 1 - CER) of {how}; {base}"),
                   training_cost_metric(reader.cost, "CRNN")]
        notes = [
            ("attacker model: holds the release, each plate's box, its own synthetic plate renderer and the auxiliary "
             "plates with their texts, and reproduces the release's anonymization on them (the target's method, the "
             "declared operator or a blind estimate); it trains a recogniser on what it anonymized"),
            training_note(plates, f"CRNN {reader.cost.describe()}", self.auxiliary_share),
            "originals read by " + ("the parrot itself" if clean is None else
                                    f"the same CRNN trained on the plates un-anonymized, {clean.cost.describe()}"),
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
        findings = read_findings(release.keys, rel, "exact_match", None, "parrot recogniser")
        return AttackResult(self.name, metrics, details, notes, findings)
