"""Interrupted audits: a real SIGKILL mid-run, then a resume that recomputes only unfinished units,
finds no partial files, and ends with the same table as an uninterrupted run. Also: failed units
are retried, unreadable unit files recomputed, and another audit's units are never reused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anonaudit.anonymizers.classical import GaussianBlur, Mask, Pixelate
from anonaudit.attacks.base import Attack, AttackMetric, AttackResult
from anonaudit.audit import Audit
from anonaudit.data.imageset import ImageSet
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.errors import AuditError
from anonaudit.evaluators.fidelity import PSNR, SSIM
from anonaudit.stats import proportion

REPO = Path(__file__).resolve().parents[1]


class SlowProbe(Attack):
    """A slow attack that logs each run to ``log`` and reports seeded random and pixel-based rates.

    ``fail_if`` names a file: while it exists, the attack raises (a transient failure).
    """

    name = "slow_probe"

    def __init__(self, log: str = "", delay: float = 0.0, fail_if: str = ""):
        self.log = log
        self.delay = delay
        self.fail_if = fail_if

    def run(self, release):
        time.sleep(self.delay)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps([release.name, release.params], sort_keys=True) + "\n")
        if self.fail_if and os.path.exists(self.fail_if):
            raise RuntimeError(f"transient failure on {release.name}")
        coin = proportion(np.random.random(len(release)) < 0.5)  # noqa: NPY002 - the global RNG the unit's seed sets
        changed = proportion([not np.array_equal(*release.pair(i)) for i in range(len(release))])
        same = proportion([False] * len(release))
        return AttackResult(
            self.name, [AttackMetric("coin", coin, coin, 0.5), AttackMetric("changed", changed, same, 0.0)]
        )


def runs_per_target(log: Path) -> Counter:
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


def build_audit(log: str, delay: float) -> Audit:
    """The audit both the killed subprocess and the test run: 3 targets x 3 components."""
    data = synthetic_plates(n=20, seed=0)
    targets = [GaussianBlur(sigma=2), Pixelate(block=8), Mask()]
    return Audit(data, targets, attacks=[SlowProbe(log, delay)], evaluators=[SSIM(), PSNR()], seed=0, name="resume")


CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("resume_helpers", sys.argv[1])
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
helpers.build_audit(sys.argv[3], float(sys.argv[4])).run(sys.argv[2], show_progress=False)
"""


def unit_files(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("units/*/*.json") if p.name != "release.json")


def without_seconds(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["seconds"]).reset_index(drop=True)


def test_sigkill_mid_audit_then_resume(tmp_path):
    out, log, delay = tmp_path / "run", tmp_path / "probe.log", 0.3
    env = dict(os.environ, ANONAUDIT_PROGRESS="0")
    child = subprocess.Popen([sys.executable, "-c", CHILD, __file__, str(out), str(log), str(delay)],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while len(unit_files(out)) < 3:  # the first target finished
        assert child.poll() is None, f"audit ended before it could be killed: {child.stdout.read().decode()[-2000:]}"
        assert time.time() < deadline, "audit made no progress"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL

    for path in out.rglob("*.json"):  # atomic writes: every stored file is complete
        json.loads(path.read_text())
    finished = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in unit_files(out)}
    assert 3 <= len(finished) < 9 and not (out / "results.csv").exists()
    probes_done = {json.loads(p.read_text())[0]["target_label"] for p in finished if "slow-probe" in p.name}
    runs_at_kill = runs_per_target(log)

    audit = build_audit(str(log), delay)
    resumed = audit.run(out, show_progress=False)

    assert len(unit_files(out)) == 9
    for path, (mtime, content) in finished.items():  # finished units were not recomputed
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == content, path
    runs_after = runs_per_target(log)
    for target in audit.targets:
        entry = json.dumps([target.name, target.get_params()], sort_keys=True)
        expected = 0 if target.label() in probes_done else 1
        assert runs_after[entry] - runs_at_kill[entry] == expected, target.label()
    for path in out.rglob("*.json"):
        json.loads(path.read_text())

    fresh = build_audit(str(log), delay).run(tmp_path / "fresh", show_progress=False)  # same log: same label
    assert (
        len(fresh.table) == len(resumed.table) == 3 * 10
    )  # 5 release rows + 2 probe + ssim + psnr, psnr_identical_pairs
    pd.testing.assert_frame_equal(without_seconds(resumed.table), without_seconds(fresh.table))
    saved = pd.read_csv(out / "results.csv")
    assert len(saved) == len(resumed.table) and (saved["status"] == "ok").all()


# -- in-process resume rules -------------------------------------------------------------------------------
def tiny_data(seed: int = 0, n: int = 6) -> ImageSet:
    rng = np.random.default_rng(seed)
    return ImageSet.from_arrays([rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(n)], name="tiny")


def tiny_audit(tmp_path: Path, data: ImageSet | None = None, seed: int = 0) -> Audit:
    probe = SlowProbe(str(tmp_path / "probe.log"), 0.0, fail_if=str(tmp_path / "broken"))
    return Audit(data or tiny_data(), [GaussianBlur(sigma=2), Mask()], attacks=[probe], evaluators=[PSNR()], seed=seed)


def test_failed_units_are_retried_on_resume_and_finished_ones_kept(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "broken").touch()
    first = tiny_audit(tmp_path).run(out, show_progress=False)
    failed = first.table[first.table["status"] == "failed"]
    assert sorted(failed["target"]) == ["gaussian_blur", "mask"] and failed["message"].str.contains("transient").all()
    psnr_files = {p: p.stat().st_mtime_ns for p in out.glob("units/*/evaluator-psnr-*.json")}
    (tmp_path / "broken").unlink()  # the cause is fixed
    second = tiny_audit(tmp_path).run(out, show_progress=False)
    assert (second.table["status"] == "ok").all()
    assert runs_per_target(tmp_path / "probe.log").total() == 4  # 2 failed + 2 retried, nothing else
    assert {p: p.stat().st_mtime_ns for p in psnr_files} == psnr_files  # PSNR units reused
    again = tiny_audit(tmp_path).run(out, show_progress=False)
    assert runs_per_target(tmp_path / "probe.log").total() == 4  # everything finished: nothing reruns
    pd.testing.assert_frame_equal(without_seconds(again.table), without_seconds(second.table))


def test_unreadable_unit_file_is_recomputed(tmp_path):
    out = tmp_path / "out"
    first = tiny_audit(tmp_path).run(out, show_progress=False)
    victim = next(out.glob("units/mask-*/attack-slow-probe-*.json"))
    victim.write_text('[{"target": "mask", "val')  # e.g. a disk that filled up under another tool
    second = tiny_audit(tmp_path).run(out, show_progress=False)
    assert runs_per_target(tmp_path / "probe.log").total() == 3
    json.loads(victim.read_text())
    pd.testing.assert_frame_equal(without_seconds(second.table), without_seconds(first.table))


@pytest.mark.parametrize("change", ["data", "seed"])
def test_units_of_another_audit_are_never_reused(tmp_path, change):
    out = tmp_path / "out"
    tiny_audit(tmp_path).run(out, show_progress=False)
    other = tiny_audit(tmp_path, data=tiny_data(seed=1)) if change == "data" else tiny_audit(tmp_path, seed=7)
    with pytest.raises(AuditError, match=f"holds results of a different audit \\(differs in: .*{change}"):
        other.run(out, show_progress=False)
    replaced = other.run(out, resume=False, show_progress=False)
    assert runs_per_target(tmp_path / "probe.log").total() == 4
    assert (
        other.run(out, show_progress=False).table.drop(columns="seconds").equals(replaced.table.drop(columns="seconds"))
    )
    assert runs_per_target(tmp_path / "probe.log").total() == 4  # the replaced units now resume


def test_partly_resumed_target_keeps_the_row_order_of_a_fresh_run(tmp_path):
    out = tmp_path / "out"
    first = tiny_audit(tmp_path).run(out, show_progress=False)
    next(out.glob("units/gaussian-blur-*/attack-slow-probe-*.json")).unlink()  # first unit of the first target
    second = tiny_audit(tmp_path).run(out, show_progress=False)
    assert runs_per_target(tmp_path / "probe.log").total() == 3
    pd.testing.assert_frame_equal(without_seconds(second.table), without_seconds(first.table))
