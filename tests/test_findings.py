"""Evidence per file: ``findings.csv``, the certificate's failed criteria and the report name the files
that leak, and what an attack recovered (plate text) appears only with ``--embed-examples``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import ExifTags, Image
from plate_folders import write_plates

from anonaudit.cli import main
from anonaudit.reports.evidence import SHOWN, WITHHELD, evidence_section
from anonaudit.results import FINDING_COLUMNS, Results, row


def test_gps_and_an_original_after_the_end_of_image_are_named_everywhere(tmp_path):
    def released(i: int, plate: np.ndarray, rel: Path) -> None:
        masked = np.zeros_like(plate)
        if i == 1:
            exif = Image.Exif()
            exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (48.0, 51.0, 0.0), 3: "E", 4: (2.0, 21.0, 0.0)})
            Image.fromarray(masked).save(rel / f"co{i}.jpg", quality=90, exif=exif.tobytes())
            return
        Image.fromarray(masked).save(rel / f"car{i}.jpg" if i != 3 else rel / "hi3.jpg", quality=90)
        if i == 3:
            copy = io.BytesIO()
            Image.fromarray(plate).save(copy, "JPEG", quality=95)
            (rel / "hi3.jpg").write_bytes((rel / "hi3.jpg").read_bytes() + copy.getvalue())

    orig, rel, _, _ = write_plates(tmp_path, 6, released)
    # rename the originals of the planted files so that they pair by name
    (orig / "car1.png").rename(orig / "co1.png")
    (orig / "car3.png").rename(orig / "hi3.png")
    run = tmp_path / "run"
    assert main(["audit", str(orig), str(rel), "--kind", "plates", "--output", str(run), "-q"]) == 1
    findings = pd.read_csv(run / "findings.csv")
    assert list(findings.columns) == FINDING_COLUMNS
    named = {(Path(f).name, k) for f, k in zip(findings["file"], findings["finding"])}
    assert ("co1.jpg", "gps") in named and ("hi3.jpg", "original_after_eoi") in named
    assert {Path(f).name for f in findings["file"]} == {"co1.jpg", "hi3.jpg"}  # the clean files have no finding
    gps = findings[findings["finding"] == "gps"].iloc[0]
    assert (
        gps["detail"].startswith("48.85000N 2.35000E") and gps["attack"] == "metadata" and gps["target"] == "external"
    )
    report = (run / "report.html").read_text()
    assert "co1.jpg" in report and "hi3.jpg" in report and 'href="findings.csv"' in report
    cert = json.loads((run / "certificate.json").read_text())
    leak = next(c for c in cert["verdict"]["targets"][0]["criteria"] if c["id"] == "metadata-leak")
    assert leak["status"] == "FAIL"
    assert sorted(Path(f).name for f in leak["evidence"]["files"]) == ["co1.jpg", "hi3.jpg"]
    assert leak["evidence"]["findings"] == "findings.csv" and leak["evidence"]["count"] >= 2


@pytest.mark.slow  # OCR, deblurring and depixelation of 4 plates, three runs (the second and third from the run cache)
def test_text_read_is_withheld_unless_embed_examples(tmp_path):
    def released(i: int, plate: np.ndarray, rel: Path) -> None:
        Image.fromarray(plate).save(rel / f"car{i}.jpg", quality=95)  # not anonymized: every plate reads back

    orig, rel, labels, texts = write_plates(tmp_path, 4, released)
    run = tmp_path / "run"
    args = ["audit", str(orig), str(rel), "--kind", "plates", "--labels", str(labels), "--output", str(run), "-q"]

    def shown() -> tuple[pd.DataFrame, str]:
        return pd.read_csv(run / "findings.csv", dtype=str, keep_default_na=False), (run / "report.html").read_text()

    assert main(args) == 1
    findings, report = shown()
    reads = findings[(findings["attack"] == "ocr") & (findings["finding"] == "read")]
    assert len(reads) >= 2 and set(reads["recovered"]) == {"False"}
    assert all("text withheld" in d for d in reads["detail"])
    assert not any(t in findings.to_csv() or t in report for t in texts)

    assert main(args + ["--embed-examples"]) == 1
    findings, report = shown()
    reads = findings[(findings["attack"] == "ocr") & (findings["finding"] == "read")]
    assert set(reads["recovered"]) == {"True"}
    truth = {f"car{i}.png": t for i, t in enumerate(texts)}
    assert all(d == truth[k] for d, k in zip(reads["detail"], reads["key"]))  # read exactly: the text is the truth
    assert all(d in report for d in reads["detail"])
    assert json.loads((run / "manifest.json").read_text())["embed_examples"] is True

    assert main(args) == 1  # a rerun without the flag withholds the texts again
    findings, report = shown()
    assert not any(t in findings.to_csv() or t in report for t in texts)


def test_evidence_section_escapes_caps_links_and_withholds(tmp_path):
    base = {"target": "x", "target_id": "x-1", "attack": "ocr", "finding": "read", "metric": "exact_match"}
    rows = [{**base, "file": f"/data/rel/<b>{i}.jpg", "key": f"k{i}", "target_label": "x<script>", "detail": "ABC123",
             "recovered": "True"} for i in range(SHOWN + 5)]
    table = pd.DataFrame([row(target="x", target_label="x<script>", target_id="x-1", kind="attack", component="ocr",
                              metric="exact_match", value=1.0, n=25, status="ok")])
    results = Results(table, tmp_path / "run", findings=pd.DataFrame(rows))
    html = evidence_section(results, tmp_path / "run")
    assert "<script>" not in html and "x&lt;script&gt;" in html and "&lt;b&gt;0.jpg" in html
    assert "&lt;b&gt;19.jpg" in html and "&lt;b&gt;20.jpg" not in html  # the first 20 files, then the link
    assert 'all 25 findings in <a href="findings.csv">' in html
    assert "ABC123" not in html and WITHHELD in html
    assert "ABC123" in evidence_section(results, tmp_path / "run", embed_examples=True)
    assert 'href="../run/findings.csv"' in evidence_section(results, tmp_path / "reports")
