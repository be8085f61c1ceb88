"""Executors: the same audit gives the identical results table in this process and on Ray.

The Ray tests start a local Ray instance with 2 CPUs (the CI machine) and run a tiny plate audit
(blur / pixelate / mask, OCR, SSIM and PSNR) and every shipped config that works offline, shrunk;
every number of each table must equal the local run's, models that are unavailable included (the
instance runs with an empty model cache, so FID, KID and LPIPS are unavailable in both runs).
Evaluators' declared state is merged shard by shard without Ray too, through a local executor that
cuts shards as Ray does.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from face_data import SHARED, needs_lfw

import anonaudit
from anonaudit.anonymizers.classical import GaussianBlur, Mask, Pixelate
from anonaudit.attacks.ocr import OCRReread
from anonaudit.audit import Audit, audit_from_config
from anonaudit.cli import DEMO_RESOURCE
from anonaudit.config import load_config
from anonaudit.data.imageset import Release
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import ConfigError
from anonaudit.evaluators.base import Evaluator
from anonaudit.evaluators.distribution import FrechetDistance
from anonaudit.evaluators.fidelity import PSNR, SSIM
from anonaudit.executors import Executor, LocalExecutor, RayExecutor, per_image
from anonaudit.measurement import as_measurements
from anonaudit.memo import clear_memory, default_db_path
from anonaudit.metrics.inception_score import SplitInceptionScore
from anonaudit.metrics.reservoir import PairReservoir
from anonaudit.params import clone
from anonaudit.stats import Estimate

BATCH = 4


def _audit(executor=None) -> Audit:
    plates = synthetic_plates(n=24, seed=5)
    return Audit(plates, [GaussianBlur(sigma=2.0), Pixelate(block=6), Mask()], [OCRReread(engine="rapidocr")],
                 [SSIM(), PSNR()], aux_fraction=0.25, seed=7, batch_size=BATCH, executor=executor)


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["seconds"]).reset_index(drop=True)


class CountingRay(RayExecutor):
    """A Ray executor that records which per-image work it sent to the cluster, and in how many shards."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent: list[tuple[str, int]] = []

    def map(self, fn, calls):
        self.sent.append((fn.__name__, len(calls)))
        return super().map(fn, calls)


class ShardedLocal(LocalExecutor):
    """Runs in this process but cuts the release into shards of whole batches as Ray would (``count``
    shards), so evaluators are scored shard by shard and merged by their declared rules."""

    def __init__(self, count: int):
        self.count = count
        self.sent: list[tuple[str, int]] = []

    def shards(self, n, batch_size):
        batches = -(-n // batch_size)
        cuts = [round(i * batches / self.count) * batch_size for i in range(self.count + 1)]
        return [range(a, min(b, n)) for a, b in itertools.pairwise(cuts) if a < min(b, n)]

    def map(self, fn, calls):
        self.sent.append((fn.__name__, len(calls)))
        return super().map(fn, calls)


def forget_model_outputs() -> None:
    """Drop every cached model output: this process's memory and the shared cache file that
    ``ANONAUDIT_CACHE`` (set by :func:`ray_instance`) names."""
    clear_memory()
    shared = default_db_path()
    if shared is not None:
        shared.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'anonaudit[scale]'")
    with pytest.MonkeyPatch.context() as env:
        # An empty model cache, set before Ray starts its workers (they inherit it): FID, KID and
        # LPIPS are unavailable on the driver and on the workers alike, whatever this machine caches.
        # It also holds the model outputs' cache file, shared by every run: see forget_model_outputs.
        env.setenv("ANONAUDIT_CACHE", str(tmp_path_factory.mktemp("empty-model-cache")))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()


@pytest.mark.slow  # about 30 s on 2 busy cores (two audits; the Ray start is in the fixture)
def test_ray_run_gives_the_local_table(ray_instance, tmp_path):
    forget_model_outputs()
    local = _audit().run(tmp_path / "local", show_progress=False)
    forget_model_outputs()  # the Ray run reads nothing the local run cached
    executor = CountingRay()
    distributed = _audit(executor).run(tmp_path / "ray", show_progress=False)
    pd.testing.assert_frame_equal(_comparable(distributed.table), _comparable(local.table))
    assert (local.table.status == "ok").all()
    # The work really went to Ray: each target anonymized in shards, each evaluator scored in shards
    # (18 evaluation images, batches of 4: 5 batches, at most 2 shards per CPU).
    assert executor.sent.count(("_anonymize_shard", 4)) == 3
    assert executor.sent.count(("_evaluate_shard", 4)) == 6
    # The OCR attack's readings (originals once, then each release: 18 crops per call) were computed
    # on Ray in 2 parts of at least 8 crops.
    assert executor.sent.count(("_compute_part", 2)) == 4
    for name in ("gaussian_blur", "pixelate", "mask"):
        examples = sorted((tmp_path / "ray" / "examples").glob(f"{name.replace('_', '-')}-*/*.png"))
        assert examples and [p.read_bytes() for p in examples] == [
            p.read_bytes() for p in sorted((tmp_path / "local" / "examples").glob(f"{name.replace('_', '-')}-*/*.png"))
        ]


#: Every shipped config that works offline, shrunk so that both runs take seconds: a few images, one
#: strength per method, batches of 4 (so each evaluator is scored in several shards on Ray).
OFFLINE_CONFIGS = [
    pytest.param(Path(__file__).resolve().parents[1] / "configs" / "plates-quick.yaml",
                 ["data.n=30", "targets.0.sweep.sigma=[2]", "targets.1.sweep.block=[8]"], id="plates-quick"),
    # 30 LFW images drawn at random (the first 30 in file order hold one gender, so the gender attack fails)
    pytest.param(Path(__file__).resolve().parents[1] / "configs" / "faces-quick.yaml",
                 ["data.limit=30", "data.seed=0"], id="faces-quick",
                 marks=[needs_lfw, pytest.mark.slow]),  # about 65 s on 2 busy cores (plates-quick 35 s, the demo 17 s)
    pytest.param(Path(anonaudit.__file__).parent / DEMO_RESOURCE,
                 ["data.n=30", "targets.0.sweep.sigma=[2]", "targets.1.sweep.block=[8]"], id="demo"),
]


@pytest.mark.parametrize(("path", "overrides"), OFFLINE_CONFIGS)
def test_shipped_offline_config_gives_the_local_table_on_ray(ray_instance, tmp_path, path, overrides):
    config = load_config(path, roots=[SHARED], overrides=[*overrides, "batch_size=4"])
    forget_model_outputs()
    local = audit_from_config(config).run(tmp_path / "local", show_progress=False)
    forget_model_outputs()
    executor = CountingRay()
    distributed = audit_from_config(config, executor=executor).run(tmp_path / "ray", show_progress=False)
    pd.testing.assert_frame_equal(_comparable(distributed.table), _comparable(local.table))
    assert ("_evaluate_shard", 4) in executor.sent  # evaluators really were scored in shards on Ray
    status = local.table.groupby("component")["status"].agg(set).to_dict()
    for unavailable in {"fid", "kid", "lpips"} & set(status):  # no weights in the instance's model cache
        assert status[unavailable] == {"unavailable"}
    assert status.get("frechet_distance", {"ok"}) == {"ok"} and status.get("ssim") == {"ok"}
    failed = local.table[local.table.status == "failed"]
    assert failed.empty, failed[["target_label", "component", "message"]].to_string()


def test_shards_cut_on_whole_batches(ray_instance):
    executor = RayExecutor()
    assert executor.cpus() == 2
    # 5 batches of 4 over 4 shards (2 per CPU): contiguous, every cut on a batch boundary.
    assert [(s.start, s.stop) for s in executor.shards(18, 4)] == [(0, 4), (4, 8), (8, 16), (16, 18)]
    assert [(s.start, s.stop) for s in executor.shards(7, 4)] == [(0, 4), (4, 7)]
    assert [(s.start, s.stop) for s in executor.shards(3, 1)] == [(0, 1), (1, 2), (2, 3)]


def test_which_components_are_sharded():
    assert per_image(GaussianBlur(sigma=1.0)) and per_image(Mask())
    from anonaudit.anonymizers.external import ExternalRelease

    assert not per_image(ExternalRelease.__new__(ExternalRelease))  # a ready-made release: whole, on the driver
    assert SSIM().state_rules() == {"_scores": "cat", "_no_region": "sum", "_boxes_from_release": "sum"}
    assert set(FrechetDistance().state_rules()) == {
        "_stats_original", "_stats_anonymized", "_reservoir", "_no_features_original", "_no_features_anonymized"
    }


def _plate_release(n: int = 10) -> Release:
    plates = synthetic_plates(n=n, seed=1)
    return Release(plates, GaussianBlur(sigma=2.0).anonymize(plates, show_progress=False))


@pytest.mark.parametrize("evaluator", [SSIM(), PSNR(), SSIM(region="boxes"), FrechetDistance(n_bootstrap=5)],
                         ids=["ssim", "psnr", "ssim-boxes", "fd-pixels16"])
def test_merged_evaluator_state_equals_one_pass(evaluator):
    """Scoring shards of whole batches and merging by the declared rules equals one pass over the release."""
    release = _plate_release()
    whole = as_measurements(clone(evaluator)(release, batch_size=BATCH))
    executor = ShardedLocal(count=3)  # 10 images, batches of 4: shards (0, 4), (4, 8), (8, 10)
    merged = as_measurements(executor.evaluate(clone(evaluator), release, BATCH))
    assert executor.sent == [("_evaluate_shard", 3)]
    assert [m.metric for m in merged] == [m.metric for m in whole]
    for got, want in zip(merged, whole):
        assert got.release.n == want.release.n > 0 and got.release.extra == want.release.extra
        # lists concatenate exactly; FD's feature sums merge up to float rounding
        np.testing.assert_allclose([got.release.value, got.release.ci_low, got.release.ci_high],
                                   [want.release.value, want.release.ci_low, want.release.ci_high], rtol=1e-9)


def test_evaluator_without_declared_state_runs_in_one_pass():
    class ImagesPerBatch(Evaluator):  # a plugin that keeps its state by its own reset(), undeclared
        name = "images_per_batch"

        def reset(self):
            self.images, self.batches = 0, 0

        def update(self, release):
            self.images += len(release)
            self.batches += 1

        def compute(self):
            return self.measurement(Estimate(self.images / self.batches, n=self.images, method="images per batch"))

    executor = ShardedLocal(count=3)
    measurement = executor.evaluate(ImagesPerBatch(), _plate_release(), BATCH)
    assert ImagesPerBatch().state_rules() == {} and executor.sent == []
    assert measurement.release.value == pytest.approx(10 / 3)


def test_add_state_checks_its_rule():
    with pytest.raises(ConfigError, match="merge must be one of"):
        SSIM().add_state("_x", 0, merge="max")
    with pytest.raises(ConfigError, match="needs a list default"):
        SSIM().add_state("_x", 0, merge="cat")
    evaluator = SSIM()
    evaluator.add_state("_seen", set(), merge=lambda values: set().union(*values))
    evaluator._seen.add("a")
    evaluator.reset()
    assert evaluator._seen == set()  # reset restores a copy of the default, never the default itself


def test_reservoir_merge_equals_one_pass_while_everything_fits():
    rows = np.arange(30, dtype=float)[:, None]
    one = PairReservoir(40, seed=3)
    parts = [PairReservoir(40, seed=3) for _ in range(3)]
    for i, part in enumerate(parts):
        part.update(rows[10 * i : 10 * i + 10], -rows[10 * i : 10 * i + 10])
    one.update(rows, -rows)
    merged = PairReservoir.merged(parts)
    assert all(np.array_equal(a, b) for a, b in zip(merged.arrays(), one.arrays())) and merged.complete


def test_reservoir_merge_beyond_capacity_is_uniform():
    counts = np.zeros(60)
    for seed in range(300):
        parts = [PairReservoir(10, seed=seed) for _ in range(2)]
        parts[0].update(np.arange(20.0)[:, None], -np.arange(20.0)[:, None])  # 20 rows seen, 10 kept
        parts[1].update(np.arange(20.0, 60.0)[:, None], -np.arange(20.0, 60.0)[:, None])  # 40 seen, 10 kept
        merged = PairReservoir.merged(parts)
        a, b = merged.arrays()
        assert a.shape == (10, 1) and np.all(a == -b) and merged.seen == 60 and len(np.unique(a)) == 10
        counts[a[:, 0].astype(int)] += 1
    # each row is kept with probability 10/60 whichever part saw it: 50 expected of 300, sd ~6.5
    assert abs(counts[:20].mean() - 50) < 6 and abs(counts[20:].mean() - 50) < 6
    assert counts.min() > 20 and counts.max() < 85


def test_inception_score_merge_keeps_the_round_robin_groups():
    logits = np.random.default_rng(0).normal(size=(23, 7))
    one = SplitInceptionScore(4)
    one.update(logits)
    parts = [SplitInceptionScore(4) for _ in range(3)]
    for part, rows in zip(parts, (logits[:5], logits[5:6], logits[6:])):  # shards of odd sizes shift the groups
        part.update(rows)
    np.testing.assert_allclose(SplitInceptionScore.merged(parts).scores(), one.scores(), rtol=1e-12)


def test_local_executor_is_the_default():
    assert isinstance(_audit().executor, LocalExecutor)
    assert Executor().map(lambda a, b: a + b, [(1, 2), (3, 4)]) == [3, 7]


def test_cli_ray_option():
    from anonaudit.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["run", "audit.yaml"]).ray is None  # local
    assert parse(["run", "audit.yaml", "--ray"]).ray == ""  # this machine's cluster, or a new local instance
    assert parse(["run", "audit.yaml", "--ray", "10.0.0.1:6379"]).ray == "10.0.0.1:6379"
