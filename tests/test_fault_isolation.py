"""Fault isolation: a component or target that fails, or a model that is unavailable, costs only its
own unit; everything else is computed, saved and reported. Plus the on_error policy on bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from anonaudit.anonymizers.base import Anonymizer
from anonaudit.anonymizers.classical import GaussianBlur, Mask, Pixelate
from anonaudit.attacks.base import Attack, AttackMetric, AttackResult
from anonaudit.audit import Audit
from anonaudit.data.imageset import ImageSet
from anonaudit.errors import AuditError, ImageReadError, ModelUnavailableError
from anonaudit.evaluators.fidelity import PSNR
from anonaudit.registry import ATTACKS, DATASETS
from anonaudit.reports.html import write_html_report
from anonaudit.results import Results
from anonaudit.stats import proportion


@ATTACKS.register("fault_probe")
class FaultProbe(Attack):
    """Succeeds everywhere except on releases made by ``fail_on`` (an anonymizer name)."""

    criteria = ("singling_out",)
    attacker_holds = ("release",)

    def __init__(self, fail_on: str = "pixelate"):
        self.fail_on = fail_on

    def run(self, release):
        if release.name == self.fail_on:
            raise RuntimeError(f"probe exploded on {release.name}")
        changed = proportion([not np.array_equal(*release.pair(i)) for i in range(len(release))])
        return AttackResult(self.name, [AttackMetric("changed", changed, proportion([False] * len(release)), 0.0)])


class NeedsWeights(Attack):
    """An attack whose model file is absent."""

    name = "needs_weights"

    def run(self, release):
        raise ModelUnavailableError("test-net", "weights not in the cache", "anonaudit models fetch test-net")


class Broken(Anonymizer):
    """A target that crashes while anonymizing."""

    name = "broken_target"

    def anonymize_image(self, image, record):
        raise ZeroDivisionError("bad kernel")


def data(n: int = 8) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet.from_arrays([rng.integers(0, 256, (16, 20, 3), dtype=np.uint8) for _ in range(n)], name="noise")


def test_attack_failing_on_one_target_loses_nothing_else(tmp_path):
    targets = [GaussianBlur(sigma=2), Pixelate(block=4), Mask()]
    audit = Audit(data(), targets, attacks=[ATTACKS.create("fault_probe", fail_on="pixelate")], evaluators=[PSNR()])
    results = audit.run(tmp_path / "out", show_progress=False)
    t = results.table
    failed = t[t["status"] == "failed"]
    assert len(failed) == 1
    row = failed.iloc[0]
    assert (row["target_label"], row["component"], row["kind"]) == ("pixelate(block=4)", "fault_probe", "attack")
    assert "RuntimeError: probe exploded on pixelate" in row["message"]
    ok = t[t["status"] == "ok"]
    for label in ("gaussian_blur(sigma=2)", "pixelate(block=4)", "mask"):
        assert ((ok["target_label"] == label) & (ok["metric"] == "psnr")).sum() == 1, label
    probe = ok[ok["component"] == "fault_probe"].set_index("target_label")["value"]
    assert probe.to_dict() == {"gaussian_blur(sigma=2)": 1.0, "mask": 1.0}  # every image changed
    saved = Results.load(tmp_path / "out")  # on disk too, with the failure
    assert len(saved.table) == len(t) and len(saved.failures()) == 1
    unit = next((tmp_path / "out" / "units").glob("pixelate-*/attack-fault-probe-*.json"))
    assert json.loads(unit.read_text())[0]["status"] == "failed"
    html = write_html_report(results).read_text(encoding="utf-8")
    section = html[html.index("Skipped, unavailable and failed"):]
    assert "pixelate(block=4)" in section and "probe exploded on pixelate" in section


def test_failing_target_and_unavailable_model_are_recorded_and_reported(tmp_path):
    audit = Audit(data(), [Broken(), Mask()], attacks=[NeedsWeights()], evaluators=[PSNR()])
    results = audit.run(tmp_path / "out", show_progress=False)
    t = results.table
    target_row = t[t["target"] == "broken_target"]
    assert len(target_row) == 1 and target_row.iloc[0]["status"] == "failed"
    assert "ZeroDivisionError: bad kernel" in target_row.iloc[0]["message"]
    missing = t[(t["target"] == "mask") & (t["component"] == "needs_weights")].iloc[0]
    assert missing["status"] == "unavailable" and "anonaudit models fetch test-net" in missing["message"]
    mask_psnr = t[(t["target"] == "mask") & (t["component"] == "psnr")].iloc[0]
    assert mask_psnr["status"] == "ok" and mask_psnr["n"] == 8
    section = write_html_report(results).read_text(encoding="utf-8").split("Skipped, unavailable and failed")[1]
    assert "bad kernel" in section and "unavailable" in section and "anonaudit models fetch test-net" in section


def test_on_error_raise_names_the_unit_and_keeps_finished_units(tmp_path):
    targets = [GaussianBlur(sigma=2), Pixelate(block=4), Mask()]
    audit = Audit(data(), targets, attacks=[FaultProbe("pixelate")], evaluators=[PSNR()], on_error="raise")
    with pytest.raises(AuditError, match=r"attack fault_probe on pixelate\(block=4\) failed: probe exploded"):
        audit.run(tmp_path / "out", show_progress=False)
    blur_units = list((tmp_path / "out" / "units").glob("gaussian-blur-*/*.json"))
    assert len(blur_units) == 3  # release info, probe and PSNR of the target before the failure


# -- on_error on a folder with one corrupt file ---------------------------------------------------------
@pytest.fixture
def folder_with_one_corrupt_file(tmp_path):
    root = tmp_path / "plates"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(root / f"car{i}.png")
    good = (root / "car2.png").read_bytes()
    (root / "car2.png").write_bytes(good[: len(good) // 3])  # truncated mid-file
    return root


def test_on_error_skip_records_the_file_and_reason(tmp_path, folder_with_one_corrupt_file):
    images = DATASETS.create("labeled_folder", root=str(folder_with_one_corrupt_file), labels=None)
    assert len(images) == 5
    results = Audit(images, [Mask()], evaluators=[PSNR()], on_error="skip").run(tmp_path / "out", show_progress=False)
    t = results.table
    skipped = t[t["kind"] == "data"]
    assert len(skipped) == 1 and skipped.iloc[0]["status"] == "failed"
    message = skipped.iloc[0]["message"]
    assert str(folder_with_one_corrupt_file / "car2.png") in message and "truncated" in message
    psnr = t[t["component"] == "psnr"].iloc[0]
    assert psnr["status"] == "ok" and psnr["n"] == 4  # the other four images were audited
    assert (
        "car2.png" in write_html_report(results).read_text(encoding="utf-8").split("Skipped, unavailable and failed")[1]
    )


def test_on_error_raise_stops_with_the_file_named(tmp_path, folder_with_one_corrupt_file):
    images = ImageSet.from_folder(folder_with_one_corrupt_file)
    audit = Audit(images, [Mask()], evaluators=[PSNR()], on_error="raise")
    with pytest.raises(ImageReadError) as info:
        audit.run(tmp_path / "out", show_progress=False)
    assert info.value.path == str(folder_with_one_corrupt_file / "car2.png") and "truncated" in info.value.problem
