"""docs/extending.md runs: every code block that starts with ``# <file name>`` is written to a
temporary folder and the last one (``run_examples.py``) is run there. It checks each example
component with ``check_component``, audits two targets with them and judges the run by the example
policy; the test then checks the numbers it produced against what the examples plant."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

from anonaudit.registry import REGISTRIES

PAGE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCK = re.compile(r"^```(?:python|yaml)\n# (?P<file>[\w.-]+\.(?:py|yaml))\n(?P<body>.*?)^```$", re.M | re.S)


def page_files() -> dict[str, str]:
    """``{file name: text}`` of the page's named code blocks, in page order."""
    files = {m["file"]: f"# {m['file']}\n{m['body']}" for m in BLOCK.finditer(PAGE.read_text(encoding="utf-8"))}
    assert len(files) == len(BLOCK.findall(PAGE.read_text(encoding="utf-8"))), "two blocks name the same file"
    return files


@pytest.fixture
def example_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The page's files in ``tmp_path`` (the working directory, first on ``sys.path``); afterwards the
    example modules are forgotten and every registry holds what it held before."""
    for name, text in page_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    before = {kind: dict(reg._items) for kind, reg in REGISTRIES.items()}
    modules = set(sys.modules)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ANONAUDIT_PROGRESS", "0")
    yield tmp_path
    for kind, reg in REGISTRIES.items():
        reg._items.clear()
        reg._items.update(before[kind])
    for name in set(sys.modules) - modules:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_the_page_has_one_example_per_kind():
    files = page_files()
    assert list(files) == ["posterize.py", "colour_link.py", "mean_difference.py", "mean_blend.py", "policy.yaml",
                           "run_examples.py"]
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, name, "exec")  # every block is a whole, valid file


def test_the_examples_register_pass_check_component_and_audit(example_folder: Path, one_torch_thread):
    out = runpy.run_path(str(example_folder / "run_examples.py"), run_name="__main__")
    table = out["results"].table
    ok = table[table["status"] == "ok"].set_index(["target_label", "component", "metric"])
    link_posterize = ok.loc[("posterize(levels=2)", "colour_link", "link_rate")]
    link_blend = ok.loc[("mean_blend(alpha=0.9)", "colour_link", "link_rate")]
    n = int(ok.loc[("posterize(levels=2)", "release", "pairs"), "value"])
    assert n == 30 and link_posterize["n"] == link_blend["n"] == n  # 40 plates, a quarter to the intruder
    # on the originals every image links to itself; chance is one in n
    assert link_posterize["original"] == link_blend["original"] == 1.0
    assert link_posterize["baseline"] == pytest.approx(1 / n)
    # two grey levels keep the colour layout; a 90% blend with one learned mean image wipes it
    assert link_posterize["value"] > 0.25 and link_blend["value"] < 0.1
    difference = ok.loc[("posterize(levels=2)", "mean_difference", "mean_difference"), "value"]
    assert 0 < difference <= 64  # two levels: every value moves at most half a step of 128
    assert out["verdict"].targets == {"posterize(levels=2)": "FAIL", "mean_blend(alpha=0.9)": "PASS"}
    findings = out["results"].findings
    linked = round(n * (link_posterize["value"] + link_blend["value"]))
    assert set(findings["attack"]) == {"colour_link"} and len(findings) == linked  # one finding per linked file
