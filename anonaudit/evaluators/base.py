"""The ``Evaluator`` contract: streaming ``update(release_batch)`` / ``compute()`` / ``reset()``.

Like torchmetrics, each evaluator accumulates state over batches of a :class:`Release`; its
``compute()`` returns one :class:`~anonaudit.measurement.Measurement` or several named ones (e.g.
PSNR and the share of identical pairs). The per-pair math lives in functions
(:mod:`anonaudit.evaluators.functional`) that the classes call.
"""

from __future__ import annotations

from ..data.imageset import Release
from ..measurement import Measurement
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

    def compute(self) -> Measurement | list[Measurement]:
        raise NotImplementedError

    def measurement(self, estimate: Estimate, metric: str | None = None, original: Estimate | None = None,
                    higher_is_better: bool | None = None) -> Measurement:
        """``estimate`` as this evaluator's measurement (named ``metric``, default the evaluator's name)."""
        return Measurement(
            metric or self.name, estimate, original,
            higher_is_better=self.higher_is_better if higher_is_better is None else higher_is_better,
        )

    def __call__(self, release: Release, batch_size: int = 64) -> Measurement | list[Measurement]:
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

    def compute(self) -> Measurement:
        from ..stats import mean_estimate

        return self.measurement(mean_estimate(self._scores, method=self.method))
