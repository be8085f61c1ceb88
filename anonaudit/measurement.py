"""One result shape for attacks and evaluators.

A :class:`Measurement` is one named quantity measured on a release: its estimate on the release,
the same quantity on the originals where that is meaningful (the upper bound of an attack, or the
reference value of a utility metric), the chance / no-information baseline, and which direction
is better. Attacks return a list of them inside their ``AttackResult``; evaluators return one or
several from ``compute()``; :mod:`anonaudit.results` turns both into table rows with one function.
"""

from __future__ import annotations

from dataclasses import dataclass

from .stats import Estimate, relative_risk


@dataclass
class Measurement:
    """One named measure on the release, on the originals and by chance."""

    metric: str
    release: Estimate
    original: Estimate | None = None
    baseline: float = float("nan")
    description: str = ""
    higher_is_better: bool = True

    @property
    def risk(self) -> float:
        """Fraction of the attack's advantage on originals that survives anonymization (0..1)."""
        if self.original is None:
            return float("nan")
        return relative_risk(self.release.value, self.original.value, self.baseline)
