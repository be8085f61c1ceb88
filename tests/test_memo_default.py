"""The model-output cache is on by default for a run's own output folder (``<output>/cache.sqlite``).

A rerun of the same run folder with one extra attack must make no model call it already made: the
real RapidOCR recogniser is wrapped so every crop it is asked to read is recorded by content hash.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from anonaudit import memo
from anonaudit.anonymizers.classical import GaussianBlur
from anonaudit.attacks.inversion import DeblurThenOCR
from anonaudit.attacks.ocr import OCRReread
from anonaudit.audit import Audit
from anonaudit.data.io import content_hash
from anonaudit.data.synthetic_plates import synthetic_plates
from anonaudit.models.ocr import RapidOCREngine

READ: list[str] = []  # content hashes of every crop the recogniser was run on (all instances)


class CountingRapidOCR(RapidOCREngine):
    """The real RapidOCR recogniser, recording each crop it reads."""

    def _recognize(self, crops: list[np.ndarray]):
        READ.extend(content_hash(c) for c in crops)
        return super()._recognize(crops)


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """No global cache, no in-memory outputs from other tests, an empty call record."""
    monkeypatch.delenv("ANONAUDIT_CACHE", raising=False)
    memo.clear_memory()
    READ.clear()
    yield
    memo.clear_memory()


def _audit(attacks) -> Audit:
    plates = synthetic_plates(n=12, seed=3)
    return Audit(plates, [GaussianBlur(sigma=1.5)], attacks, aux_fraction=0.25, seed=0)


def _ocr() -> OCRReread:
    return OCRReread(engine=CountingRapidOCR(allowlist="plates"))


def _deblur() -> DeblurThenOCR:
    return DeblurThenOCR(engine=CountingRapidOCR(allowlist="plates"), methods=["wiener"], wiener_balances=[0.01],
                         sigma_scales=[1.0])


def test_rerun_with_one_more_attack_makes_no_repeated_model_call(tmp_path):
    first = _audit([_ocr()]).run(tmp_path / "run", show_progress=False)
    first_reads = list(READ)
    # The originals and the release of 9 evaluation images were each read once.
    assert len(first_reads) == len(set(first_reads)) > 0
    assert (tmp_path / "run" / memo.RUN_CACHE_NAME).is_file()

    memo.clear_memory()  # as a new process would start: only the run folder's cache remains
    READ.clear()
    second = _audit([_ocr(), _deblur()]).run(tmp_path / "run", show_progress=False)
    second_reads = list(READ)
    # The new attack read its deblurred candidates (new pixels) but none of the crops read before
    # (the originals), and nothing twice.
    assert second_reads, "the extra attack ran no OCR at all"
    assert not set(second_reads) & set(first_reads)
    assert max(Counter(second_reads).values()) == 1
    def ocr_rows(r):
        return r.table[r.table.component == "ocr"].reset_index(drop=True)

    assert ocr_rows(second).equals(ocr_rows(first))
    assert (second.table.component == "deblur_ocr").any()
    assert (second.table[second.table.component == "deblur_ocr"].status == "ok").all()

    # Without resume every unit runs again, yet every reading comes from the run's cache.
    memo.clear_memory()
    READ.clear()
    _audit([_ocr(), _deblur()]).run(tmp_path / "run", resume=False, show_progress=False)
    assert READ == []


def test_cache_file_only_while_a_run_is_in_progress(tmp_path):
    assert memo.default_db_path() is None
    with memo.run_cache(tmp_path / "a.sqlite"):
        assert memo.Memo("m").db_path == tmp_path / "a.sqlite"
        with memo.run_cache(None):  # no output folder: the enclosing setting stays
            assert memo.default_db_path() == tmp_path / "a.sqlite"
    assert memo.default_db_path() is None
    _audit([_ocr()]).run(None, show_progress=False)  # an audit without output writes no cache file
    assert not list(tmp_path.iterdir())


def test_global_cache_takes_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("ANONAUDIT_CACHE", str(tmp_path / "global"))
    with memo.run_cache(tmp_path / "run.sqlite"):
        assert memo.default_db_path() == tmp_path / "global" / "features.sqlite"


def test_values_survive_the_sqlite_round_trip(tmp_path):
    calls = []

    def compute(idx):
        calls.append(list(idx))
        return [np.arange(3, dtype=np.float32) + i if i % 2 else {"text": f"T{i}"} for i in idx]

    with memo.run_cache(tmp_path / "c.sqlite"):
        first = memo.Memo("toy").get_or_compute(["a", "b", "a", "c"], compute)
        memo.clear_memory()
        again = memo.Memo("toy").get_or_compute(["c", "b", "a"], compute)
    assert calls == [[0, 1, 3]]  # "a" twice in one call is computed once; the second call computes nothing
    assert first[0] == first[2] == again[2] == {"text": "T0"}
    np.testing.assert_array_equal(again[1], first[1])
    np.testing.assert_array_equal(again[1], np.array([1, 2, 3], np.float32))
    np.testing.assert_array_equal(again[0], np.array([3, 4, 5], np.float32))
    assert again[0].dtype == np.float32
