"""Compliance report: attacks mapped to the Art. 29 WP criteria (declared on the classes, never
guessed from names), the attacker model, data sizes, what was not tested, redacted examples by
default, and a PDF whose pages render."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from shared_data import debian_program

from anonaudit.attacks.base import ARTICLE29_CRITERIA
from anonaudit.cli import main
from anonaudit.data.io import write_image
from anonaudit.registry import ATTACKS
from anonaudit.reports.compliance import (
    CRITERIA,
    attack_criteria,
    compliance_model,
    write_compliance_report,
)
from anonaudit.reports.examples import redact
from anonaudit.results import Results, row

LABELS = ["pixelate(block=16)", "pixelate(block=4)"]
IDS = ["pixelate-aaaa1111", "pixelate-bbbb2222"]


def _attack(label, tid, component, metric, value, risk, n=50, **kw):
    return row(
        target="pixelate",
        target_label=label,
        target_id=tid,
        kind="attack",
        component=component,
        component_label=component,
        metric=metric,
        value=value,
        ci_low=max(0, value - 0.1),
        ci_high=min(1, value + 0.1),
        n=n,
        baseline=0.0,
        original=1.0,
        risk=risk,
        risk_ci_low=max(0, risk - 0.1),
        risk_ci_high=risk + 0.1,
        risk_kind="relative",
        higher_is_better=False,
        status="ok",
        **kw,
    )


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A hand-built run of two targets: OCR and metadata ran, reid was unavailable on both; each
    target has two example images of sharp black-and-white noise."""
    rows = []
    for label, tid, ocr in zip(LABELS, IDS, (0.02, 0.9)):
        rows += [
            row(
                target="pixelate",
                target_label=label,
                target_id=tid,
                kind="target",
                component="release",
                metric="pairs",
                value=50,
                n=50,
                status="ok",
            ),
            _attack(label, tid, "ocr", "exact_match", ocr, ocr),
            _attack(label, tid, "metadata", "files_with_leak", 0.0, 0.0),
            row(
                target="pixelate",
                target_label=label,
                target_id=tid,
                kind="evaluator",
                component="ssim",
                component_label="ssim",
                metric="ssim",
                value=0.5,
                ci_low=0.45,
                ci_high=0.55,
                n=50,
                higher_is_better=True,
                status="ok",
            ),
            row(
                target="pixelate",
                target_label=label,
                target_id=tid,
                kind="attack",
                component="reid",
                component_label="reid",
                metric="",
                status="unavailable",
                message="arcface unavailable: weights not in the cache",
            ),
        ]
        rng = np.random.default_rng(0)
        for i in range(2):
            write_image(
                tmp_path / "examples" / tid / f"{i:02d}.png", (rng.random((60, 120, 3)) > 0.5).astype(np.uint8) * 255
            )
    manifest = {
        "name": "release-42",
        "seed": 0,
        "data": {"name": "plates_us", "n": 60, "evaluation": 50, "auxiliary": 10},
        "attacks": [
            {"name": "ocr", "params": {"engine": "rapidocr"}},
            {"name": "metadata", "params": {}},
            {"name": "reid", "params": {"gallery": "other_images", "embedder": "arcface"}},
        ],
    }
    Results(pd.DataFrame(rows), tmp_path, manifest).save(tmp_path)
    return tmp_path


def test_every_attack_declares_known_criteria():
    assert "gender" in ATTACKS.names() and "membership_dcr" in ATTACKS.names()
    for name in ATTACKS.names():
        crit = attack_criteria(name)
        assert crit and set(crit) <= set(CRITERIA) == set(ARTICLE29_CRITERIA), name
    assert attack_criteria("gender") == ("inference",)
    assert attack_criteria("ocr") == ("singling_out", "linkability")


def test_criteria_are_never_guessed_from_names(run: Path):
    """An attack in old results that is no longer installed maps to no criterion, whatever its name."""
    assert attack_criteria("shadow_membership") == () and attack_criteria("my_linkage_attack") == ()
    results = Results.load(run)
    table = results.table.copy()
    table.loc[table["component"] == "ocr", "component"] = "reid_ocr_membership"
    results.table = table
    m = compliance_model(results)
    gone = next(a for a in m["attacks"] if a["name"] == "reid_ocr_membership")
    assert gone["criteria"] == [] and gone["criteria_text"] == "not mapped"
    for r in m["criteria_rows"]:  # singling out: only metadata's evidence is left
        assert [e["by"] for e in r["cells"][0]["evidence"]] == ["metadata: files_with_leak"]


def test_model_maps_criteria_sizes_attacker_model_and_untested(run: Path):
    m = compliance_model(Results.load(run))
    rows = {r["target"]: r["cells"] for r in m["criteria_rows"]}
    assert list(rows) == ["pixelate(block=4)", "pixelate(block=16)"]  # natural order
    single, _, inference = rows["pixelate(block=4)"]
    assert single["worst"]["by"] == "ocr: exact_match" and single["worst"]["risk"] == "90.0% [80.0, 100.0]"
    assert single["worst"]["level"] == "high" and single["worst"]["value"] == "90.0% [80.0, 100.0]"
    assert inference["worst"]["by"] == "metadata: files_with_leak"  # metadata tests inference too (GPS)
    assert rows["pixelate(block=16)"][0]["worst"]["level"] == "low"
    attacks = {a["name"]: a for a in m["attacks"]}
    assert list(attacks) == ["ocr", "metadata"]  # reid was configured but unavailable: not in the attacker model
    assert attacks["ocr"]["scored_with"] == ["the true plate text"]
    release, box = "the released (anonymized) images", "where each plate is in the released images (its box)"
    assert attacks["ocr"]["holds"] == [release, box, "an off-the-shelf OCR engine (rapidocr)"]
    assert attacks["ocr"]["kind"] == "classical" and attacks["ocr"]["method"] == "neither (classical)"
    assert "ocr, metadata neither train nor search (classical)" in m["attacker_intro"]
    assert "auxiliary" not in m["attacker_intro"]  # neither uses the intruder's auxiliary images
    assert any("60 images; 50 evaluated" in s for s in m["scope"])
    assert any("pixelate(block=4) (50 pairs)" in s for s in m["scope"])
    reasons = [" ".join(t) for t in m["not_tested"]]
    assert any(r.startswith("unavailable reid (all 2 targets)") and "weights not in the cache" in r for r in reasons)
    assert m["reidentification_attacks"] == ["metadata", "ocr"]


def test_criterion_without_attack_is_not_tested(run: Path):
    results = Results.load(run)
    results.table = results.table[results.table["component"] != "metadata"]
    m = compliance_model(results)
    assert ("not tested", "criterion Inference", "no attack for it ran") in m["not_tested"]
    assert all(r["cells"][2]["missing"] == "not tested" for r in m["criteria_rows"])


def _pngs(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"))
            for b in re.findall(r'alt="example" src="data:image/png;base64,([^"]+)"', html)]


def test_examples_are_redacted_by_default_and_embedded_on_request(run: Path):
    html_path, _ = write_compliance_report(Results.load(run), run)
    shown = _pngs(html_path.read_text(encoding="utf-8"))
    assert len(shown) == 4
    original = np.asarray(Image.open(run / "examples" / IDS[0] / "00.png").convert("RGB"))
    block = 12  # ceil(120 / 10)
    for img in shown:
        assert img.shape == original.shape and not np.array_equal(img, original)
        for y in range(0, 60, block):  # every cell is one flat colour: no plate text or face survives
            for x in range(0, 120, block):
                cell = img[y:y + block, x:x + block].reshape(-1, 3)
                assert (cell == cell[0]).all()
    assert "redacted (12-px blocks)" in html_path.read_text(encoding="utf-8")
    html_path, _ = write_compliance_report(Results.load(run), run, embed_examples=True)
    html = html_path.read_text(encoding="utf-8")
    assert any(np.array_equal(img, original) for img in _pngs(html)) and "internal use only" in html


def test_redact_is_the_block_mean():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 200
    out, block = redact(img, cells=2)
    assert block == 2 and (out[:2, :2] == 200).all() and (out[2:, 2:] == 0).all()
    out, _ = redact(img, cells=1)
    assert (out == 50).all()


def test_verdict_heads_the_compliance_report(run: Path):
    verdict = {
        "overall": "FAIL",
        "policy": {"name": "strict-public-release"},
        "created": "2026-01-01T00:00:00",
        "targets": [
            {
                "target_label": lab,
                "verdict": v,
                "criteria": [
                    {
                        "id": "ocr-exact-match",
                        "status": v,
                        "reason": f"reason {lab}",
                        "component": "ocr",
                        "metric": "exact_match",
                        "select": "*ocr/exact_match",
                        "on": "value",
                        "comparison": "<=",
                        "threshold_text": "1%",
                        "bound": "upper",
                        "value": 0.5,
                        "ci_low": 0.4,
                        "ci_high": 0.6,
                        "n": 50,
                    }
                ],
            }
            for lab, v in zip(LABELS, ("PASS", "FAIL"))
        ],
    }
    (run / "verdict.json").write_text(json.dumps(verdict))
    m = compliance_model(Results.load(run))
    cells = {r["target"]: r["cells"] for r in m["criteria_rows"]}
    assert cells["pixelate(block=4)"][0]["policy"] == "FAIL" and cells["pixelate(block=16)"][0]["policy"] == "PASS"
    html = write_compliance_report(Results.load(run), run)[0].read_text(encoding="utf-8")
    assert html.index("Verdict: FAIL") < html.index("1. Scope and data")
    assert "reason pixelate(block=4)" in html


@pytest.mark.debian("pdftoppm")
def test_cli_writes_html_and_pdf_whose_pages_render(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", str(run), "--compliance"]) == 0
    out = capsys.readouterr().out
    assert f"compliance PDF:    {run / 'compliance.pdf'}" in out
    pdf = (run / "compliance.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    prefix = tmp_path / "page"
    subprocess.run([debian_program("pdftoppm"), "-r", "40", "-png", str(run / "compliance.pdf"), str(prefix)],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 2
    for p in pages:
        grey = np.asarray(Image.open(p).convert("L"))
        assert (grey < 128).mean() > 0.002, f"{p.name} is blank"
    text = subprocess.run([debian_program("pdftotext"), str(run / "compliance.pdf"), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    for words in ("No policy applied", "Singling out", "Linkability", "Inference", "motivated-intruder",
                  "What was not tested", "arcface unavailable", "Limitations"):
        assert words in text, words


def _with(run: Path, *rows: dict) -> Results:
    results = Results.load(run)
    results.table = pd.concat([results.table, pd.DataFrame(list(rows))], ignore_index=True)
    return results


def test_singling_out_and_linkability_show_the_evidence_of_their_own_attacks(run: Path):
    """k_anonymity tests singling out only, linkability linkability only: each column lists its own attacks."""
    label, tid = LABELS[1], IDS[1]  # pixelate(block=4), OCR 0.9
    results = _with(run, _attack(label, tid, "k_anonymity", "unique_rate", 0.3, 0.3),
                    _attack(label, tid, "linkability", "link_rate", 0.6, 0.6))
    m = compliance_model(results)
    single, link, _ = {r["target"]: r["cells"] for r in m["criteria_rows"]}[label]
    assert [e["by"] for e in single["evidence"]] == [
        "ocr: exact_match",
        "k_anonymity: unique_rate",
        "metadata: files_with_leak",
    ]
    assert [e["by"] for e in link["evidence"]] == [
        "ocr: exact_match",
        "linkability: link_rate",
        "metadata: files_with_leak",
    ]
    assert link["evidence"][1]["risk"] == "60.0% [50.0, 70.0]"
    criteria = {c["key"]: c["attacks"] for c in m["criteria"]}
    assert criteria["singling_out"] == ["k_anonymity", "metadata", "ocr"]
    assert criteria["linkability"] == ["linkability", "metadata", "ocr"]
    html = write_compliance_report(results, run)[0].read_text(encoding="utf-8")
    table = html[html.index('id="criteria"'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r'<td class="k">(.*?)</td>', table, flags=re.S)
    assert len(cells) == 2 * 3
    row = cells[:3]  # pixelate(block=4) comes first (natural order)
    assert "k_anonymity" in row[0] and "k_anonymity" not in row[1]
    assert "linkability: link_rate" in row[1] and "linkability: link_rate" not in row[0]


def test_attacker_model_describes_only_the_attacks_that_ran(run: Path):
    html = write_compliance_report(Results.load(run), run)[0].read_text(encoding="utf-8")
    model = html[html.index("2. Attacker model"):html.index("3. Article 29")]
    assert "ocr" in model and "metadata" in model
    assert "reid" not in model and "gallery" not in model and "face-recognition" not in model  # unavailable: not run
    assert "reid" in html[html.index("5. What was not tested"):]
    results = Results.load(run)
    results.table = results.table[results.table["component"] != "ocr"]
    m = compliance_model(results)
    assert [a["name"] for a in m["attacks"]] == ["metadata"]
    assert "metadata neither trains nor searches" in m["attacker_intro"]  # metadata learns nothing
    assert "(metadata)" in m["attacker_intro"]


def test_compliance_badges_follow_the_risk_ci(run: Path):
    label, tid = LABELS[0], IDS[0]
    leak = {**_attack(label, tid, "metadata", "files_with_gps", 0.1, 0.1), "risk_ci_low": 0.05, "risk_kind": "new_leak"}
    faint = {
        **_attack(label, tid, "metadata", "files_with_name", 0.05, 0.05),
        "risk_ci_low": 0.0,
        "risk_kind": "new_leak",
    }
    m = compliance_model(_with(run, leak))
    inference = {r["target"]: r["cells"] for r in m["criteria_rows"]}[label][2]
    assert [b["text"] for b in inference["evidence"][0]["badges"]] == ["new leak"]
    m = compliance_model(_with(run, faint))
    inference = {r["target"]: r["cells"] for r in m["criteria_rows"]}[label][2]
    assert [b["cls"] for b in inference["evidence"][0]["badges"]] == ["note"]


def _learned_run(tmp_path: Path) -> Results:
    """One target attacked by the classical OCR ladder (raw OCR, depixelation), render-and-match and the
    parrot recogniser, which reads best and reports its training cost as the attack does."""
    label, tid = LABELS[0], IDS[0]
    cost = "training_seconds=12.5; training_steps=300"
    rows = [
        row(target="pixelate", target_label=label, target_id=tid, kind="target", component="release", metric="pairs",
            value=50, n=50, status="ok"),
        _attack(label, tid, "ocr", "exact_match", 0.02, 0.02, seconds=3.0),
        _attack(label, tid, "depixelate_ocr", "exact_match", 0.05, 0.05, seconds=9.0),
        _attack(label, tid, "render_match_ocr", "exact_match", 0.3, 0.3, seconds=40.0),
        _attack(label, tid, "parrot_ocr", "exact_match", 0.6, 0.6, message=cost, seconds=20.0),
        row(target="pixelate", target_label=label, target_id=tid, kind="attack", component="parrot_ocr",
            component_label="parrot_ocr", metric="training_seconds", value=12.5, n=300, status="ok", seconds=20.0),
    ]
    manifest = {"name": "learned", "seed": 0, "data": {"name": "plates_us", "n": 60, "evaluation": 50, "auxiliary": 10},
                "attacks": [{"name": n, "params": {}} for n in ("ocr", "depixelate_ocr", "render_match_ocr")]
                + [{"name": "parrot_ocr", "params": {"steps": 300}}]}
    results = Results(pd.DataFrame(rows), tmp_path, manifest)
    results.save(tmp_path)
    return results


def test_a_learned_attack_above_the_classical_ladder_heads_and_is_marked(tmp_path: Path, capsys):
    from anonaudit.cli import _print_summary
    from anonaudit.reports.html import render_html

    results = _learned_run(tmp_path)
    head = results.max_risk().iloc[0]
    assert (head["component"], head["metric"], head["attacker"]) == ("parrot_ocr", "exact_match", "learned")
    html = render_html(results)
    table = html[html.index('id="headline"'):html.index("</table>", html.index('id="headline"'))]
    assert "parrot_ocr" in table and ">learned</span>" in table
    _print_summary(results)
    assert "parrot_ocr:exact_match (learned)" in capsys.readouterr().out

    # Without the parrot, the searching attacker heads, marked as such; without both, the classical ladder, unmarked.
    results.table = results.table[results.table["component"] != "parrot_ocr"]
    assert tuple(results.max_risk().iloc[0][["component", "attacker"]]) == ("render_match_ocr", "searching")
    results.table = results.table[results.table["component"] != "render_match_ocr"]
    assert tuple(results.max_risk().iloc[0][["component", "attacker"]]) == ("depixelate_ocr", "classical")
    table = render_html(results)
    assert ">learned</span>" not in table and ">searching</span>" not in table


def test_compliance_lists_what_learned_and_searching_attackers_hold_train_and_cost(tmp_path: Path):
    m = compliance_model(_learned_run(tmp_path))
    attacks = {a["name"]: a for a in m["attacks"]}
    parrot, search, ocr = attacks["parrot_ocr"], attacks["render_match_ocr"], attacks["ocr"]
    assert parrot["kind"] == "learned" and parrot["method"].startswith("trains a CRNN recogniser (CTC) on synthetic")
    assert parrot["cost"] == "training 12.5 s, 300 steps; the whole attack 20.0 s"
    assert "the anonymizer itself (published method and parameters), to anonymize images of its own" in parrot["holds"]
    assert search["kind"] == "searching" and search["method"].startswith("searches plate texts and layouts")
    assert search["cost"] == "the whole attack 40.0 s"  # it trains nothing: only its time
    assert ocr["method"] == "neither (classical)" and ocr["cost"] == "the whole attack 3.0 s"
    intro = m["attacker_intro"]
    assert "parrot_ocr trains a model; render_match_ocr searches candidates; ocr, depixelate_ocr neither train" in intro
    assert "parrot_ocr also uses 10 images of the intruder's own (16.7% of the data set)" in intro
    html = write_compliance_report(Results.load(tmp_path), tmp_path)[0].read_text(encoding="utf-8")
    section = html[html.index("2. Attacker model"):html.index("3. Article 29")]
    assert "trains a CRNN recogniser" in section and "training 12.5 s, 300 steps" in section


def test_an_attack_no_longer_installed_is_described_as_undeclared(run: Path):
    results = Results.load(run)
    results.table.loc[results.table["component"] == "metadata", "component"] = "retired_attack"
    attacks = {a["name"]: a for a in compliance_model(results)["attacks"]}
    assert attacks["retired_attack"]["holds"] == ["not declared (attack not installed)"]
    assert results.max_risk()["attacker"].tolist() == ["classical", "classical"]  # ocr heads both targets


def test_check_component_requires_an_attacker_model_in_the_vocabulary():
    from anonaudit.attacks.base import Attack
    from anonaudit.testing import ContractError, check_component

    class Undeclared(Attack):
        name = "contract_undeclared_attacker"
        criteria = ("linkability",)

    class Misspelt(Undeclared):
        name = "contract_misspelt_attacker"
        attacker_holds = ("release", "auxilary")

    class Declared(Undeclared):
        name = "contract_declared_attacker"
        attacker_holds = ("release", "ocr_engine: any engine")
        attacker_searches = "candidate texts"

    with pytest.raises(ContractError, match=r"check_declares_attacker_model: attacker_holds \(\): unknown"):
        check_component(Undeclared)
    with pytest.raises(ContractError, match=r"unknown \['auxilary'\]"):
        check_component(Misspelt)
    assert check_component(Declared)["check_declares_attacker_model"] == "passed"
    model = Declared().intruder()
    assert model.kind == "searching" and model.holds_text() == ["the released (anonymized) images",
                                                                 "an off-the-shelf OCR engine (any engine)"]
