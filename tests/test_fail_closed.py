"""Fail closed: a release with files the audit could not fully read never PASSes, and says which files.

Real ``anonaudit audit`` runs on tiny generated plate folders: six good pairs (a solid mask, no
metadata) plus one planted file: an animated GIF whose second frame is the original, a truncated
JPEG still carrying GPS EXIF, or a file that does not decode at all. The policy's only criterion is
``metadata/files_with_leak == 0`` (plus, where stated, one on SSIM that the mask meets).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import ExifTags, Image
from plate_folders import write_plates

from anonaudit.attacks.metadata import scan_file
from anonaudit.cli import main
from anonaudit.results import Results, row
from anonaudit.verdicts import FAIL, NOT_TESTED, PASS, certify
from anonaudit.verdicts.policy import parse_policy

METADATA_ONLY = (
    "name: metadata-only\ncriteria:\n  - id: metadata-leak\n    select: metadata/files_with_leak\n    require: '== 0'\n"
)
WITH_SSIM = METADATA_ONLY + "  - id: ssim-any\n    select: ssim/ssim\n    require: '>= 0'\n"


def gps_exif() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return exif.tobytes()


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path, list[np.ndarray]]:
    """Seven synthetic plates in ``orig/`` (PNG) and six of them released masked (black, no
    metadata) in ``rel/``; the seventh's released file is left to each test."""
    plates: list[np.ndarray] = []

    def masked(i: int, plate: np.ndarray, rel: Path) -> None:
        plates.append(plate)
        if i < 6:
            Image.fromarray(np.zeros_like(plate)).save(rel / f"car{i}.png")

    orig, rel, _, _ = write_plates(tmp_path, 7, masked)
    return orig, rel, plates


def audit(
    tmp_path: Path, orig: Path, rel: Path, policy: str = METADATA_ONLY, out: str = "run"
) -> tuple[int, Path, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    run = tmp_path / out
    code = main(["audit", str(orig), str(rel), "--kind", "plates", "--policy", str(path), "--output", str(run), "-q"])
    return code, run, path


def criteria(run: Path) -> dict[str, dict]:
    cert = json.loads((run / "certificate.json").read_text())
    (target,) = cert["verdict"]["targets"]
    return {c["id"]: c for c in target["criteria"]} | {
        "_files": target["files"],
        "_overall": cert["verdict"]["overall"],
    }


def test_animated_gif_hiding_the_original_is_named_and_never_passes(tmp_path, folders, capsys):
    orig, rel, plates = folders
    frames = [Image.fromarray(np.zeros_like(plates[6])), Image.fromarray(plates[6])]
    frames[0].save(rel / "car6.gif", save_all=True, append_images=frames[1:])
    code, run, _ = audit(tmp_path, orig, rel)
    printed = capsys.readouterr()
    assert code != 0
    c = criteria(run)
    assert c["_overall"] in (FAIL, NOT_TESTED) and c["metadata-leak"]["status"] == FAIL
    assert c["_files"]["counts"] == {"audited": 6, "skipped": 1}
    (skipped,) = c["_files"]["not_audited"]
    assert Path(skipped["file"]).name == "car6.gif" and "2 frames" in skipped["reason"]
    assert [Path(f).name for f in c["metadata-leak"]["evidence"]["files"]] == ["car6.gif"]
    cert = json.loads((run / "certificate.json").read_text())
    (hashed,) = next(iter(cert["manifest"]["released_not_audited"].values()))
    assert Path(hashed["path"]).name == "car6.gif" and hashed["status"] == "skipped" and len(hashed["sha256"]) == 64
    files = pd.read_csv(run / "files.csv")
    assert files.set_index("key").loc["car6.png", "status"] == "skipped" and (files["status"] == "audited").sum() == 6
    findings = pd.read_csv(run / "findings.csv")
    gif = findings[findings["file"].str.endswith("car6.gif")]
    assert {"extra_frames", "original_image"} <= set(gif["finding"]) and set(findings["file"]) == set(gif["file"])
    assert "frame 2 of 2" in gif.set_index("finding").loc["original_image", "detail"]
    # the terminal names the file and its status, not only "1 unit(s) failed"
    assert "skipped: car6.gif" in printed.out and "car6.gif" in printed.err and "unit(s) failed" not in printed.err
    n = pd.read_csv(run / "results.csv").query("component == 'metadata' and metric == 'files_with_leak'")["n"]
    assert n.tolist() == [7]  # the GIF is counted


def test_truncated_jpeg_with_gps_is_a_gps_finding_and_fails(tmp_path, folders):
    orig, rel, plates = folders
    Image.fromarray(np.zeros_like(plates[6])).save(rel / "car6.jpg", quality=90, exif=gps_exif())
    data = (rel / "car6.jpg").read_bytes()
    (rel / "car6.jpg").write_bytes(data[: len(data) * 2 // 3])
    code, run, _ = audit(tmp_path, orig, rel)
    assert code == 1
    c = criteria(run)
    assert c["metadata-leak"]["status"] == FAIL and c["_files"]["counts"] == {"audited": 6, "skipped": 1}
    findings = pd.read_csv(run / "findings.csv")
    gps = findings[findings["finding"] == "gps"]
    assert [Path(f).name for f in gps["file"]] == ["car6.jpg"] and gps["detail"].iloc[0].startswith(
        "48.85667N 2.35083E"
    )
    assert "files_with_gps" in gps["metric"].iloc[0].split(";")
    assert "undecodable_image" in set(findings["finding"])


def test_jpeg_cut_inside_its_header_still_shows_its_gps(tmp_path):
    """Cut before its image data, a JPEG does not even open in the decoder; its EXIF block is read from
    the raw bytes, so the GPS position is still a finding."""
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.zeros((40, 120, 3), np.uint8)).save(path, quality=90, exif=gps_exif())
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xdb")])  # everything before the quantisation tables
    with pytest.raises(OSError):  # noqa: PT011 - Pillow's message for a cut JPEG differs between versions
        Image.open(path)
    findings = {f.kind: f.detail for f in scan_file(path).findings}
    assert findings["gps"].startswith("48.85667N 2.35083E")


def test_a_file_that_does_not_decode_makes_passing_criteria_not_tested(tmp_path, folders, capsys):
    orig, rel, _ = folders
    (rel / "car6.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    code, run, _ = audit(tmp_path, orig, rel, WITH_SSIM)
    out = capsys.readouterr().out
    assert code == 1
    c = criteria(run)
    assert c["metadata-leak"]["status"] == FAIL  # the file could hold anything: a leak
    ssim = c["ssim-any"]
    assert (
        ssim["status"] == NOT_TESTED
        and "car6.png (skipped" in ssim["reason"]
        and "1 released file(s)" in ssim["reason"]
    )
    assert "skipped: car6.png" in out and "files: 6 audited, 1 skipped" in out
    findings = pd.read_csv(run / "findings.csv")
    assert findings.set_index("finding").loc["undecodable_image", "file"].endswith("car6.png")


def test_a_released_file_of_another_type_is_skipped_not_ignored(tmp_path, folders):
    """A file no reader takes (here a text file) is released too: listed as skipped, so nothing passes."""
    orig, rel, plates = folders
    Image.fromarray(np.zeros_like(plates[6])).save(rel / "car6.png")
    (rel / "notes.txt").write_text("plate of car 6: ...")
    code, run, _ = audit(tmp_path, orig, rel, WITH_SSIM)
    assert code == 2
    c = criteria(run)
    assert c["_files"]["counts"] == {"audited": 7, "skipped": 1}
    assert (
        c["_files"]["not_audited"][0]["key"] == "notes.txt"
        and "not an image file" in c["_files"]["not_audited"][0]["reason"]
    )
    assert c["metadata-leak"]["status"] == NOT_TESTED and c["ssim-any"]["status"] == NOT_TESTED
    assert pd.read_csv(run / "findings.csv").empty  # not an image: nothing it could be said to leak


def test_every_file_audited_passes_and_a_run_without_files_record_does_not(tmp_path, folders, capsys):
    orig, rel, plates = folders
    Image.fromarray(np.zeros_like(plates[6])).save(rel / "car6.png")
    code, run, policy = audit(tmp_path, orig, rel, WITH_SSIM)
    assert code == 0 and criteria(run)["_overall"] == PASS
    (run / "files.csv").unlink()  # as written by an older anonaudit
    assert main(["certify", str(run), "--policy", str(policy)]) == 2
    out = capsys.readouterr().out
    c = criteria(run)
    assert c["_overall"] == NOT_TESTED and c["_files"]["recorded"] is False
    assert all("rerun the audit" in c[k]["reason"] for k in ("metadata-leak", "ssim-any"))
    assert "files: not recorded" in out


def test_results_built_by_hand_take_file_statuses_from_the_table():
    """Without a files record, a table's skipped-input and unpaired-file rows are the statuses."""
    base = {"target": "mask", "target_label": "mask", "target_id": "mask-1"}
    ok = row(**base, kind="evaluator", component="ssim", metric="ssim", value=0.9, ci_low=0.85, ci_high=0.95, n=10,
             status="ok")
    policy = parse_policy({"name": "p", "criteria": [{"id": "ssim", "select": "ssim/ssim", "require": ">= 0.5"}]})
    assert certify(Results(pd.DataFrame([ok])), policy).overall == PASS
    skipped = row(
        **base, kind="data", component="input", status="failed", message="skipped /r/x.jpg: file is empty (0 bytes)"
    )
    verdict = certify(Results(pd.DataFrame([ok, skipped])), policy)
    assert (
        verdict.overall == NOT_TESTED
        and "x.jpg (skipped: file is empty (0 bytes))" in verdict.criteria["mask"][0].reason
    )
    unpaired = row(**base, kind="target", component="release", metric="unpaired_release_files", value=2, status="ok",
                   message="stray.png")
    verdict = certify(Results(pd.DataFrame([ok, unpaired])), policy)
    assert verdict.overall == NOT_TESTED and verdict.files["mask"]["counts"] == {"unpaired": 2}
    assert verdict.to_dict()["targets"][0]["files"]["not_audited"][0]["key"] == "stray.png"
