"""The one-command flow through the real CLI (``anonaudit.cli.main``) on tiny generated folders:
``--on-mismatch``, what runs without labels and why, labels of the other kind, a labels CSV missing
rows, what a resumed run reused, a help line for every option, the exit statuses of ``run``, and
``anonaudit list`` in whole sentences.

A policy that does not exist stops ``anonaudit audit`` right after its setup (exit 3, before any
attack runs): the tests of the setup's messages use it to stay fast.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import cv2
import pytest
import yaml
from PIL import Image

from anonaudit.cli import EXIT_SIGINT, EXIT_SIGTERM, build_parser, main
from anonaudit.datasets import synthetic_plates
from anonaudit.registry import ATTACKS, EVALUATORS, REGISTRIES, Registry
from anonaudit.results import Results

NO_POLICY = ["--policy", "no-such-policy"]


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path, list[tuple[str, str]]]:
    """Six synthetic plates as PNG files and their release (blurred, JPEG) of the same names; the
    ``(file, plate text)`` rows a labels CSV would hold."""
    plates = synthetic_plates(n=6, seed=5)
    originals, release = tmp_path / "originals", tmp_path / "release"
    originals.mkdir()
    release.mkdir()
    for i in range(len(plates)):
        Image.fromarray(plates[i]).save(originals / f"car{i}.png")
        Image.fromarray(cv2.GaussianBlur(plates[i], (0, 0), 6)).save(release / f"car{i}.jpg", quality=90)
    return originals, release, [(f"car{i}.png", plates.texts[i]) for i in range(len(plates))]


def _labels(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def _audit(originals: Path, release: Path, out: Path, *extra: str) -> list[str]:
    return ["audit", str(originals), str(release), "--kind", "plates", "--output", str(out), "-q", *extra]


# -- help -----------------------------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_option_of_every_command_has_a_help_line_and_lists_its_choices():
    commands = _subparsers(build_parser())
    assert {"run", "audit", "certify", "compare", "report", "demo", "train", "list", "models"} <= set(commands)
    for command, parser in commands.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), f"{command} {name}"
            for choice in action.choices or ():
                assert re.search(rf"\b{re.escape(str(choice))}\b", action.help), f"{command} {name}: {choice}"


def test_run_documents_its_exit_statuses_and_returns_them(tmp_path, capsys):
    epilog = _subparsers(build_parser())["run"].epilog
    for code in (0, 2, EXIT_SIGINT, EXIT_SIGTERM):
        assert re.search(rf"^\s+{code}\s+\S", epilog, re.M), code
    assert main(["run", str(tmp_path / "absent.yaml")]) == 2  # documented: 2 error (SIGINT, SIGTERM: test_orphans)
    assert "absent.yaml" in capsys.readouterr().err


# -- list -----------------------------------------------------------------------------------------
def test_list_prints_whole_sentences_wrapped_to_the_terminal(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    shown: dict[str, str] = {}
    name = None
    for line in lines:
        if not line.startswith("  "):
            continue
        if line[2] != " ":  # "  name  description" or "  long_name" alone
            name, _, text = line.strip().partition(" ")
            shown[name] = text.strip()
        else:
            shown[name] = f"{shown[name]} {line.strip()}".strip()
    described = {n: r.describe(n) for r in REGISTRIES.values() for n in r.names()}
    assert shown == described
    assert all(text.endswith((".", "?", "!")) for text in shown.values())
    # Cut mid-sentence before: the first line of a docstring whose sentence goes on.
    assert ATTACKS.describe("metadata").endswith("the original or the person (module doc).")
    assert EVALUATORS.describe("ssim") == ("Structural similarity as Wang et al. (2004) define it: 11x11 Gaussian "
                                           "window, sigma 1.5.")


def test_describe_is_the_first_sentence_without_markup():
    reg: Registry = Registry("things")
    reg._plugins_loaded = True  # no entry points: only what this test registers

    @reg.register("a")
    class A:
        """Scale by ``factor``, e.g. 2 (see
        :func:`~anonaudit.params.clone`). Second sentence.

        Details."""

    @reg.register("b")
    class B:
        """no sentence end here"""

    assert reg.describe("a") == "Scale by factor, e.g. 2 (see clone)."
    assert reg.describe("b") == "no sentence end here"


# -- audit: labels ----------------------------------------------------------------------------
def test_without_labels_the_attacks_that_need_them_are_named(folders, tmp_path, capsys):
    originals, release, _ = folders
    assert main(_audit(originals, release, tmp_path / "run", *NO_POLICY)) == 3
    err = capsys.readouterr().err
    assert ("without --labels, deblur_ocr, depixelate_ocr, ocr are not run: they need the plate text of every "
            "image (column text)") in err
    assert "warning" not in err


def test_labels_without_the_text_column_or_with_empty_texts_say_so(folders, tmp_path, capsys):
    originals, release, rows = folders
    no_text = _labels(tmp_path / "regions.csv", ["path", "region"], [[f, "KA"] for f, _ in rows])
    assert main(_audit(originals, release, tmp_path / "r1", "--labels", str(no_text), *NO_POLICY)) == 3
    err = capsys.readouterr().err
    assert f"{no_text.resolve()} has no text column, so deblur_ocr, depixelate_ocr, ocr are not run" in err
    assert "warning" not in err  # no label of faces either

    holes = _labels(
        tmp_path / "holes.csv", ["path", "text"], [[f, "" if f in ("car2.png", "car4.png") else t] for f, t in rows]
    )
    assert main(_audit(originals, release, tmp_path / "r2", "--labels", str(holes), *NO_POLICY)) == 3
    err = capsys.readouterr().err
    assert "leaves text empty for 2 image(s) (car2.png, car4.png), so deblur_ocr, depixelate_ocr, ocr" in err


@pytest.mark.parametrize(
    "kind, columns, expected",
    [
        (
            "plates",
            {"identity": "p1", "gender": "female"},
            ("--kind plates, but {csv} has no text column and has gender, identity, the labels of faces: is --kind "
            "faces meant?"),
        ),
        (
            "faces",
            {"text": "KA01AB1234"},
            ("--kind faces, but {csv} has no gender or identity column and has text, the labels of plates: is --kind "
            "plates meant?"),
        ),
    ],
)
def test_labels_of_the_other_kind_are_warned_about(folders, tmp_path, capsys, kind, columns, expected):
    originals, release, rows = folders
    labels = _labels(tmp_path / "labels.csv", ["path", *columns], [[f, *columns.values()] for f, _ in rows])
    command = _audit(originals, release, tmp_path / "run", "--labels", str(labels), *NO_POLICY)
    command[command.index("--kind") + 1] = kind
    assert main(command) == 3
    assert "anonaudit: warning: " + expected.format(csv=labels.resolve()) in capsys.readouterr().err


def test_labels_from_the_matching_kind_raise_no_warning(folders, tmp_path, capsys):
    originals, release, rows = folders
    labels = _labels(tmp_path / "labels.csv", ["path", "text"], [[f, t] for f, t in rows])
    assert main(_audit(originals, release, tmp_path / "run", "--labels", str(labels), *NO_POLICY)) == 3
    err = capsys.readouterr().err
    assert "warning" not in err and "not run" not in err


def test_a_labels_csv_missing_rows_names_the_unlabelled_files(folders, tmp_path, capsys):
    originals, release, rows = folders
    labels = _labels(tmp_path / "labels.csv", ["path", "text"], [[f, t] for f, t in rows[:4]])
    code = main(_audit(originals, release, tmp_path / "run", "--labels", str(labels)))
    err = capsys.readouterr().err
    assert code == 3
    assert f"no labels for 2 of the 6 images in {originals.resolve()}: car4.png, car5.png" in err
    assert "without an original" not in err and not (tmp_path / "run" / "results.csv").exists()


# -- audit: pairing and resuming ----------------------------------------------------------------
def test_on_mismatch_drop_audits_the_pairs_and_lists_the_rest_and_a_rerun_names_what_it_reused(
    folders, tmp_path, capsys
):
    originals, release, _ = folders
    (release / "stranger.jpg").write_bytes((release / "car0.jpg").read_bytes())
    (release / "car5.jpg").unlink()
    out = tmp_path / "run"
    main(_audit(originals, release, out, "--on-mismatch", "drop"))
    first = capsys.readouterr().err
    assert "reused" not in first
    assert yaml.safe_load((out / "audit.yaml").read_text())["targets"] == [
        {"name": "external", "path": str(release.resolve()), "on_mismatch": "drop"}]
    table = Results.load(out).table
    release_rows = table[(table["kind"] == "target") & (table["component"] == "release")].set_index("metric")
    assert release_rows.loc["pairs", "value"] == 5
    assert release_rows.loc["unpaired_release_files", "message"] == "stranger.jpg"
    assert release_rows.loc["unpaired_originals", "message"] == "car5.png"
    assert not table[(table["kind"] == "attack") & (table["component"] == "metadata")].empty  # the pairs were audited

    main(_audit(originals, release, out, "--on-mismatch", "drop"))
    finished = [p for p in (out / "units").glob("*/*.json") if p.name.startswith(("attack-", "evaluator-"))]
    reused = re.search(rf"reused (\d+) finished unit\(s\) of external\(.*\) from {re.escape(str(out.resolve()))}: (.*)",
                       capsys.readouterr().err)
    assert reused, "the rerun does not say what it reused"
    ok = [p for p in finished if all(r.get("status") == "ok" for r in json.loads(p.read_text()))]
    assert int(reused.group(1)) == len(ok) > 0
    assert "metadata" in reused.group(2).split(", ")


def test_on_mismatch_error_is_the_default(folders, tmp_path, capsys):
    originals, release, _ = folders
    (release / "stranger.jpg").write_bytes((release / "car0.jpg").read_bytes())
    out = tmp_path / "run"
    assert main(_audit(originals, release, out)) == 2
    printed = capsys.readouterr()
    assert "stranger.jpg" in printed.out + printed.err
    assert "on_mismatch" not in yaml.safe_load((out / "audit.yaml").read_text())["targets"][0]
