"""``anonaudit reaudit``: a certified audit of two tiny plate folders reruns in a fresh process and
reproduces; a changed or missing file is refused and named; a changed environment is reported; a
certified value that does not come back gives DIFFERS naming the row; the demo's certificate
reproduces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from anonaudit.cli import main
from anonaudit.datasets import synthetic_plates
from anonaudit.provenance import sha256_file
from anonaudit.verdicts.reaudit import compare_tables, dict_differences, trained_rows


@pytest.fixture(scope="module")
def certified(tmp_path_factory) -> Path:
    """A folder holding ``data/originals`` (five synthetic plates, PNG), ``data/release`` (the same
    names blurred, JPEG) and ``run``: their audit (metadata and the utility metrics), certified by the
    strict policy (FAIL: the blur costs too much SSIM). The audit runs in a process of its own, as a
    user's does: a certificate lists every weight file its process loaded, and in the test process
    earlier tests load weights from their own temporary files."""
    base = tmp_path_factory.mktemp("reaudit")
    plates = synthetic_plates(n=5, seed=3)
    originals, release = base / "data" / "originals", base / "data" / "release"
    originals.mkdir(parents=True)
    release.mkdir()
    for i in range(len(plates)):
        Image.fromarray(plates[i]).save(originals / f"car{i}.png")
        Image.fromarray(cv2.GaussianBlur(plates[i], (0, 0), 4)).save(release / f"car{i}.jpg", quality=90)
    done = subprocess.run([sys.executable, "-m", "anonaudit", "audit", str(originals), str(release), "--kind", "plates",
                           "--output", str(base / "run"), "-q"], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "ANONAUDIT_PROGRESS": "0"})
    assert done.returncode == 1, done.stdout + done.stderr
    return base


def doctored(certified: Path, tmp_path: Path, edit=None, table=None) -> Path:
    """A copy of the certified run folder with ``edit(certificate)`` applied and, with ``table``, its
    results table replaced (the certificate's results_sha256 updated to match)."""
    run = tmp_path / "certified"
    shutil.copytree(certified / "run", run, ignore=shutil.ignore_patterns("units", "cache.sqlite", "examples"))
    cert = json.loads((run / "certificate.json").read_text())
    if table is not None:
        table.to_csv(run / "results.csv", index=False)
        cert["manifest"]["results_sha256"] = sha256_file(run / "results.csv")
    if edit is not None:
        edit(cert)
    (run / "certificate.json").write_text(json.dumps(cert))
    return run


def reaudit_cli(*args: str) -> int:
    return main(["reaudit", *args, "-q"])


def test_a_certified_audit_reproduces_in_a_fresh_process(certified, tmp_path):
    out = tmp_path / "again"
    env = {**os.environ, "ANONAUDIT_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-m", "anonaudit", "reaudit", str(certified / "run" / "certificate.json"),
                           "--output", str(out), "--root", str(certified), "-q"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.rstrip().splitlines()
    assert lines[-1] == "REPRODUCED" and "verdict: certified FAIL, now FAIL" in lines
    report = json.loads((out / "reaudit.json").read_text())
    assert (
        report["outcome"] == "REPRODUCED"
        and report["rows"] == []
        and report["verdicts"] == {"certified": "FAIL", "now": "FAIL"}
    )
    assert (
        report["rows_compared"] == len(pd.read_csv(certified / "run" / "results.csv")) and report["trained_rows"] == 0
    )
    assert (out / "certificate.json").is_file() and json.loads((out / "verdict.json").read_text())["overall"] == "FAIL"
    assert not (certified / "run" / "reaudit.json").exists()  # the certified folder is left as it was


def test_moved_data_is_reread_under_the_new_root_and_a_changed_file_refused(certified, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(certified / "data", moved)
    assert reaudit_cli(str(certified / "run"), "--data", str(moved), "--output", str(tmp_path / "ok")) == 0
    printed = capsys.readouterr().out
    assert f"{certified / 'data'} read as {moved}" in printed and printed.rstrip().endswith("REPRODUCED")
    assert json.loads((tmp_path / "ok" / "reaudit.json").read_text())["data_mapping"] == {
        "recorded": str(certified / "data"), "now": str(moved)}

    tampered = moved / "release" / "car1.jpg"
    data = bytearray(tampered.read_bytes())
    data[-3] ^= 1
    tampered.write_bytes(bytes(data))
    (moved / "originals" / "car2.png").unlink()
    assert reaudit_cli(str(certified / "run"), "--data", str(moved), "--output", str(tmp_path / "no")) == 4
    err = capsys.readouterr().err
    assert "re-audit refused: 2 file(s)" in err
    assert f"{tampered}: changed" in err and f"{moved / 'originals' / 'car2.png'}: missing" in err
    assert not (tmp_path / "no").exists()  # refused before anything ran
    # Without --data the recorded files are untouched: the certificate's own data still reproduces.
    assert json.loads((certified / "run" / "certificate.json").read_text())["manifest"]["released"]


def test_a_changed_environment_is_named_with_both_versions(certified, tmp_path, capsys):
    def edit(cert):
        cert["manifest"]["versions"]["numpy"] = "1.0.0"
        cert["manifest"]["environment"] = {"threads": {"torch": 99}}

    run = doctored(certified, tmp_path, edit)
    assert reaudit_cli(str(run), "--output", str(tmp_path / "again"), "--root", str(certified)) == 0
    printed = capsys.readouterr().out
    assert f"versions.numpy: 1.0.0 (certified) -> {np.__version__} (now)" in printed
    assert "environment.threads.torch: 99 (certified) -> " in printed  # a generic record, compared key by key
    assert printed.rstrip().endswith("REPRODUCED")  # the numbers came back: the differences are reported, not judged
    report = json.loads((tmp_path / "again" / "reaudit.json").read_text())
    assert any(d.startswith("versions.numpy: 1.0.0") for d in report["environment_differences"])


def test_a_certified_value_that_does_not_come_back_differs(certified, tmp_path, capsys):
    table = pd.read_csv(certified / "run" / "results.csv")
    ssim = table.index[(table["component"] == "ssim") & (table["metric"] == "ssim")][0]
    old = table.loc[ssim, "value"]
    table.loc[ssim, "value"] = old + 0.05
    run = doctored(certified, tmp_path, table=table)
    assert reaudit_cli(str(run), "--output", str(tmp_path / "again"), "--root", str(certified)) == 1
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith("DIFFERS") and "1 row(s) differ:" in printed
    assert f"| evaluator | ssim/ssim [identical]: value {old + 0.05:.10g} -> {old:.10g}" in printed
    (row,) = json.loads((tmp_path / "again" / "reaudit.json").read_text())["rows"]
    assert row["certified"]["value"] == pytest.approx(old + 0.05) and row["now"]["value"] == pytest.approx(old)


def test_a_results_table_that_changed_since_certification_is_refused(certified, tmp_path, capsys):
    run = doctored(certified, tmp_path)
    with (run / "results.csv").open("a") as f:
        f.write("\n")
    assert reaudit_cli(str(run / "certificate.json"), "--output", str(tmp_path / "again")) == 4
    assert f"{run / 'results.csv'}: the certified results table changed" in capsys.readouterr().err


def test_a_policy_whose_text_changed_is_refused(certified, tmp_path, capsys):
    run = doctored(certified, tmp_path, lambda cert: cert["manifest"]["policy"].update(sha256="0" * 64))
    assert reaudit_cli(str(run), "--output", str(tmp_path / "again"), "--root", str(certified)) == 4
    assert "policy 'strict-public-release': no text with the certified sha256 " + "0" * 64 in capsys.readouterr().err


def test_weights_are_found_in_this_environment_and_a_changed_one_refused(certified, tmp_path, capsys):
    weights = json.loads((certified / "run" / "certificate.json").read_text())["manifest"]["weights"]
    packaged = next(w for w in weights if "site-packages" in Path(w["path"]).parts)
    tail = Path(packaged["path"]).parts[Path(packaged["path"]).parts.index("site-packages"):]

    def elsewhere(cert):  # the audit ran in another checkout's virtual environment
        (w,) = [w for w in cert["manifest"]["weights"] if w["path"] == packaged["path"]]
        w["path"] = str(Path("/elsewhere/.venv/lib/python3.11").joinpath(*tail))

    moved = doctored(certified, tmp_path / "a", elsewhere)
    assert reaudit_cli(str(moved), "--output", str(tmp_path / "again"), "--root", str(certified)) == 0
    assert capsys.readouterr().out.rstrip().endswith("REPRODUCED")

    def changed(cert):
        (w,) = [w for w in cert["manifest"]["weights"] if w["path"] == packaged["path"]]
        w["sha256"] = "f" * 64

    run = doctored(certified, tmp_path / "b", changed)
    assert reaudit_cli(str(run), "--output", str(tmp_path / "no"), "--root", str(certified)) == 4
    assert (
        f"{packaged['path']}: model weight changed (sha256 {packaged['sha256']}, certified {'f' * 64})"
        in capsys.readouterr().err
    )


def _rows(**overrides) -> pd.DataFrame:
    """Two rows: a deterministic SSIM of a blur and a gender attack's accuracy (a trained classifier)."""
    base = {"target": "gaussian_blur", "target_label": "blur", "kind": "evaluator", "component": "ssim",
            "component_label": "ssim", "metric": "ssim", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 40,
            "status": "ok", "seconds": 1.0}
    gender = {**base, "kind": "attack", "component": "gender", "component_label": "gender", "metric": "accuracy",
              "value": 0.70, "ci_low": 0.60, "ci_high": 0.80}
    return pd.DataFrame([{**base, **overrides.get("ssim", {})}, {**gender, **overrides.get("gender", {})}])


def test_the_comparison_rules():
    same, compared, trained = compare_tables(_rows(), _rows(ssim={"seconds": 9.0}))
    assert same == [] and compared == 2 and trained == 1  # seconds ignored
    within, _, _ = compare_tables(_rows(), _rows(gender={"value": 0.75, "ci_low": 0.66, "ci_high": 0.84}))
    assert within == []  # a trained row inside the other run's CI, and the other way round
    (outside,), _, _ = compare_tables(_rows(), _rows(gender={"value": 0.85, "ci_low": 0.76, "ci_high": 0.92}))
    assert outside.rule == "within CI" and "outside the certified 95% CI [0.6, 0.8]" in outside.why
    (moved,), _, _ = compare_tables(_rows(), _rows(ssim={"value": 0.5 + 1e-6}))
    assert (
        moved.rule == "identical"
        and moved.key == "blur | evaluator | ssim/ssim"
        and moved.why.startswith("value 0.5 ->")
    )
    (gone, new), _, _ = compare_tables(_rows(), _rows(ssim={"metric": "ms_ssim"}))
    assert (gone.why, new.why) == ("missing from the new results", "not in the certified results")


def test_every_row_of_a_trainable_target_depends_on_training():
    rows = _rows()
    rows.loc[0, "target"] = "pose_face"
    assert trained_rows(rows).tolist() == [True, True]
    assert trained_rows(_rows()).tolist() == [False, True]


def test_environment_records_are_compared_key_by_key():
    assert dict_differences(
        {"versions": {"torch": "2.1", "numpy": "2.0"}}, {"versions": {"torch": "2.2", "numpy": "2.0"}}
    ) == ["versions.torch: 2.1 (certified) -> 2.2 (now)"]
    assert dict_differences({"environment": {"device": "cpu"}}, {}) == [
        "environment.device: cpu (certified) -> absent (now)"
    ]


def test_the_demo_certificate_reproduces(tmp_path, capsys):
    assert main(["demo", "--n", "12", "--output", str(tmp_path / "demo"), "-q"]) == 0
    capsys.readouterr()
    assert reaudit_cli(str(tmp_path / "demo"), "--output", str(tmp_path / "again")) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith("REPRODUCED") and "in-memory images differ" not in printed
    report = json.loads((tmp_path / "again" / "reaudit.json").read_text())
    assert report["rows_compared"] > 50 and report["verdicts"]["certified"] == report["verdicts"]["now"]
