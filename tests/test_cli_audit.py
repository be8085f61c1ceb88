"""``anonaudit audit ORIGINALS RELEASE``: one command from two folders to a verdict, end to end on
tiny generated folders (plates) and a handful of LFW faces (shared data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from plate_folders import write_plates

from anonaudit.cli import main
from anonaudit.config import load_config
from anonaudit.release_audit import release_config
from anonaudit.results import Results

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"


@pytest.fixture
def plate_folders(tmp_path) -> tuple[Path, Path, Path]:
    """Six synthetic plates as PNG files with a labels CSV (path,text), and a release of the same
    names blurred (sigma 6) and saved as JPEG."""
    def blurred(i: int, plate: np.ndarray, release: Path) -> None:
        Image.fromarray(cv2.GaussianBlur(plate, (0, 0), 6)).save(release / f"car{i}.jpg", quality=90)

    originals, release, labels, _ = write_plates(tmp_path, 6, blurred, originals="originals", release="release")
    return originals, release, labels


def test_components_follow_the_kind_and_the_labels(plate_folders, tmp_path):
    originals, release, labels = plate_folders
    bare = release_config(originals, release, "plates")
    assert [a["name"] for a in bare["attacks"]] == ["metadata", "plates_left_readable"]
    assert bare["kind"] == "plates" and bare["targets"] == [{"name": "external", "path": str(release.resolve())}]
    assert [e["name"] for e in bare["evaluators"]] == ["frechet_distance", "plate_detectability", "psnr", "ssim"]
    labelled = release_config(originals, release, "plates", labels=labels)
    assert [a["name"] for a in labelled["attacks"]] == ["deblur_ocr", "depixelate_ocr", "metadata", "ocr",
                                                        "plates_left_readable"]
    assert {"name": "ocr", "engine": "rapidocr"} in labelled["attacks"]
    faces_csv = tmp_path / "faces.csv"
    faces_csv.write_text("path,identity,gender\n" + "".join(f"car{i}.png,p{i % 3},{'mf'[i % 2]}\n" for i in range(6)))
    faces = release_config(originals, release, "faces", labels=faces_csv)
    assert [a["name"] for a in faces["attacks"]] == ["detector_miss", "gender", "metadata", "reid"]
    assert {"name": "reid", "embedder": "dlib", "gallery": "other_images", "parrot": True} in faces["attacks"]
    assert [e["name"] for e in faces["evaluators"]] == ["face_detection_rate", "identity_distance", "psnr", "ssim"]
    assert faces["auxiliary"] == {"fraction": 0.3, "by": "identity"}
    ids_only = tmp_path / "ids.csv"
    ids_only.write_text("path,identity\n" + "".join(f"car{i}.png,p{i % 3}\n" for i in range(6)))
    assert [a["name"] for a in release_config(originals, release, "faces", labels=ids_only)["attacks"]] == [
        "detector_miss", "metadata", "reid"]


def test_audit_of_two_plate_folders_ends_with_the_verdict(plate_folders, tmp_path, capsys):
    """Without labels: metadata, plates_left_readable (it finds the plates itself) and utility run, OCR
    of the labelled plate cannot (no plate text): the blurred release's SSIM fails the strict policy;
    the run folder holds results, report, verdict, certificate and the equivalent config, which loads
    as a normal audit config."""
    originals, release, _ = plate_folders
    out = tmp_path / "run"
    code = main(["audit", str(originals), str(release), "--kind", "plates", "--output", str(out), "-q"])
    printed = capsys.readouterr().out
    assert code == 1
    assert printed.rstrip().splitlines()[-3] == "overall: FAIL"
    assert "kind: plates" in printed and "name: external" in printed  # the equivalent YAML
    assert "NOT TESTED ocr-exact-match" in printed and "PASS       metadata-leak" in printed
    for name in ("results.csv", "report.html", "verdict.json", "certificate.json", "audit.yaml"):
        assert (out / name).is_file(), name
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["overall"] == "FAIL" and verdict["kind"] == "plates"
    cert = json.loads((out / "certificate.json").read_text())
    (released,) = cert["manifest"]["released"].values()
    assert sorted(Path(e["path"]).name for e in released) == [f"car{i}.jpg" for i in range(6)]
    table = Results.load(out).table
    assert set(table[table["kind"] == "attack"]["component"]) == {"metadata", "plates_left_readable"}
    config = load_config(out / "audit.yaml", roots=[tmp_path])
    assert config.targets[0].name == "external" and [a.name for a in config.attacks] == ["metadata",
                                                                                        "plates_left_readable"]


def test_a_release_file_without_an_original_is_not_certified(plate_folders, tmp_path, capsys):
    originals, release, _ = plate_folders
    shutil.copy(release / "car0.jpg", release / "stranger.jpg")
    code = main(["audit", str(originals), str(release), "--kind", "plates", "--output", str(tmp_path / "run"), "-q"])
    printed = capsys.readouterr().out
    assert code == 2 and "stranger.jpg" in printed and "overall: NOT TESTED" in printed


def test_audit_errors_exit_3(plate_folders, tmp_path, capsys):
    assert (
        main(["audit", str(tmp_path / "none"), str(tmp_path), "--kind", "plates", "--output", str(tmp_path / "r")]) == 3
    )
    assert "does not exist" in capsys.readouterr().err
    originals, release, _ = plate_folders
    out = tmp_path / "run"
    assert (
        main(["audit", str(originals), str(release), "--kind", "plates", "--policy", "strictest", "--output", str(out)])
        == 3
    )
    assert (
        "neither a built-in name" in capsys.readouterr().err and not (out / "results.csv").exists()
    )  # before auditing


@pytest.mark.slow  # OCR, deblurring and depixelation of 6 plates: about a minute on 2 busy cores
def test_audit_with_plate_text_runs_the_ocr_attacks(plate_folders, tmp_path, capsys):
    originals, release, labels = plate_folders
    out = tmp_path / "run"
    code = main(["audit", str(originals), str(release), "--kind", "plates", "--labels", str(labels),
                 "--output", str(out), "-q"])
    assert code == 1
    table = Results.load(out).table
    ocr = table[(table["kind"] == "attack") & (table["metric"] == "exact_match")]
    assert set(ocr["component"]) == {"ocr"}
    inverted = table[(table["kind"] == "attack") & (table["metric"] == "exact_match_inverted")]
    assert set(inverted["component"]) == {"deblur_ocr", "depixelate_ocr"}
    verdict = json.loads((out / "verdict.json").read_text())
    crit = {c["id"]: c for c in verdict["targets"][0]["criteria"]}
    assert crit["ocr-exact-match"]["status"] in ("PASS", "FAIL") and crit["ocr-exact-match"]["n"] == 6


@pytest.mark.slow
@pytest.mark.shared_data("lfw")
def test_audit_of_a_handful_of_lfw_faces(tmp_path, capsys):
    """24 LFW photos of eight people (three each, four women and four men) with identity and gender
    labels, and a blurred release."""
    import pandas as pd

    labels = pd.read_csv(LFW / "labels.csv").dropna()
    labels = labels[labels.groupby("identity")["path"].transform("size") >= 3].groupby("identity").head(3)
    people = labels.drop_duplicates("identity")
    chosen = pd.concat([people[people["gender"] == g].head(4) for g in ("female", "male")])["identity"]
    picked = labels[labels["identity"].isin(set(chosen))]
    assert len(picked) == 24
    originals, release = tmp_path / "originals", tmp_path / "release"
    originals.mkdir()
    release.mkdir()
    rows = []
    for r in picked.itertuples():
        name = Path(r.path).name
        shutil.copy(LFW / r.path, originals / name)
        img = np.asarray(Image.open(originals / name).convert("RGB"))
        Image.fromarray(cv2.GaussianBlur(img, (0, 0), 8)).save(release / name)
        rows.append({"path": name, "identity": r.identity, "gender": r.gender})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "run"
    code = main(["audit", str(originals), str(release), "--kind", "faces", "--labels", str(tmp_path / "labels.csv"),
                 "--output", str(out), "-q"])
    printed = capsys.readouterr().out
    assert code in (1, 2) and "overall: " in printed
    table = Results.load(out).table
    ran = set(table[(table["kind"] == "attack")]["component"])
    assert {"metadata", "detector_miss", "reid", "gender"} <= ran
    verdict = json.loads((out / "verdict.json").read_text())
    ids = [c["id"] for c in verdict["targets"][0]["criteria"]]
    assert ids == [
        "reid-rank1",
        "gender-inference",
        "membership-tpr",
        "membership-auc",
        "dp-claim",
        "metadata-leak",
        "faces-left-clear",
        "ssim",
    ]


@pytest.mark.slow  # eight targets, three OCR attacks: about two minutes on 2 busy cores
def test_demo_ends_with_a_verdict(tmp_path, capsys):
    assert main(["demo", "--n", "12", "--output", str(tmp_path / "demo"), "--quiet"]) == 0
    printed = capsys.readouterr().out.rstrip().splitlines()
    assert printed[-3].startswith("overall: ") and printed[-2].startswith("verdict:")
    verdict = json.loads((tmp_path / "demo" / "verdict.json").read_text())
    assert verdict["policy"]["name"] == "strict-public-release" and verdict["kind"] == "plates"
    assert len(verdict["targets"]) == 8
