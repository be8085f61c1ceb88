"""The audit of two folders builds its config from the components' own ``folder_audit`` declarations:
the module's table says what they give, a newly registered attack that declares a kind runs in
``anonaudit audit`` without any other edit, and declarations are neither inherited nor accepted
from components that need what two folders cannot give."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from plate_folders import write_plates

from anonaudit import release_audit
from anonaudit.attacks.base import Attack, AttackResult
from anonaudit.cli import main
from anonaudit.data.imageset import Release
from anonaudit.data.io import read_image
from anonaudit.measurement import Measurement
from anonaudit.params import RELEASE_KINDS
from anonaudit.registry import ATTACKS, EVALUATORS
from anonaudit.results import Results
from anonaudit.stats import proportion
from anonaudit.testing import ContractError, check_component


class GreyLevelMatch(Attack):
    """Share of released images whose mean grey level lies within ``tolerance`` of their original's."""

    criteria = ("linkability",)
    attacker_holds = ("release",)
    folder_audit = {"plates": {"tolerance": 2.0}}

    def __init__(self, tolerance: float = 1.0):
        self.tolerance = tolerance

    def run(self, release: Release) -> AttackResult:
        pairs = [release.pair(i) for i in range(len(release))]
        close = [abs(float(o.mean()) - float(a.mean())) <= self.tolerance for o, a in pairs]
        metric = Measurement("grey_match", proportion(close), proportion([True] * len(close)), 0.0,
                             "released images within the tolerance of their original's mean grey level")
        return AttackResult(self.name, [metric])


class GreyLevelMatchVariant(GreyLevelMatch):
    """A subclass that declares nothing itself (so it stays out of the folder audit)."""


class TrainingSetProbe(GreyLevelMatch):
    """Declares the plates kind but needs the target's training keys, which two folders never give."""

    needs = ("anonymizer", "training_keys")
    folder_audit = {"plates": {}}


@pytest.fixture
def registered():
    """The three attacks above registered; afterwards the registry holds what it held before."""
    before = dict(ATTACKS._items)
    for name, cls in (("grey_level_match", GreyLevelMatch), ("grey_level_match_variant", GreyLevelMatchVariant),
                      ("training_set_probe", TrainingSetProbe)):
        ATTACKS.register(name)(cls)
    yield
    ATTACKS._items.clear()
    ATTACKS._items.update(before)


def docstring_table() -> dict[str, dict[str, set[str]]]:
    """``{kind: {"always": names, "<label>": names}}`` read from the module docstring's table."""
    lines = release_audit.__doc__.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("====="))
    starts = [m.start() for m in re.finditer(r"=+", lines[rule])]
    rows: dict[str, list[str]] = {}
    kind = ""
    for line in lines[rule + 3:]:
        if line.startswith("====="):
            break
        first, always, labelled = (line[a:b].strip() for a, b in zip(starts, [*starts[1:], None]))
        kind = first.strip("`") or kind
        rows.setdefault(kind, ["", ""])
        rows[kind][0] += " " + always
        rows[kind][1] += " " + labelled
    table = {}
    for kind, (always, labelled) in rows.items():
        table[kind] = {"always": set(re.findall(r"``(\w+)``", always))}
        for label, names in re.findall(r"``(\w+)``: ([^;]*)", labelled):
            table[kind][label] = set(re.findall(r"``(\w+)``", names))
    return table


def test_the_module_table_lists_what_the_declarations_give():
    table = docstring_table()
    assert set(table) == set(RELEASE_KINDS)
    for kind in RELEASE_KINDS:
        attacks = release_audit.folder_attacks(kind)
        expected = {"always": {s["name"] for s, labels in attacks if not labels}
                    | {s["name"] for s in release_audit.folder_evaluators(kind)}}
        for spec, labels in attacks:
            for label in labels:
                expected.setdefault(label, set()).add(spec["name"])
        assert table[kind] == expected, f"update the table of anonaudit/release_audit.py for {kind}"


def test_the_default_folder_audits_keep_every_component_they_had():
    plates = {s["name"]: s for s, _ in release_audit.folder_attacks("plates")}
    assert {"metadata", "ocr", "deblur_ocr", "depixelate_ocr"} <= set(plates) and plates["ocr"]["engine"] == "rapidocr"
    faces = {s["name"]: labels for s, labels in release_audit.folder_attacks("faces")}
    assert faces["reid"] == ("identity",) and faces["gender"] == ("gender",) and faces["metadata"] == ()
    assert {e["name"] for e in release_audit.folder_evaluators("faces")} >= {
        "ssim", "psnr", "face_detection_rate", "identity_distance"}
    for registry in (ATTACKS, EVALUATORS):  # every declaration is one check_component accepts
        for name in registry.names():
            if vars(registry.get(name)).get("folder_audit"):
                check_component(registry.get(name))


def test_a_new_attack_declaring_plates_runs_in_anonaudit_audit(registered, tmp_path, capsys):
    def released(i: int, plate: np.ndarray, folder) -> None:
        Image.fromarray(np.clip(plate.astype(int) + 3 * (i % 2), 0, 255).astype(np.uint8)).save(folder / f"car{i}.png")

    originals, release, _, _ = write_plates(tmp_path, 6, released)
    config = release_audit.release_config(originals, release, "plates")
    names = [a["name"] for a in config["attacks"]]
    assert {"name": "grey_level_match", "tolerance": 2.0} in config["attacks"]
    assert "grey_level_match_variant" not in names and "training_set_probe" not in names
    out = tmp_path / "run"
    main(["audit", str(originals), str(release), "--kind", "plates", "--output", str(out), "-q"])
    capsys.readouterr()
    table = Results.load(out).table
    row = table[(table["component"] == "grey_level_match") & (table["metric"] == "grey_match")].iloc[0]
    expected = np.mean([abs(read_image(originals / f"car{i}.png").mean() - read_image(release / f"car{i}.png").mean())
                        <= 2.0 for i in range(6)])
    assert row["status"] == "ok" and row["n"] == 6 and row["value"] == pytest.approx(expected)
    assert 0 < expected < 1  # the odd images are brighter by 3 (less at saturated pixels)


def test_check_component_refuses_declarations_two_folders_cannot_meet():
    with pytest.raises(ContractError, match=r"needs \('anonymizer', 'training_keys'\)"):
        check_component(TrainingSetProbe)

    class UnknownKind(GreyLevelMatch):
        folder_audit = {"scenes": {}}

    UnknownKind.name = "unknown_kind"
    with pytest.raises(ContractError, match=r"unknown release kinds \['scenes'\]"):
        check_component(UnknownKind)
