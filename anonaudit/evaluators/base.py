"""The ``Evaluator`` contract: streaming ``update(release_batch)`` / ``compute()`` / ``reset()``.

Like torchmetrics, each evaluator accumulates state over batches of a :class:`Release` and
returns an :class:`Estimate`; a functional twin computes the same value in one call.
"""

from __future__ import annotations

from ..data.imageset import Release
from ..params import ParamsMixin
from ..stats import Estimate


class Evaluator(ParamsMixin):
    """Base class of utility metrics. ``higher_is_better`` orients trade-off plots."""

    name = ""
    higher_is_better = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, release: Release) -> None:
        raise NotImplementedError

    def compute(self) -> Estimate:
        raise NotImplementedError

    def __call__(self, release: Release, batch_size: int = 64) -> Estimate:
        """Reset, stream the whole release in batches, and compute."""
        self.reset()
        for batch in release.batches(batch_size):
            self.update(batch)
        return self.compute()


class PerImageEvaluator(Evaluator):
    """An evaluator that averages one score per image pair, with a bootstrap CI."""

    method = ""

    def reset(self) -> None:
        self._scores: list[float] = []

    def score_pair(self, original, anonymized, key: str) -> float:
        raise NotImplementedError

    def update(self, release: Release) -> None:
        for i in range(len(release)):
            original, anonymized = release.pair(i)
            self._scores.append(self.score_pair(original, anonymized, release.keys[i]))

    def compute(self) -> Estimate:
        from ..stats import mean_estimate

        return mean_estimate(self._scores, method=self.method)
