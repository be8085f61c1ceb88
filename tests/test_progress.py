"""Progress output: bars only on a terminal, one plain line per finished unit in a log."""

from __future__ import annotations

import io

import pytest

from anonaudit import progress as P


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def progress_on(monkeypatch):
    monkeypatch.setenv("ANONAUDIT_PROGRESS", "1")


def test_log_gets_no_bar_and_one_line_per_finished_unit(monkeypatch, progress_on):
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    items = [1, 2, 3]
    assert P.progress(items, desc="x") is items  # no bar object wraps it
    for i in items:
        P.finished(f"unit {i}", 0.25)
    lines = log.getvalue().splitlines()
    assert lines == ["[ok] unit 1 (0.2 s)", "[ok] unit 2 (0.2 s)", "[ok] unit 3 (0.2 s)"]
    assert "\r" not in log.getvalue()


def test_terminal_gets_a_bar_and_no_lines(monkeypatch, progress_on):
    term = _Stream(tty=True)
    monkeypatch.setattr("sys.stderr", term)
    wrapped = P.progress([1, 2], desc="x")
    assert list(wrapped) == [1, 2] and wrapped is not None and not isinstance(wrapped, list)
    P.finished("unit", 1.0)
    assert "[ok] unit" not in term.getvalue()


def test_silenced_and_disabled_print_nothing(monkeypatch):
    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setenv("ANONAUDIT_PROGRESS", "0")
    P.finished("unit", 1.0)
    monkeypatch.setenv("ANONAUDIT_PROGRESS", "1")
    with P.silenced():
        P.finished("unit", 1.0)
    assert log.getvalue() == ""


def test_audit_run_into_a_log_prints_one_line_per_unit(monkeypatch, progress_on):
    from anonaudit import Audit, datasets
    from anonaudit.anonymizers import GaussianBlur, Mask
    from anonaudit.evaluators import PSNR

    log = _Stream(tty=False)
    monkeypatch.setattr("sys.stderr", log)
    Audit(datasets.synthetic_plates(n=6, seed=0), [GaussianBlur(sigma=2), Mask()], evaluators=[PSNR()]).run()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("[ok] ") and "psnr" in line for line in lines)
