"""What some tests need from outside the repo, and how they ask for it (see ``conftest.py``):
the shared real test data and Debian programs (Tesseract, Chromium, pdftoppm)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def shared_path(sub: str = "") -> Path:
    """``../shared/data/<sub>``; skips the calling test when absent (fails it in CI)."""
    path = SHARED_DATA / sub if sub else SHARED_DATA
    if not path.exists():
        message = f"needs the shared test data at {path} (absent in a fresh clone)"
        if in_ci():
            pytest.fail(f"{message}; CI always has ../shared/data, so this is an error there", pytrace=False)
        pytest.skip(message)
    return path


#: Debian programs some tests drive, and the command that installs each (root on Debian/Ubuntu).
DEBIAN_PROGRAMS = {
    "tesseract": "apt-get install -y tesseract-ocr tesseract-ocr-eng",
    "chromium": "apt-get install -y chromium",
    "pdftoppm": "apt-get install -y poppler-utils",
}


def debian_program(name: str) -> str:
    """Path of the program ``name``; skips the calling test with the install command when it is
    missing (``make test`` installs them when run as root), and fails it in CI, which installs them."""
    path = shutil.which(name)
    if path is None:
        message = f"needs the program '{name}': {DEBIAN_PROGRAMS.get(name, f'install {name}')}"
        if in_ci():
            pytest.fail(f"{message} (CI installs it, so its absence is an error there)", pytrace=False)
        pytest.skip(message)
    return path
