"""Executors: the same audit gives the identical results table in this process and on Ray.

The Ray test starts a local Ray instance with 2 CPUs (the CI machine) and runs a tiny plate audit
(blur / pixelate / mask, OCR, SSIM and PSNR); every number of the table must equal the local run's.
"""

from __future__ import annotations

import pandas as pd
import pytest

from anonaudit.anonymizers.classical import GaussianBlur, Mask, Pixelate
from anonaudit.attacks.ocr import OCRReread
from anonaudit.audit import Audit
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.evaluators.fidelity import PSNR, SSIM
from anonaudit.executors import Executor, LocalExecutor, RayExecutor, merge_states, per_image, state_fields
from anonaudit.measurement import as_measurements
from anonaudit.memo import clear_memory
from anonaudit.params import clone

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


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'anonaudit[scale]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow  # about 30 s on 2 busy cores (two audits; the Ray start is in the fixture)
def test_ray_run_gives_the_local_table(ray_instance, tmp_path):
    clear_memory()
    local = _audit().run(tmp_path / "local", show_progress=False)
    clear_memory()  # the Ray run reads nothing the local run cached in this process
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
    assert state_fields(SSIM()) is not None and state_fields(PSNR()) is not None


def test_merged_evaluator_state_equals_one_pass():
    """Scoring shards of whole batches and merging equals one pass over the release."""
    plates = synthetic_plates(n=10, seed=1)
    release = _audit().targets[0].anonymize(plates, show_progress=False)
    from anonaudit.data.imageset import Release

    rel = Release(plates, release)
    for evaluator in (SSIM(), PSNR(), SSIM(region="boxes")):
        whole = clone(evaluator)(rel, batch_size=BATCH)
        parts = []
        for idx in (range(0, 4), range(4, 8), range(8, 10)):
            part = clone(evaluator)
            for batch in rel.subset(idx).batches(BATCH):
                part.update(batch)
            parts.append(part)
        merged = clone(evaluator)
        assert merge_states(merged, parts, state_fields(evaluator))
        got, want = as_measurements(merged.compute()), as_measurements(whole)
        assert [(m.metric, m.release) for m in got] == [(m.metric, m.release) for m in want]
        assert all(m.release.n > 0 for m in got)


def test_float_accumulators_are_not_merged():
    class RunningMean(SSIM):
        def reset(self):
            super().reset()
            self.total = 0.0

    assert state_fields(RunningMean()) is None


def test_local_executor_is_the_default():
    assert isinstance(_audit().executor, LocalExecutor)
    assert Executor().map(lambda a, b: a + b, [(1, 2), (3, 4)]) == [3, 7]


def test_cli_ray_option():
    from anonaudit.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["run", "audit.yaml"]).ray is None  # local
    assert parse(["run", "audit.yaml", "--ray"]).ray == ""  # this machine's cluster, or a new local instance
    assert parse(["run", "audit.yaml", "--ray", "10.0.0.1:6379"]).ray == "10.0.0.1:6379"
