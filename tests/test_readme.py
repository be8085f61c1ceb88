"""The README's Python API example runs as written (on fewer plates, into a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rapidocr")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no Python example"
    code = blocks[0]
    assert "synthetic_plates(n=250" in code and 'audit.run("runs/plates")' in code
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANONAUDIT_PROGRESS", "0")
    exec(compile(code.replace("n=250", "n=15"), str(README), "exec"), {})  # exec of our own README
    out = tmp_path / "runs" / "plates"
    assert (out / "results.csv").is_file() and (out / "report.html").is_file()
    printed = capsys.readouterr().out
    assert "mask" in printed and "risk" in printed
