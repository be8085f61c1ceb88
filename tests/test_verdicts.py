"""Policies and verdicts: threshold parsing, PASS/FAIL/NOT TESTED at and around thresholds, the
certificate's manifest, ``anonaudit certify`` exit codes, and a planted metadata-only leak that
fails the strict policy."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from PIL import ExifTags, Image

from anonaudit.anonymizers.classical import GaussianBlur
from anonaudit.attacks.metadata import MetadataLeak
from anonaudit.audit import Audit
from anonaudit.cli import main
from anonaudit.data.imageset import ImageSet, Record
from anonaudit.errors import ConfigError, DataError
from anonaudit.provenance import sha256_pixels
from anonaudit.results import Results, row, status_row
from anonaudit.stats import wilson_interval
from anonaudit.verdicts import FAIL, NOT_TESTED, PASS, Threshold, certify, load_policy, parse_policy, write_certificate


# -- policy parsing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, baseline, expected", [
    ("0.01", None, 0.01),
    ("1%", None, 0.01),
    ("2x chance", 0.004, 0.008),
    ("majority + 5 points", 0.62, 0.67),
    ("baseline + 0.05", 0.5, 0.55),
    ("1.5 * baseline - 1%", 0.2, 0.29),
    ("chance", 0.1, 0.1),
])
def test_thresholds_resolve_against_the_row_baseline(text, baseline, expected):
    assert Threshold.parse(text, "t").resolve(baseline) == pytest.approx(expected)


def test_relative_threshold_without_a_baseline_is_nan():
    assert math.isnan(Threshold.parse("2x chance", "t").resolve(float("nan")))


@pytest.mark.parametrize("item, message", [
    ({"id": "a", "select": "ocr/exact_match", "require": "about 1%"}, "must start with"),
    ({"id": "a", "select": "ocr/exact_match", "require": "<= twice chance"}, "is not a number"),
    ({"id": "a", "select": "exact_match", "require": "<= 1%"}, "component/metric"),
    ({"id": "a", "select": "ocr/x", "require": "<= 1%", "bound": "middle"}, "bound must be"),
    ({"id": "a", "select": "ocr/x", "require": "<= 1%", "kinds": ["cars"]}, "kinds must be"),
    ({"id": "a", "select": "ocr/x", "require": "<= 1%", "treshold": 1}, "unknown key"),
    ({"id": "a", "select": "ocr/x", "require": "<= 2x chance", "on": "risk"}, "already relative"),
])
def test_bad_criteria_are_clear_errors(item, message):
    with pytest.raises(ConfigError, match=message):
        parse_policy({"name": "p", "criteria": [item]}, "p.yaml")


def test_builtin_policies_load_with_their_defaults():
    strict = load_policy("strict")
    assert strict.name == "strict-public-release" and len(strict.sha256) == 64
    by_id = {c.id: c for c in strict.criteria}
    assert by_id["ocr-exact-match"].bound == "upper" and by_id["ocr-exact-match"].kinds == ("plates",)
    assert by_id["ssim"].bound == "lower" and by_id["metadata-leak"].bound == "value"
    assert {c.id for c in strict.for_kind("plates")} == {
        "ocr-exact-match",
        "membership-tpr",
        "membership-auc",
        "dp-claim",
        "metadata-leak",
        "plates-left-readable",
        "ssim",
    }
    assert by_id["membership-auc"].bound == "lower"  # a leak the sample shows; showing it safe is membership-tpr's job
    assert load_policy("research-sharing").name == "research-sharing"
    with pytest.raises(ConfigError, match="neither a built-in name"):
        load_policy("strictest")


# -- verdicts at the thresholds ------------------------------------------------------------------------------
def attack(label, component, metric, value, lo, hi, n=500, baseline=0.0, **kw):
    return row(target="t", target_label=label, kind="attack", component=component, metric=metric, value=value,
               ci_low=lo, ci_high=hi, n=n, baseline=baseline, status="ok", **kw)


def utility(label, metric, value, lo, hi, n=500):
    return row(target="t", target_label=label, kind="evaluator", component="ssim", metric=metric, value=value,
               ci_low=lo, ci_high=hi, n=n, higher_is_better=True, status="ok")


POLICY = parse_policy({"name": "test", "criteria": [
    {"id": "ocr", "select": "*ocr/exact_match", "require": "<= 1%"},
    {"id": "reid", "select": "reid/*rank1", "require": "<= 2x chance"},
    {"id": "gender", "select": "gender/accuracy", "require": "<= majority + 5 points"},
    {"id": "meta", "select": "metadata/files_with_leak", "require": "== 0"},
    {"id": "ssim", "select": "ssim/ssim", "require": ">= 0.8"},
]})


def verdict_of(rows, policy=POLICY):
    return certify(Results(pd.DataFrame(rows)), policy)


def status(verdict, label, cid):
    return next(c for c in verdict.criteria[label] if c.id == cid)


def passing_rows(label):
    return [
        attack(label, "ocr", "exact_match", 0.0, 0.0, 0.01),               # upper bound exactly at 1%
        attack(label, "deblur_ocr", "exact_match", 0.002, 0.0, 0.0095),
        attack(label, "reid", "rank1", 0.01, 0.005, 0.02, baseline=0.01),   # exactly 2x chance
        attack(label, "reid", "parrot_rank1", 0.012, 0.006, 0.019, baseline=0.01),
        attack(label, "gender", "accuracy", 0.62, 0.58, 0.65, baseline=0.6),  # exactly majority + 5 points
        attack(label, "metadata", "files_with_leak", 0.0, 0.0, 0.0076),
        utility(label, "ssim", 0.85, 0.8, 0.9),                             # lower bound exactly 0.8
    ]


def test_exactly_at_every_threshold_passes():
    v = verdict_of(passing_rows("a"))
    assert [c.status for c in v.criteria["a"]] == [PASS] * 5 and v.targets["a"] == PASS and v.overall == PASS
    assert v.exit_code == 0
    ocr = status(v, "a", "ocr")
    assert ocr.component == "ocr" and ocr.bound_value == 0.01 and ocr.threshold == pytest.approx(0.01)
    assert status(v, "a", "reid").threshold == pytest.approx(0.02)


@pytest.mark.parametrize("index, replacement, cid", [
    (0, attack("a", "ocr", "exact_match", 0.0, 0.0, 0.0101), "ocr"),                         # just above
    (1, attack("a", "deblur_ocr", "exact_match", 0.001, 0.0, 0.0101), "ocr"),                # another OCR attack
    (3, attack("a", "reid", "parrot_rank1", 0.01, 0.005, 0.0201, baseline=0.01), "reid"),    # parrot just above
    (4, attack("a", "gender", "accuracy", 0.62, 0.58, 0.6501, baseline=0.6), "gender"),
    (5, attack("a", "metadata", "files_with_leak", 0.002, 0.0, 0.01), "meta"),                # one file of 500
    (6, utility("a", "ssim", 0.85, 0.7999, 0.9), "ssim"),                                     # utility just below
])
def test_just_past_a_threshold_fails(index, replacement, cid):
    rows = passing_rows("a")
    rows[index] = replacement
    v = verdict_of(rows)
    assert status(v, "a", cid).status == FAIL
    assert [c.id for c in v.criteria["a"] if c.status == FAIL] == [cid]
    assert v.targets["a"] == FAIL and v.overall == FAIL and v.exit_code == 1


def test_a_ci_straddling_a_risk_threshold_fails_though_the_value_passes():
    """0 plates of 120 read: the value is 0 but Wilson's upper bound is 3.1%: not shown to be <= 1%."""
    rows = passing_rows("a")
    lo, hi = wilson_interval(0, 120)
    rows[0] = attack("a", "ocr", "exact_match", 0.0, lo, hi, n=120)
    c = status(verdict_of(rows), "a", "ocr")
    assert c.status == FAIL and c.bound_value == pytest.approx(hi) and "straddles" in c.reason
    assert "would pass with n >= 381 (has 120; exact, Wilson 95% CI)" in c.reason  # 0 of 381: upper end 0.998%
    rows[6] = utility("a", "ssim", 0.82, 0.78, 0.86)  # utility too: judged on its lower bound
    assert status(verdict_of(rows), "a", "ssim").status == FAIL


def test_unavailable_failed_or_absent_attacks_are_not_tested_and_cannot_pass():
    rows = passing_rows("a")
    rows[2:4] = [status_row({"target": "t", "target_label": "a", "component": "reid"}, "attack", "unavailable",
                            "weights not in the cache (anonaudit models fetch arcface-r50)")]
    v = verdict_of(rows)
    reid = status(v, "a", "reid")
    assert reid.status == NOT_TESTED and "unavailable" in reid.reason and "models fetch" in reid.reason
    assert v.targets["a"] == NOT_TESTED and v.overall == NOT_TESTED and v.exit_code == 2
    # one OCR attack ran and passed, the other failed: not tested (the strongest attack is unknown)
    rows = passing_rows("a")
    rows[1] = status_row({"target": "t", "target_label": "a", "component": "deblur_ocr"}, "attack", "failed", "boom")
    assert status(verdict_of(rows), "a", "ocr").status == NOT_TESTED
    # absent altogether
    rows = [r for r in passing_rows("a") if r["component"] != "gender"]
    c = status(verdict_of(rows), "a", "gender")
    assert c.status == NOT_TESTED and "no attack or evaluator matching 'gender/accuracy'" in c.reason
    # ran but measured nothing (a release held in memory has no files to scan)
    rows = passing_rows("a")
    rows[5] = attack("a", "metadata", "files_with_leak", float("nan"), float("nan"), float("nan"), n=0)
    assert "n=0" in status(verdict_of(rows), "a", "meta").reason
    # the target itself failed
    rows = [status_row({"target": "t", "target_label": "a", "component": "gan"}, "target", "failed", "no checkpoint")]
    v = verdict_of(rows)
    assert all(c.status == NOT_TESTED and "no checkpoint" in c.reason for c in v.criteria["a"])


def test_a_failure_outranks_untested_criteria_and_targets():
    fail = passing_rows("a")
    fail[0] = attack("a", "ocr", "exact_match", 0.3, 0.25, 0.35)
    untested = [r for r in passing_rows("b") if r["component"] != "ssim"]
    v = verdict_of(fail + untested + passing_rows("c"))
    assert v.targets == {"a": FAIL, "b": NOT_TESTED, "c": PASS} and v.overall == FAIL
    assert verdict_of(untested + passing_rows("c")).overall == NOT_TESTED


def test_risk_criteria_use_the_risk_ci():
    policy = parse_policy(
        {"name": "r", "criteria": [{"id": "risk", "select": "*/*", "on": "risk", "require": "<= 0.1"}]}
    )
    rows = [attack("a", "metadata", "files_with_gps", 0.1, 0.055, 0.17, n=120, risk=0.1, risk_ci_low=0.055,
                   risk_ci_high=0.17, risk_kind="new_leak")]
    rows.append(
        status_row({"target": "t", "target_label": "a", "component": "fid"}, "evaluator", "unavailable", "no weights")
    )
    c = status(verdict_of(rows, policy), "a", "risk")
    assert c.status == FAIL and c.bound_value == 0.17 and c.value == 0.1
    rows[0].update(risk=0.02, risk_ci_low=0.0, risk_ci_high=0.08)
    assert status(verdict_of(rows, policy), "a", "risk").status == PASS  # an evaluator has no risk to miss


def test_kind_selects_the_criteria_that_apply():
    strict = load_policy("strict")
    rows = passing_rows("a")
    plates = certify(Results(pd.DataFrame(rows)), strict, kind="plates")
    assert [c.id for c in plates.criteria["a"]] == [
        "ocr-exact-match",
        "membership-tpr",
        "membership-auc",
        "dp-claim",
        "metadata-leak",
        "plates-left-readable",
        "ssim",
    ]
    assert status(plates, "a", "membership-tpr").status == NOT_TESTED  # no membership attack exists yet
    results = Results(pd.DataFrame(rows), manifest={"config": {"data": {"name": "lfw"}}})
    assert certify(results, strict).kind == "faces"
    results.manifest = {"config": {"kind": "plates", "data": {"name": "labeled_folder"}}}
    assert certify(results, strict).kind == "plates"


def test_verdict_json_is_plain_json():
    v = verdict_of(passing_rows("a"))
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert d["overall"] == PASS and d["policy"]["name"] == "test"
    crit = d["targets"][0]["criteria"][0]
    assert crit["id"] == "ocr" and crit["status"] == PASS and crit["bound_value"] == 0.01


# -- a real audit: planted metadata-only leak, certificate, CLI ---------------------------------------------
def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    g = exif.get_ifd(ExifTags.IFD.GPSInfo)
    g[1], g[2], g[3], g[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    return exif


class Reencode(GaussianBlur):
    """A test release written to files: the images as JPEG (quality 95), the first ``gps`` with a GPS position."""

    name = "reencode_jpeg"

    def __init__(self, sigma: float = 1.0, folder: str = "", gps: int = 0):
        super().__init__(sigma=sigma)
        self.folder = folder
        self.gps = gps

    def anonymize(self, images, show_progress=True):
        from pathlib import Path

        records = []
        for i, rec in enumerate(images.records):
            path = Path(self.folder) / f"out{i:03d}.jpg"
            Image.fromarray(images[i]).save(path, "JPEG", quality=95, **({"exif": gps_exif()} if i < self.gps else {}))
            records.append(Record(rec.key, path=path))
        return ImageSet(records, name="reencoded")


@pytest.fixture
def planted_run(tmp_path):
    """An audit (metadata + SSIM) of 40 synthetic plates written as PNG files and a release that only
    re-encodes them as JPEG (SSIM stays high), ``gps`` files of it with a GPS position."""
    from anonaudit.datasets import synthetic_plates
    from anonaudit.evaluators.fidelity import SSIM

    originals = tmp_path / "originals"
    originals.mkdir()
    plates = synthetic_plates(n=40, seed=1)
    recs = []
    for i in range(len(plates)):
        path = originals / f"car{i:03d}.png"
        Image.fromarray(plates[i]).save(path)
        recs.append(Record(f"car{i:03d}.png", path=path))

    def run(gps: int, name: str):
        (tmp_path / name / "files").mkdir(parents=True)
        audit = Audit(ImageSet(recs, name="cars"), [Reencode(folder=str(tmp_path / name / "files"), gps=gps)],
                      attacks=[MetadataLeak()], evaluators=[SSIM()], aux_fraction=0.0,
                      config={"kind": "plates", "data": {"name": "labeled_folder"}})
        return audit.run(tmp_path / name, show_progress=False)

    return run


def test_planted_metadata_only_leak_fails_the_strict_policy(planted_run):
    results = planted_run(gps=4, name="leaky")
    v = certify(results, "strict")
    (label,) = v.criteria
    statuses = {c.id: c.status for c in v.criteria[label]}
    assert statuses == {"ocr-exact-match": NOT_TESTED, "membership-tpr": NOT_TESTED, "membership-auc": NOT_TESTED,
                        "dp-claim": NOT_TESTED, "metadata-leak": FAIL, "plates-left-readable": NOT_TESTED,
                        "ssim": PASS}
    meta = status(v, label, "metadata-leak")
    assert meta.value == pytest.approx(4 / 40) and meta.n == 40 and v.overall == FAIL
    clean = certify(planted_run(gps=0, name="clean"), "strict")
    (clean_label,) = clean.criteria
    assert {c.id: c.status for c in clean.criteria[clean_label]}["metadata-leak"] == PASS
    assert clean.overall == NOT_TESTED  # OCR and membership were not run: never a PASS


def test_certificate_hashes_inputs_released_files_and_refuses_changed_files(planted_run):
    results = planted_run(gps=4, name="leaky")
    v = certify(results, "strict")
    cert = json.loads(write_certificate(results, v).read_text())
    m = cert["manifest"]
    assert cert["verdict"]["overall"] == FAIL and m["policy"]["name"] == "strict-public-release"
    assert len(m["inputs"]["evaluation"]) == 40 and m["inputs"]["evaluation"][0]["source"] == "file"
    (released,) = m["released"].values()
    assert len(released) == 40 and {e["source"] for e in released} == {"file"}
    import hashlib
    from pathlib import Path

    first = Path(released[0]["path"])
    assert released[0]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert m["seed"] == 0 and m["config"]["kind"] == "plates" and "numpy" in m["versions"]
    assert m["code"]["anonaudit"] and m["certified"] and m["results_sha256"]
    first.write_bytes(first.read_bytes() + b"changed")
    with pytest.raises(DataError, match="changed since the audit"):
        write_certificate(results, v)


def test_in_memory_images_are_hashed_by_their_pixels(tmp_path):
    from anonaudit.anonymizers.classical import Mask
    from anonaudit.datasets import synthetic_plates

    plates = synthetic_plates(n=12, seed=0)
    results = Audit(plates, [Mask()], aux_fraction=0.0).run(tmp_path / "run", show_progress=False)
    inputs = json.loads((tmp_path / "run" / "provenance" / "inputs.json").read_text())
    assert inputs["evaluation"][3] == {
        "key": plates.keys[3],
        "sha256": sha256_pixels(plates[3]),
        "source": "pixels",
        "path": None,
    }
    assert results.manifest["weights"] == [] or all(len(w["sha256"]) == 64 for w in results.manifest["weights"])


def test_weights_loaded_from_python_are_listed(tmp_path):
    """A weight file opened during an audit (here a torch state dict) appears in the manifest with its hash."""
    torch = pytest.importorskip("torch")
    from anonaudit.provenance import record_weight_loads, sha256_file, weights_used

    record_weight_loads()
    path = tmp_path / "tiny.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    torch.load(path, weights_only=True)
    listed = {w["path"]: w for w in weights_used()}
    assert listed[str(path)]["sha256"] == sha256_file(path) and listed[str(path)]["found"] == "opened"


def test_certify_command_prints_the_table_and_exits_by_verdict(planted_run, tmp_path, capsys):
    results = planted_run(gps=4, name="leaky")
    run = str(results.output)
    assert main(["certify", run, "--policy", "strict"]) == 1
    out = capsys.readouterr().out
    assert "FAIL       metadata-leak" in out and "overall: FAIL" in out
    assert json.loads((results.output / "verdict.json").read_text())["overall"] == FAIL
    assert (results.output / "certificate.json").is_file()
    clean = str(planted_run(gps=0, name="clean").output)
    assert main(["certify", clean, "--policy", "strict"]) == 2
    own = tmp_path / "meta-only.yaml"
    own.write_text("name: meta-only\ncriteria:\n  - {id: meta, select: metadata/files_with_leak, require: '== 0'}\n")
    assert main(["certify", clean, "--policy", str(own)]) == 0
    assert main(["certify", str(tmp_path / "nowhere"), "--policy", "strict"]) == 3
    capsys.readouterr()
    released = next(results.output.glob("files/*.jpg"))
    released.write_bytes(released.read_bytes() + b"edited after the audit")
    assert main(["certify", run, "--policy", "strict"]) == 3
    captured = capsys.readouterr()
    assert (
        "overall: FAIL" in captured.out and "no certificate written" in captured.err and released.name in captured.err
    )
