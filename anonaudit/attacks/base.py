"""The ``Attack`` contract and its result type.

An attack is fitted on the intruder's own auxiliary data (never the evaluation originals) and run
on a :class:`Release`. Each metric it reports is a success rate or score where higher means a more
successful attack, measured on the release, on the originals (upper bound) and against a
no-information baseline, so that ``risk = (release - baseline) / (original - baseline)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..anonymizers.whitebox import CAPABILITIES
from ..data.imageset import ImageSet, Release
from ..errors import DataError
from ..measurement import Measurement
from ..params import ParamsMixin

#: Attacks' name for :class:`~anonaudit.measurement.Measurement` (the same class).
AttackMetric = Measurement

#: The Article 29 Working Party's criteria (Opinion 05/2014 on anonymisation techniques, WP216, section 2.2),
#: the values an attack's ``criteria`` may hold.
ARTICLE29_CRITERIA: tuple[str, ...] = ("singling_out", "linkability", "inference")

#: What the release itself may have to carry beyond its image pairs: ``anonymizer`` (the target
#: object) and ``anonymized_auxiliary`` (the auxiliary images as the method anonymizes them).
RELEASE_NEEDS: tuple[str, ...] = ("anonymizer", "anonymized_auxiliary")

#: The fixed vocabulary of an attack's ``needs``: the release's own needs and the target's white-box
#: capabilities (:data:`~anonaudit.anonymizers.whitebox.CAPABILITIES`: ``training_keys``, ``critic``,
#: ``reconstruct``, ``generate``, ``retrain``, ``representation``, ``image_dp``).
NEEDS: tuple[str, ...] = RELEASE_NEEDS + CAPABILITIES


#: The fixed vocabulary of an attack's ``attacker_holds``: what the intruder must hold for the attack to
#: work, each word with the words the compliance report shows for it. A word may carry specifics after
#: a colon (``"ocr_engine: rapidocr"``), shown in brackets.
ATTACKER_HOLDINGS: dict[str, str] = {
    "release": "the released (anonymized) images",
    "release_files": "the released files as published, with their metadata and embedded images",
    "representations": "the released representations (feature vectors) in place of images",
    "plate_boxes": "where each plate is in the released images (its box)",
    "method": "the anonymizer itself (published method and parameters), to anonymize images of its own",
    "operator": "the degradation the release declares (blur kernel, mosaic grid), to invert or simulate it",
    "plate_renderer": "a plate renderer (fonts, plate format) to make labelled plates of its own",
    "auxiliary": "auxiliary images of the same kind with their labels, never among the evaluated images",
    "gallery_originals": "a gallery of identified photos that includes each released image's own source photo",
    "gallery_other": "other identified photos of the released people",
    "ocr_engine": "an off-the-shelf OCR engine",
    "face_model": "a public face-recognition model",
    "partial_originals": "part of each target person's original image (half of it), to link to the release",
    "training_candidates": "candidate images, some of them the target's training images",
    "training_set": "the target's training images",
    "black_box": "query access to the trained target (to run or sample it)",
    "white_box": "white-box access to the trained target (its weights: critic, reconstruction)",
    "training_recipe": "the target's training recipe and training set, to train copies of it",
}


def unknown_holdings(holds: object) -> list[str]:
    """The entries of ``holds`` whose word (before any ``:``) is outside :data:`ATTACKER_HOLDINGS`
    (``holds`` itself when it is not a non-empty tuple of strings)."""
    if not isinstance(holds, tuple) or not holds or not all(isinstance(h, str) for h in holds):
        return [repr(holds)]
    return [h for h in holds if h.split(":", 1)[0].strip() not in ATTACKER_HOLDINGS]


def holding_text(entry: str) -> str:
    """An ``attacker_holds`` entry in words: its vocabulary text, with any specifics in brackets."""
    word, _, specifics = entry.partition(":")
    text = ATTACKER_HOLDINGS.get(word.strip(), word.strip())
    return f"{text} ({specifics.strip()})" if specifics.strip() else text


@dataclass(frozen=True)
class AttackerModel:
    """What an attack's intruder holds (words of :data:`ATTACKER_HOLDINGS`), what it trains and what
    it searches ("" for none: a classical attack)."""

    holds: tuple[str, ...]
    trains: str = ""
    searches: str = ""

    @property
    def kind(self) -> str:
        """``"learned"`` (it trains a model), ``"searching"`` (it searches candidates) or ``"classical"``."""
        return "learned" if self.trains else "searching" if self.searches else "classical"

    def holds_text(self) -> list[str]:
        """The holdings in words (:func:`holding_text`)."""
        return [holding_text(h) for h in self.holds]


def unknown_needs(needs: object) -> list[str]:
    """The words of ``needs`` outside :data:`NEEDS` (``needs`` itself when it is not a tuple of strings)."""
    if not isinstance(needs, tuple) or not all(isinstance(n, str) for n in needs):
        return [repr(needs)]
    return [n for n in needs if n not in NEEDS]


@dataclass(frozen=True)
class FileFinding:
    """One released file's evidence toward an attack's metrics (a row of ``RUN/findings.csv``).

    ``key`` is the image key (the original's when paired), ``file`` the released file ("" when the
    runner is to fill it in from the release), ``metrics`` the metrics the finding counts toward.
    ``example`` is what the attacker recovered (the plate text read, the identity matched): it is
    written into the detail only when the audit embeds examples (``--embed-examples``); otherwise
    ``detail`` states the fact without it.
    """

    key: str
    finding: str
    detail: str
    metrics: tuple[str, ...]
    file: str = ""
    example: str = ""


@dataclass
class AttackResult:
    """What one attack found on one release: metrics, per-image details and per-file findings."""

    attack: str
    metrics: list[AttackMetric]
    details: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    findings: list[FileFinding] = field(default_factory=list)

    def metric(self, name: str) -> AttackMetric:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(f"{self.attack} reported no metric '{name}' (has {[m.metric for m in self.metrics]})")


class Attack(ParamsMixin):
    """Base class of attacks. ``requires`` lists the labels the attack needs on the originals.

    Every attack declares ``criteria``: the Article 29 criteria it tests (of :data:`ARTICLE29_CRITERIA`);
    the compliance report reads them and :func:`anonaudit.testing.check_component` fails an attack
    that declares none.
    """

    name = ""
    requires: tuple[str, ...] = ()
    criteria: tuple[str, ...] = ()
    # What the attack needs beyond the image pairs, in the words of NEEDS: what the release carries
    # ("anonymizer", "anonymized_auxiliary") and the target's white-box capabilities ("training_keys",
    # "critic", "reconstruct", "generate", "retrain", "representation", "image_dp"; anonaudit/anonymizers/whitebox.py).
    # The audit runner checks them before the attack runs and records "not applicable" (or, for a
    # ready-made release of unknown method, "unavailable") with the missing word.
    needs: tuple[str, ...] = ()
    # The attacker model (required, checked by anonaudit.testing.check_component): what the intruder must
    # hold, in words of ATTACKER_HOLDINGS ("release", "auxiliary", "method", ...; "ocr_engine: rapidocr"
    # with specifics), what it trains ("" for none, else the model and its training data) and what it
    # searches ("" for none). The compliance report lists them; the headline marks learned and searching
    # attacks. Parameter-dependent parts go in an override of intruder().
    attacker_holds: tuple[str, ...] = ()
    attacker_trains: str = ""
    attacker_searches: str = ""

    def intruder(self) -> AttackerModel:
        """This attack's attacker model: the class declarations, with the OCR engine's and the face
        model's names (parameters ``engine``, ``embedder``) as specifics of those holdings."""
        named = {"ocr_engine": getattr(self, "engine", None), "face_model": getattr(self, "embedder", None)}
        holds = []
        for h in self.attacker_holds:
            value = named.get(h)
            value = value.get("name", "") if isinstance(value, dict) else value
            holds.append(f"{h}: {value}" if isinstance(value, str) and value else h)
        return AttackerModel(tuple(holds), self.attacker_trains, self.attacker_searches)

    def not_applicable(self, release: Release) -> str:
        """Why this attack does not apply to ``release`` at all ("" when it does).

        An attack on the target's training set (``needs`` training keys) has nothing to attack when
        the target is a method that learns nothing from data (blur, mask): no training set exists
        whose membership could leak. A ready-made release of unknown origin is not such a case: its
        method may well have been trained, so without the training keys the attack is not tested.
        """
        target = release.anonymizer
        if ("training_keys" in self.needs and target is not None and not release.training_keys
                and getattr(target, "applies_to_new_images", True) and not getattr(target, "trainable", False)):
            return f"{release.name} learns nothing from data: it has no training set whose membership could leak"
        return ""

    def fit(self, auxiliary: ImageSet | None = None) -> Attack:
        """Train on the intruder's auxiliary data (no-op for attacks that need none)."""
        return self

    def run(self, release: Release) -> AttackResult:
        raise NotImplementedError

    def labels_read(self) -> tuple[str, ...]:
        """The label columns of the originals this attack measures against (``requires`` unless the
        attack reads a label chosen by a parameter); the audit of two folders runs it only when every
        original carries them."""
        return tuple(self.requires)

    def check_labels(self, release: Release) -> None:
        """Raise a clear error when the originals lack a label this attack needs."""
        for field_name in self.requires:
            if not release.originals.has_labels(field_name):
                raise DataError(
                    f"attack '{self.name}' needs '{field_name}' labels on every original image; "
                    f"'{release.originals.name}' lacks some"
                )
