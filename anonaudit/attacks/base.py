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
