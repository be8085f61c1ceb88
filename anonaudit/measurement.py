"""One result shape for attacks and evaluators.

A :class:`Measurement` is one named quantity measured on a release: its estimate on the release,
the same quantity on the originals where that is meaningful (the upper bound of an attack, or the
reference value of a utility metric), the chance / no-information baseline, and which direction
is better. Attacks return a list of them inside their ``AttackResult``; evaluators return one or
several from ``compute()``; :mod:`anonaudit.results` turns both into table rows with one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .stats import Estimate, Risk, risk_estimate


@dataclass
class Measurement:
    """One named measure on the release, on the originals and by chance.

    ``higher_is_better`` says whether a higher value is better for the release (more utility or
    less leak): False by default, as an attack's measure is the intruder's success.
    """

    metric: str
    release: Estimate
    original: Estimate | None = None
    baseline: float = float("nan")
    description: str = ""
    higher_is_better: bool = False

    @property
    def risk(self) -> float:
        """The attack's risk (point value of :meth:`risk_estimate`; 0 = chance, 1 = as the originals)."""
        return risk_estimate(self.release, self.original, self.baseline, n_draws=0).value

    def risk_estimate(self) -> Risk:
        """The attack's risk with its 95% CI and kind (relative, new_leak, absolute or none)."""
        return risk_estimate(self.release, self.original, self.baseline)


def as_measurements(result: Measurement | Sequence[Measurement]) -> list[Measurement]:
    """An evaluator's ``compute()`` result (one measurement or several) as a list."""
    if isinstance(result, Measurement):
        return [result]
    out = list(result)
    bad = [type(m).__name__ for m in out if not isinstance(m, Measurement)]
    if bad:
        raise TypeError(f"expected Measurement objects, got {bad}")
    return out
