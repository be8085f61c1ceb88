"""Plate text normalisation, edit distance, CER and top-k character accuracy against known answers."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonaudit.attacks.text import (
    align,
    char_accuracy,
    char_error_rate,
    levenshtein,
    normalize_alternatives,
    normalize_plate,
    topk_char_accuracy,
)

short = st.text(alphabet="AB01 -.", max_size=7)


def reference_levenshtein(a: str, b: str) -> int:
    """The textbook recursive definition (independent of the implementation under test)."""

    @cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


def test_normalize_plate_strips_case_spaces_punctuation():
    assert normalize_plate(" mh-12 ab.1234 ") == "MH12AB1234"
    assert normalize_plate("[AN 40 W 7649]") == "AN40W7649"
    assert normalize_plate("ＭＨ１２") == "MH12"  # full-width forms (NFKC)
    assert normalize_plate("·NJ·BY-993E") == "NJBY993E"
    assert normalize_plate(None) == "" and normalize_plate("") == ""


def test_confusion_folding_applies_to_both_sides():
    assert normalize_plate("MO 12", fold=True) == "M012"
    assert normalize_plate("ISBZ", fold=True) == "1582"
    truth, read = "DL8CAF5031", "DL8CAFS03I"
    assert normalize_plate(truth) != normalize_plate(read)
    assert normalize_plate(truth, fold=True) == normalize_plate(read, fold=True)


def test_levenshtein_known_values():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "ABC") == 3
    assert levenshtein("MH12AB1234", "MH12AB1234") == 0
    assert levenshtein("MH12AB1234", "MH12A81234") == 1
    assert levenshtein("ABCD", "BCDA") == 2


@settings(max_examples=200, deadline=None)
@given(short, short)
def test_levenshtein_matches_reference_and_is_symmetric(a, b):
    assert levenshtein(a, b) == reference_levenshtein(a, b) == levenshtein(b, a)


def test_cer_and_char_accuracy_hand_computed():
    assert char_error_rate("ABCD", "ABXD") == pytest.approx(0.25)
    assert char_error_rate("ABCD", "") == pytest.approx(1.0)
    assert char_error_rate("AB", "XYZW") == pytest.approx(2.0)  # CER can exceed 1 ...
    assert char_accuracy("AB", "XYZW") == 0.0  # ... char accuracy is clipped at 0
    assert char_accuracy("MH12AB1234", "MH12A81234") == pytest.approx(0.9)
    with pytest.raises(ValueError, match="empty ground-truth"):
        char_error_rate("", "A")


@settings(max_examples=200, deadline=None)
@given(short, short)
def test_alignment_cost_equals_edit_distance(a, b):
    pairs = align(a, b)
    assert [i for i, _ in pairs if i is not None] == list(range(len(a)))
    assert [j for _, j in pairs if j is not None] == list(range(len(b)))
    cost = sum(1 for i, j in pairs if i is None or j is None or a[i] != b[j])
    assert cost == levenshtein(a, b)


def test_topk_char_accuracy_rescues_substitutions_in_top_k():
    alts = [[("A", 0.9)], [("8", 0.6), ("B", 0.3), ("3", 0.1)], [("1", 0.99)]]
    assert topk_char_accuracy("AB1", "A81", alts, 1) == pytest.approx(2 / 3)
    assert topk_char_accuracy("AB1", "A81", alts, 2) == pytest.approx(1.0)
    # A deletion is never rescued: "AB1" read as "A1".
    assert topk_char_accuracy("AB1", "A1", [[("A", 1.0)], [("1", 1.0), ("B", 0.5)]], 5) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 alternative lists for a reading of 3 characters"):
        topk_char_accuracy("AB1", "A81", alts[:2], 1)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="AB01", min_size=1, max_size=6), st.text(alphabet="AB01", max_size=6))
def test_top1_equals_char_accuracy(truth, read):
    alts = [[(c, 1.0), ("Z", 0.0)] for c in read]
    assert topk_char_accuracy(truth, read, alts, 1) == pytest.approx(char_accuracy(truth, read))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="Ab0 -.ＡO", max_size=8))
def test_normalized_alternatives_align_with_normalized_text(raw):
    alts = [[(c, 0.9), ("o", 0.05), ("-", 0.05)] for c in raw]
    for fold in (False, True):
        text, norm = normalize_alternatives(raw, alts, fold=fold)
        assert text == normalize_plate(raw, fold=fold)
        assert len(norm) == len(text)
        assert all(pos[0][0] == ch for pos, ch in zip(norm, text))
        assert all(len({c for c, _ in pos}) == len(pos) for pos in norm)  # duplicates merged


def test_normalized_alternatives_fold_merges_lookalikes():
    text, alts = normalize_alternatives(
        "O 1", [[("O", 0.7), ("0", 0.2), ("Q", 0.1)], [(" ", 1.0)], [("1", 0.8), ("I", 0.2)]], fold=True
    )
    assert text == "01"
    assert [c for c, _ in alts[0]] == ["0"] and [c for c, _ in alts[1]] == ["1"]
