"""Where an audit's per-image work runs: in this process (:class:`LocalExecutor`) or on a Ray
cluster (:class:`RayExecutor`).

The audit hands three kinds of per-image work to its executor, and keeps everything else (fitting,
attacks' decisions, aggregation, the results table) on the driver:

- **anonymization** of the evaluation set by a per-image target (one whose output for an image
  depends on that image alone: the classical methods; batched, trained and ready-made targets run
  whole on the driver);
- **per-image scoring** by a streaming evaluator (``update`` per batch, ``compute`` at the end):
  shards made of whole batches are scored remotely, their accumulated states are merged on the
  driver by the rules the evaluator declares with ``add_state`` (lists concatenated in order,
  counters summed, feature statistics and reservoirs by their own merge; see
  :mod:`anonaudit.evaluators.base`) and ``compute`` runs there;
- **model inference** of every cached model (OCR readings, text and face detections, embeddings:
  whatever goes through :class:`~anonaudit.memo.Memo`): the images a call misses are computed in
  parts, at least :data:`MIN_PART` images each (:func:`anonaudit.memo.parallel_compute`), so the
  attacks' model calls run on the cluster while the attacks themselves run on the driver.

Shards are contiguous and cut on multiples of the audit's batch size, so every batch an evaluator
sees is the batch it sees in a local run: the table is the same for the same seed (float sums, such
as a Frechet distance's feature covariances, merged shard by shard equal one pass up to rounding in
the last bits; a reservoir of feature pairs is the same while every pair fits in it). An evaluator
that declares no state is computed on the driver, in one pass. A model call whose inputs cannot be
sent to workers (an unpicklable model object) is computed on the driver. An error raised on a
worker is raised again on the driver as itself (a model reported unavailable there is unavailable
here). Memoised values depend on their own image
only (the memo's contract: it already computes whichever part of a batch it misses); OCR readings
are the same alone or in any batch, while a CNN's features on CPU may differ in the last bits
with the batch's composition, so a table with such features can differ at float precision.

The Ray implementation runs remote tasks over shards of the :class:`~anonaudit.data.imageset.ImageSet`
rather than Ray Data: components consume ``ImageSet``/``Release`` objects (records with keys,
labels and boxes, images of varying sizes) and stream batches through their own ``update``; a
shard of those objects is one task argument, while a Ray Dataset would need converting every image
and record to Arrow rows and back. Workers reuse the run's model-output cache when its file is
reachable from them (:mod:`anonaudit.memo`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import memo
from .anonymizers.base import Anonymizer
from .data.imageset import ImageSet, Release
from .errors import ModelUnavailableError
from .evaluators.base import Evaluator
from .measurement import Measurement
from .params import check_range, clone


class Executor:
    """Runs the audit's per-image work. The base class runs everything in this process."""

    name = "local"

    def running(self) -> contextlib.AbstractContextManager:
        """The context an audit runs in (for a cluster: model calls computed in parts there)."""
        return contextlib.nullcontext()

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        """``[fn(*args) for args in calls]``, in order."""
        return [fn(*args) for args in calls]

    def anonymize(
        self, target: Anonymizer, images: ImageSet, auxiliary: ImageSet | None, show_progress: bool = True
    ) -> tuple[ImageSet, ImageSet | None]:
        """``target.anonymize_with_auxiliary(images, auxiliary)``."""
        return target.anonymize_with_auxiliary(images, auxiliary, show_progress=show_progress)

    def shards(self, n: int, batch_size: int) -> list[range]:
        """Contiguous index ranges covering ``range(n)``, cut on multiples of ``batch_size`` (here: one)."""
        return [range(n)]

    def evaluate(self, evaluator: Evaluator, release: Release, batch_size: int) -> Measurement | list[Measurement]:
        """``evaluator(release, batch_size)`` (reset, stream every batch, compute) when :meth:`shards`
        gives one shard or the evaluator declares no state; otherwise each shard is scored by
        :meth:`map` and the shards' states are merged in order by the evaluator's declared rules
        (:meth:`~anonaudit.evaluators.base.Evaluator.merge_state`) before ``compute`` runs here."""
        shards = self.shards(len(release), batch_size)
        if len(shards) < 2 or not evaluator.state_rules():
            return evaluator(release, batch_size=batch_size)
        cache = _cache_path()
        parts = self.map(_evaluate_shard, [(evaluator, release.subset(s), batch_size, cache) for s in shards])
        merged = clone(evaluator)
        merged.merge_state(parts)
        return merged.compute()


class LocalExecutor(Executor):
    """Everything in this process, in order (the default)."""


class RayExecutor(Executor):
    """Per-image work as Ray tasks over shards of the image set (see the module doc).

    Args:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); ``None``
            starts a local Ray instance unless this process already joined one.
        num_cpus: CPUs of a local instance started here (ignored when joining a cluster).
        shards_per_cpu: shards per CPU of the cluster (more shards balance uneven images better,
            fewer cost less scheduling).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, shards_per_cpu: int = 2):
        check_range(self, "shards_per_cpu", shards_per_cpu, ge=1, integer=True)
        self.address = address
        self.num_cpus = num_cpus
        self.shards_per_cpu = shards_per_cpu

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ModelUnavailableError(
                "running on Ray needs the 'ray[data]' package: pip install 'anonaudit[scale]'"
            ) from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(address=self.address, **kwargs)
        return ray

    def cpus(self) -> int:
        """CPUs of the cluster this executor runs on."""
        return max(1, int(self._ray().cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
        """``[fn(*args) for args in calls]`` as Ray tasks; an error a task raised is raised here as itself."""
        ray = self._ray()
        remote = ray.remote(fn)
        try:
            return ray.get([remote.remote(*args) for args in calls])
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, Exception):
                raise exc.cause from exc  # the worker's traceback stays attached as the cause
            raise

    def running(self) -> contextlib.AbstractContextManager:
        return memo.parallel_compute(self.compute_in_parts)

    def compute_in_parts(self, compute: Callable[[list[int]], list[Any]], todo: list[int]) -> list[Any]:
        """``compute(todo)`` as Ray tasks over parts of ``todo`` (at least :data:`MIN_PART` items
        each), concatenated; here when there is one part or the call cannot be sent to workers."""
        parts = min(len(todo) // MIN_PART, self.cpus() * self.shards_per_cpu)
        if parts < 2:
            return compute(todo)
        cuts = [round(i * len(todo) / parts) for i in range(parts + 1)]
        cache = _cache_path()
        try:
            values = self.map(_compute_part, [(compute, todo[a:b], cache) for a, b in itertools.pairwise(cuts)])
        except (TypeError, pickle.PicklingError):  # e.g. a model object that cannot be pickled: here
            return compute(todo)  # (an error the model raised on a worker is raised here again)
        return [v for part in values for v in part]

    def shards(self, n: int, batch_size: int) -> list[range]:
        """Contiguous index ranges covering ``range(n)``, cut on multiples of ``batch_size``."""
        batches = math.ceil(n / batch_size)
        count = max(1, min(batches, self.cpus() * self.shards_per_cpu))
        cuts = [round(i * batches / count) * batch_size for i in range(count + 1)]
        return [range(a, min(b, n)) for a, b in itertools.pairwise(cuts) if a < min(b, n)]

    def anonymize(
        self, target: Anonymizer, images: ImageSet, auxiliary: ImageSet | None, show_progress: bool = True
    ) -> tuple[ImageSet, ImageSet | None]:
        if not per_image(target) or len(images) < 2:
            return super().anonymize(target, images, auxiliary, show_progress)
        cache = _cache_path()
        parts = self.map(_anonymize_shard, [(target, images.subset(s), cache) for s in self.shards(len(images), 1)])
        pixels = [im for part in parts for im in part]
        return images.with_images(pixels, name=f"{images.name}:{target.label()}"), None


#: Fewest images per part of a model call sent to a worker.
MIN_PART = 8


def per_image(target: Anonymizer) -> bool:
    """Whether ``target`` anonymizes each image on its own (the base class's per-image path,
    nothing to fit, no release of its own), so shards of a set give the same images as the set."""
    cls = type(target)
    return (
        not target.trainable
        and target.applies_to_new_images
        and cls.anonymize is Anonymizer.anonymize
        and cls.anonymize_with_auxiliary is Anonymizer.anonymize_with_auxiliary
    )


def _cache_path() -> str | None:
    path = memo.default_db_path()
    return None if path is None else str(path)


def _worker_cache(path: str | None) -> Path | None:
    """The run's cache file when this worker can reach its folder (a cluster without a shared
    file system keeps model outputs in memory instead)."""
    return Path(path) if path and Path(path).parent.is_dir() else None


def _anonymize_shard(target: Anonymizer, shard: ImageSet, cache: str | None) -> list:
    from .progress import silenced

    with silenced(), memo.run_cache(_worker_cache(cache)):
        out = target.anonymize(shard, show_progress=False)
    return [out[i] for i in range(len(out))]


def _compute_part(compute: Callable[[list[int]], list[Any]], part: list[int], cache: str | None) -> list[Any]:
    with memo.run_cache(_worker_cache(cache)):
        return compute(part)


def _evaluate_shard(evaluator: Evaluator, shard: Release, batch_size: int, cache: str | None) -> Evaluator:
    from .progress import silenced

    worker = clone(evaluator)
    with silenced(), memo.run_cache(_worker_cache(cache)):
        for batch in shard.batches(batch_size):
            worker.update(batch)
    return worker
