"""The ``Evaluator`` contract: streaming ``update(release_batch)`` / ``compute()`` / ``reset()``.

Like torchmetrics, each evaluator accumulates state over batches of a :class:`Release`; its
``compute()`` returns one :class:`~anonaudit.measurement.Measurement` or several named ones (e.g.
PSNR and the share of identical pairs). The per-pair math lives in functions
(:mod:`anonaudit.evaluators.functional`) that the classes call.

The accumulated state is declared once, in the constructor, as torchmetrics' ``add_state``:
``self.add_state("_scores", default=[], merge="cat")``. ``reset()`` restores every declared default,
and :meth:`Evaluator.merge_state` combines the states of evaluators that each saw a part of the
batches (an executor's shards) by the declared rules: ``"cat"`` concatenates lists in shard order,
``"sum"`` adds, and a function receives the shards' values in order and returns the merged value.
``update`` changes nothing but declared state (a model it loads lazily is a cache, not state).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from ..data.imageset import Release
from ..errors import ConfigError
from ..measurement import Measurement
from ..params import ParamsMixin
from ..stats import Estimate

#: How a declared state is merged across shards: ``"cat"``, ``"sum"`` or a function of the shards' values.
Merge = str | Callable[[list[Any]], Any]
MERGE_RULES = ("cat", "sum")


class Evaluator(ParamsMixin):
    """Base class of utility metrics. ``higher_is_better`` orients trade-off plots.

    Subclasses declare their accumulated state with :meth:`add_state` in ``__init__`` (after setting
    the parameters a default depends on) and call ``super().__init__()``.
    """

    name = ""
    higher_is_better = True

    def __init__(self) -> None:
        self.reset()

    def add_state(self, name: str, default: Any, merge: Merge) -> None:
        """Declare attribute ``name`` as accumulated state: set to a copy of ``default`` now and by
        every :meth:`reset`, merged across shards by ``merge`` (``"cat"``: a list, concatenated in
        shard order; ``"sum"``: added; or a function of the shards' values, in order)."""
        where = f"{type(self).__name__}.add_state({name!r})"
        if not (callable(merge) or merge in MERGE_RULES):
            raise ConfigError(f"{where}: merge must be one of {MERGE_RULES} or a function, got {merge!r}")
        if merge == "cat" and not isinstance(default, list):
            raise ConfigError(f"{where}: merge='cat' needs a list default, got {type(default).__name__}")
        self.__dict__.setdefault("_declared_state", {})[name] = (default, merge)
        setattr(self, name, copy.deepcopy(default))

    def state_rules(self) -> dict[str, Merge]:
        """``{state name: merge rule}`` of the declared state (empty: nothing declared, so the
        evaluator cannot be scored in shards)."""
        return {name: merge for name, (_, merge) in self.__dict__.get("_declared_state", {}).items()}

    def reset(self) -> None:
        """Restore every declared state to a copy of its default."""
        for name, (default, _) in self.__dict__.get("_declared_state", {}).items():
            setattr(self, name, copy.deepcopy(default))

    def merge_state(self, shards: Sequence[Evaluator]) -> None:
        """Set this evaluator's state to the declared merge of ``shards``' states (each evaluator
        updated on a contiguous part of the batches, in order): ``compute()`` then gives what one
        pass over every batch gives."""
        if not shards:
            raise ValueError("merge_state needs at least one shard")
        for name, merge in self.state_rules().items():
            values = [getattr(shard, name) for shard in shards]
            if merge == "cat":
                setattr(self, name, [x for v in values for x in v])
            elif merge == "sum":
                setattr(self, name, sum(values[1:], values[0]))
            else:
                setattr(self, name, merge(values))

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

    def __init__(self) -> None:
        self._scores: list[float]
        self.add_state("_scores", [], merge="cat")
        super().__init__()

    def score_pair(self, original, anonymized, key: str) -> float:
        raise NotImplementedError

    def update(self, release: Release) -> None:
        for i in range(len(release)):
            original, anonymized = release.pair(i)
            self._scores.append(self.score_pair(original, anonymized, release.keys[i]))

    def compute(self) -> Measurement:
        from ..stats import mean_estimate

        return self.measurement(mean_estimate(self._scores, method=self.method))
