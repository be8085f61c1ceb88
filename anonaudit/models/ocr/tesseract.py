"""Tesseract 5 (LSTM) through ``pytesseract``: single-line mode (``--psm 7``) on each crop.

The reading comes from Tesseract's hOCR output with ``lstm_choice_mode=2``, which lists for every
recognised character the LSTM's ranked choices: those are the per-position alternatives (their
``x_confs`` divided by 100 as probabilities; Tesseract reports 0 for choices it ranks but deems
negligible, and their order is kept). The confidence is the mean per-character ``x_conf`` / 100.
"""

from __future__ import annotations

import subprocess
import threading
import xml.etree.ElementTree as ET

import numpy as np

from ...errors import ModelUnavailableError
from ...registry import OCR_ENGINES
from .base import OCREngine, Reading, resolve_allowlist

_LOCK = threading.Lock()
_INSTALL = "sudo apt-get install -y tesseract-ocr tesseract-ocr-eng"


def _title_value(title: str | None, key: str) -> float | None:
    for part in (title or "").split(";"):
        fields = part.split()
        if len(fields) >= 2 and fields[0] == key:
            return float(fields[1])
    return None


def parse_hocr(hocr: bytes) -> Reading:
    """A :class:`Reading` from Tesseract hOCR produced with ``lstm_choice_mode=2``.

    Words are joined with one space (a position without alternatives).
    """
    root = ET.fromstring(hocr)
    words: list[list[tuple[str, float, tuple[tuple[str, float], ...]]]] = []
    for word in root.iter("{http://www.w3.org/1999/xhtml}span"):
        if word.get("class") != "ocrx_word":
            continue
        chars: list[tuple[str, float, tuple[tuple[str, float], ...]]] = []
        for child in word:
            if (child.get("id") or "").startswith("lstm_choices"):
                if chars:
                    ranked = tuple(
                        (c.text, (_title_value(c.get("title"), "x_confs") or 0.0) / 100.0) for c in child if c.text
                    )
                    ch, conf, alts = chars[-1]
                    chars[-1] = (ch, conf, alts + tuple(r for r in ranked if r[0] != ch))
            elif child.get("class") == "ocrx_cinfo" and child.text:
                conf = (_title_value(child.get("title"), "x_conf") or 0.0) / 100.0
                chars.extend((ch, conf, ((ch, conf),)) for ch in child.text)
        if chars:
            words.append(chars)
    text, confs, alts = [], [], []
    for w, chars in enumerate(words):
        if w:
            text.append(" ")
            alts.append(((" ", float("nan")),))
        for ch, conf, ranked in chars:
            text.append(ch)
            confs.append(conf)
            alts.append(ranked)
    return Reading("".join(text), float(np.mean(confs)) if confs else float("nan"), tuple(alts))


@OCR_ENGINES.register("tesseract")
class TesseractEngine(OCREngine):
    """Tesseract LSTM OCR of each crop as a single text line.

    Args:
        allowlist: ``tessedit_char_whitelist`` (``"plates"`` = A-Z0-9; ``None`` = no restriction).
        psm: page segmentation mode (7 = a single text line).
        lang: Tesseract language pack.
        tesseract_cmd: the tesseract executable.
    """

    def __init__(self, allowlist: str | None = None, psm: int = 7, lang: str = "eng", tesseract_cmd: str = "tesseract"):
        self.allowlist = allowlist
        self.psm = psm
        self.lang = lang
        self.tesseract_cmd = tesseract_cmd
        self._version: str | None = None

    def backend_version(self) -> str:
        if self._version is None:
            try:
                proc = subprocess.run(
                    [self.tesseract_cmd, "--version"], capture_output=True, text=True, timeout=30, check=False
                )
            except (FileNotFoundError, PermissionError) as exc:
                raise ModelUnavailableError(
                    "tesseract",
                    f"the tesseract binary '{self.tesseract_cmd}' cannot be run ({exc.strerror or exc})",
                    _INSTALL,
                ) from None
            first = (proc.stdout or proc.stderr).strip().splitlines()
            if proc.returncode != 0 or not first:
                raise ModelUnavailableError("tesseract", f"'{self.tesseract_cmd} --version' failed", _INSTALL)
            self._version = first[0].split()[-1]
        return self._version

    def _config(self) -> str:
        cfg = f"--psm {int(self.psm)} -c lstm_choice_mode=2 -c hocr_char_boxes=1"
        allowed = resolve_allowlist(self.allowlist)
        if allowed:
            cfg += f" -c tessedit_char_whitelist={allowed}"
        return cfg

    def _recognize(self, crops: list[np.ndarray]) -> list[Reading]:
        try:
            import pytesseract
        except ImportError as exc:
            raise ModelUnavailableError(
                "tesseract", f"pytesseract not installed ({exc})", "pip install pytesseract"
            ) from None
        self.backend_version()
        out = []
        for crop in crops:
            with _LOCK:  # pytesseract keeps the executable in a module global
                pytesseract.pytesseract.tesseract_cmd = self.tesseract_cmd
                hocr = pytesseract.image_to_pdf_or_hocr(crop, lang=self.lang, extension="hocr", config=self._config())
            out.append(parse_hocr(hocr))
        return out
