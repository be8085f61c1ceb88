"""OCR re-reading: can an intruder read the plate text back from the released images?

``OCRReread`` ("ocr") reads the plate region of every released image and of every original with
one OCR engine and scores the readings against the ground-truth plate text (after
:func:`~anonaudit.attacks.text.normalize_plate`). Metrics, all "higher = more successful attack",
each on the release, on the originals (the upper bound) and against a no-information baseline:

- ``exact_match``: share of plates read exactly (Wilson 95% CI);
- ``exact_match_folded``: the same after folding look-alike characters (O/0, I/1, ...) on both
  sides (only when ``fold_confusions=False``; otherwise ``exact_match`` is already folded);
- ``char_accuracy``: mean of ``max(0, 1 - CER)`` per plate (percentile-bootstrap 95% CI);
- ``topk_char_accuracy``: char accuracy where a wrong character counts as read when the truth is
  among the engine's top ``k`` candidates at that position; absent (with a note) for engines
  that do not expose per-position alternatives.

No-information baseline (:class:`NoInformationGuess`): fitted on auxiliary plate texts, the
guesser always answers the most frequent character at each position (top-k: the k most frequent)
with the most frequent plate length; its scores on the evaluation truths are the baselines.
Without auxiliary texts it guesses uniformly over A-Z0-9 knowing the true length: exact match
``36**-len``, and char / top-k accuracy by Monte Carlo over seeded guesses (32 per plate, at
least 2,000 in all).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.imageset import ImageSet, Release
from ..errors import DataError
from ..models.ocr import OCREngine, Reading, check_engine, create_engine
from ..models.ocr.base import PLATE_MARGIN
from ..params import check_range
from ..registry import ATTACKS
from ..stats import Estimate, mean_estimate, proportion
from .base import Attack, AttackMetric, AttackResult, FileFinding
from .text import (
    CONFUSIONS,
    PLATE_ALPHABET,
    char_accuracy,
    fold_char,
    normalize_alternatives,
    normalize_plate,
    topk_char_accuracy,
)

_MC_DRAWS = 32  # Monte Carlo guesses per plate for the uniform baseline ...
_MC_SAMPLES = 2000  # ... and at least this many in all


def truths_of(images: ImageSet, attack: str) -> list[str]:
    """Normalised ground-truth texts; a text that normalises to nothing is a data error."""
    truths = [normalize_plate(t) for t in images.texts]
    bad = [k for k, t in zip(images.keys, truths) if not t]
    if bad:
        raise DataError(f"attack '{attack}': plate text has no letters or digits for {len(bad)} image(s): {bad[:5]}")
    return truths


def score_readings(truths: Sequence[str], readings: Sequence[Reading], k: int, fold: bool) -> pd.DataFrame:
    """Per-plate scores of ``readings`` against normalised ``truths``.

    Columns: ``read`` (normalised reading), ``conf``, ``exact``, ``exact_folded``,
    ``char_accuracy`` and ``topk_char_accuracy`` (nan when the reading has no alternatives).
    With ``fold=True`` the reading and truth are folded before every score.
    """
    rows = []
    for truth, r in zip(truths, readings):
        t = normalize_plate(truth, fold=fold)
        if r.alternatives is not None:
            read, alts = normalize_alternatives(r.text, r.alternatives, fold=fold)
            topk = topk_char_accuracy(t, read, alts, k)
        else:
            read, topk = normalize_plate(r.text, fold=fold), float("nan")
        rows.append(
            {
                "read": read,
                "conf": r.confidence,
                "exact": read == t,
                "exact_folded": normalize_plate(read, fold=True) == normalize_plate(t, fold=True),
                "char_accuracy": char_accuracy(t, read),
                "topk_char_accuracy": topk,
            }
        )
    return pd.DataFrame(rows, columns=["read", "conf", "exact", "exact_folded", "char_accuracy", "topk_char_accuracy"])


@dataclass
class NoInformationGuess:
    """The best answer an intruder can give without looking at the image (see module doc)."""

    chars: tuple[tuple[str, ...], ...] = ()  # per position, characters by decreasing frequency
    length: int = 0
    seed: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def fit(cls, texts: Sequence[str | None], seed: int = 0) -> NoInformationGuess:
        norm = [normalize_plate(t) for t in texts if t]
        norm = [t for t in norm if t]
        if not norm:
            return cls(seed=seed)
        length = Counter(len(t) for t in norm).most_common(1)[0][0]
        chars = []
        for p in range(length):
            counts = Counter(t[p] for t in norm if len(t) > p)
            chars.append(tuple(c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
        return cls(tuple(chars), length, seed)

    @property
    def fitted(self) -> bool:
        return self.length > 0

    def describe(self) -> str:
        if self.fitted:
            return f"most frequent character per position of the auxiliary plates ({''.join(c[0] for c in self.chars)})"
        return "uniform random guess over A-Z0-9 with the true length (Monte Carlo)"

    def guess(self) -> str:
        return "".join(c[0] for c in self.chars)

    def _random(self, truths: Sequence[str], k: int):
        rng = np.random.default_rng(self.seed)
        alphabet = np.array(list(PLATE_ALPHABET))
        n_draws = max(_MC_DRAWS, math.ceil(_MC_SAMPLES / max(1, len(truths))))
        for t in truths:
            # k distinct characters per position, uniformly: the first k of a random permutation.
            draws = alphabet[rng.random((n_draws, len(t), len(alphabet))).argsort(axis=-1)[..., :k]]
            for alts in draws:
                yield t, "".join(a[0] for a in alts), [[(c, float("nan")) for c in a] for a in alts]

    def exact(self, truths: Sequence[str], fold: bool = False) -> float:
        if self.fitted:
            g = normalize_plate(self.guess(), fold=fold)
            return float(np.mean([normalize_plate(t, fold=fold) == g for t in truths]))
        # P(uniform guess == truth) per position: the alphabet share that folds onto the truth character.
        probs = []
        for t in truths:
            p = 1.0
            for ch in t:
                same = sum(
                    1 for a in PLATE_ALPHABET if (fold_char(a) if fold else a) == (fold_char(ch) if fold else ch)
                )
                p *= same / len(PLATE_ALPHABET)
            probs.append(p)
        return float(np.mean(probs))

    def char_accuracy(self, truths: Sequence[str], fold: bool = False) -> float:
        return self._cached(("char", tuple(truths), 1, fold), lambda: self._topk(truths, 1, fold))

    def topk_char_accuracy(self, truths: Sequence[str], k: int, fold: bool = False) -> float:
        return self._cached(("topk", tuple(truths), k, fold), lambda: self._topk(truths, k, fold))

    def _cached(self, key: tuple, compute) -> float:
        # An audit scores the same evaluation truths once per target: compute each baseline once.
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _topk(self, truths: Sequence[str], k: int, fold: bool) -> float:
        """Top-k char accuracy of the guess (k = 1: plain char accuracy)."""
        if self.fitted:
            guess, alts = normalize_alternatives(
                self.guess(), [[(c, float("nan")) for c in pos[:k]] for pos in self.chars], fold
            )
            return float(np.mean([topk_char_accuracy(normalize_plate(t, fold), guess, alts, k) for t in truths]))
        scores = []
        for t, g, a in self._random(truths, k):
            guess, alts = normalize_alternatives(g, a, fold)
            scores.append(topk_char_accuracy(normalize_plate(t, fold), guess, alts, k))
        return float(np.mean(scores))


#: A finding's detail when the text read is withheld (``--embed-examples`` writes the text instead).
TEXT_WITHHELD = "text withheld; rerun with --embed-examples"


def read_findings(
    keys: Sequence[str], scores: pd.DataFrame, metric: str, folded_metric: str | None, how: str
) -> list[FileFinding]:
    """One ``read`` finding per plate read exactly (counting toward ``metric`` and ``folded_metric``), and
    with ``folded_metric`` one ``read_up_to_lookalikes`` per plate read exactly only after folding; the
    text read is the finding's example (shown only with ``--embed-examples``)."""
    out = []
    for key, (_, r) in zip(keys, scores.iterrows()):
        if r["exact"]:
            metrics = (metric,) + ((folded_metric,) if folded_metric else ())
            out.append(
                FileFinding(key, "read", f"{how}: read exactly ({TEXT_WITHHELD})", metrics, example=str(r["read"]))
            )
        elif folded_metric and r["exact_folded"]:
            out.append(FileFinding(key, "read_up_to_lookalikes", f"{how}: read exactly up to look-alike characters "
                                   f"({TEXT_WITHHELD})", (folded_metric,), example=str(r["read"])))
    return out


def rate_metric(
    name: str, release: pd.Series, original: pd.Series | None, baseline: float, description: str
) -> AttackMetric:
    """An :class:`AttackMetric` from per-plate booleans (Wilson CI) or scores (bootstrap CI)."""

    def est(values: pd.Series) -> Estimate:
        if values.dtype == bool:
            return proportion(values.to_numpy(), method="proportion, Wilson 95% CI")
        return mean_estimate(values.to_numpy(dtype=float), method="mean, percentile bootstrap 95% CI")

    return AttackMetric(name, est(release), None if original is None else est(original), baseline, description)


def fitted_guess(attack: Attack) -> NoInformationGuess:
    """The no-information guess ``attack.fit`` learned; for an attack run without ``fit`` (no
    auxiliary data), the uniform guess."""
    return getattr(attack, "guesser_", None) or NoInformationGuess(seed=attack.seed)


@ATTACKS.register("ocr")
class OCRReread(Attack):
    """Re-read plate text from the release with an OCR engine (see module doc).

    Args:
        engine: registered OCR engine name (``rapidocr``, ``tesseract``, ``easyocr``).
        k: candidates per position for ``topk_char_accuracy``.
        fold_confusions: fold look-alike characters in every metric (default: strict, with the
            folded exact match reported separately).
        engine_params: parameters of the engine (e.g. ``{"allowlist": "plates"}``).
        margin: margin around the plate box read by OCR (fraction of the box size).
        batch_size: crops per engine call.
        seed: seed of the Monte Carlo baseline.
    """

    requires = ("text",)
    criteria = ("singling_out", "linkability")  # a plate read back names one vehicle, linkable to registers
    attacker_holds = ("release", "plate_boxes", "ocr_engine")

    param_alternatives = {"engine": ("tesseract", "easyocr")}
    folder_audit = {"plates": {"engine": "rapidocr"}}

    def __init__(
        self,
        engine: str = "rapidocr",
        k: int = 3,
        fold_confusions: bool = False,
        engine_params: dict | None = None,
        margin: float = PLATE_MARGIN,
        batch_size: int = 32,
        seed: int = 0,
    ):
        check_range(self, "k", k, ge=1, integer=True)
        check_engine(engine)
        self.engine = engine
        self.k = k
        self.fold_confusions = fold_confusions
        self.engine_params = engine_params
        self.margin = margin
        self.batch_size = batch_size
        self.seed = seed

    def make_engine(self) -> OCREngine:
        return create_engine(self.engine, **(self.engine_params or {}))

    def fit(self, auxiliary: ImageSet | None = None) -> OCRReread:
        """Learn the no-information guess from the auxiliary set's plate texts (if it has any)."""
        texts = auxiliary.texts if auxiliary is not None else []
        self.guesser_ = NoInformationGuess.fit(texts, seed=self.seed)
        return self

    def _read(self, engine: OCREngine, images: ImageSet, release: Release, what: str) -> list[Reading]:
        return engine.read(images, self.batch_size, release.originals.records, self.margin, desc=f"{self.name} {what}")

    def run(self, release: Release) -> AttackResult:
        self.check_labels(release)
        engine = self.make_engine()
        truths = truths_of(release.originals, self.name)
        orig = score_readings(
            truths, self._read(engine, release.originals, release, "originals"), self.k, self.fold_confusions
        )
        rel = score_readings(
            truths, self._read(engine, release.anonymized, release, "release"), self.k, self.fold_confusions
        )
        g = fitted_guess(self)
        base = f"baseline: {g.describe()}"
        fold_note = ", look-alike characters folded" if self.fold_confusions else ""
        metrics = [
            rate_metric("exact_match", rel["exact"], orig["exact"], g.exact(truths, self.fold_confusions),
                        f"plates read exactly by {engine.name}{fold_note}; {base}"),
        ]
        if not self.fold_confusions:
            metrics.append(rate_metric("exact_match_folded", rel["exact_folded"], orig["exact_folded"],
                                       g.exact(truths, fold=True),
                                       f"plates read exactly up to look-alikes {sorted(CONFUSIONS.items())}; {base}"))
        metrics.append(rate_metric("char_accuracy", rel["char_accuracy"], orig["char_accuracy"],
                                   g.char_accuracy(truths, self.fold_confusions),
                                   f"mean max(0, 1 - CER){fold_note}; {base}"))
        notes = []
        if engine.provides_alternatives:
            metrics.append(rate_metric("topk_char_accuracy", rel["topk_char_accuracy"], orig["topk_char_accuracy"],
                                       g.topk_char_accuracy(truths, self.k, self.fold_confusions),
                                       f"char accuracy counting the truth within the top {self.k} candidates; {base}"))
        else:
            notes.append(f"topk_char_accuracy not reported for {engine.name}: {engine.alternatives_reason}")
        details = pd.DataFrame(
            {
                "key": release.keys,
                "truth": truths,
                "read_release": rel["read"],
                "read_original": orig["read"],
                "conf_release": rel["conf"],
                "conf_original": orig["conf"],
                "exact_release": rel["exact"],
                "exact_original": orig["exact"],
                "char_accuracy_release": rel["char_accuracy"],
                "char_accuracy_original": orig["char_accuracy"],
                "topk_char_accuracy_release": rel["topk_char_accuracy"],
                "topk_char_accuracy_original": orig["topk_char_accuracy"],
            }
        )
        findings = read_findings(
            release.keys,
            rel,
            "exact_match",
            None if self.fold_confusions else "exact_match_folded",
            f"OCR ({engine.name})",
        )
        return AttackResult(self.name, metrics, details, notes, findings)
