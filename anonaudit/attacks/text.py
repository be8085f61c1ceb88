"""Plate-text normalisation and the character-level scores of the OCR attacks.

Normalisation (:func:`normalize_plate`) makes a reading and a ground-truth label comparable:

1. Unicode NFKC (full-width forms become ASCII), then upper case;
2. every character that is not a letter or a digit is removed: spaces, hyphens, dots, the
   separator dots and stars printed on plates, any other punctuation;
3. optionally (``fold=True``) look-alike characters are folded onto one representative,
   with :data:`CONFUSIONS` (``O, Q, D -> 0``, ``I, L -> 1``, ``Z -> 2``, ``S -> 5``,
   ``B -> 8``, ``G -> 6``). Folding is applied to BOTH the truth and the reading, so it forgives
   exactly the confusions a human reading a plate would also resolve by context (the plate
   format). It is off by default: ``exact_match`` is strict; the OCR attack reports the folded
   rate separately as ``exact_match_folded``.

Scores: :func:`levenshtein` (unit-cost insert/delete/substitute), character error rate
``CER = edit distance / len(truth)`` and ``char accuracy = max(0, 1 - CER)``.
:func:`topk_char_accuracy` rescues substitutions whose true character is among the engine's
top-k alternatives at that position (with ``k = 1`` it equals the char accuracy).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

#: Look-alike characters folded onto one representative when ``fold=True``.
CONFUSIONS: Mapping[str, str] = {
    "O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8", "G": "6",
}  # fmt: skip

#: The characters a plate is made of; a no-information guesser without auxiliary data picks
#: uniformly among them.
PLATE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

Alternatives = Sequence[Sequence[tuple[str, float]]]


def _keep(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def fold_char(ch: str, confusions: Mapping[str, str] = CONFUSIONS) -> str:
    """``ch`` after confusion folding (unchanged when it has no look-alike entry)."""
    return confusions.get(ch, ch)


def normalize_char(ch: str) -> str:
    """One character normalised: NFKC + upper case; ``""`` when it is not a letter or digit."""
    out = unicodedata.normalize("NFKC", ch).upper()
    return "".join(c for c in out if _keep(c))


def normalize_plate(text: str | None, fold: bool = False, confusions: Mapping[str, str] = CONFUSIONS) -> str:
    """Canonical plate text: upper case, letters and digits only, optionally confusion-folded.

    >>> normalize_plate(" mh-12 ab.1234 ")
    'MH12AB1234'
    >>> normalize_plate("MO 12", fold=True)
    'M012'
    """
    if not text:
        return ""
    out = "".join(normalize_char(c) for c in text)
    if fold:
        out = "".join(fold_char(c, confusions) for c in out)
    return out


def normalize_alternatives(
    raw_text: str, alternatives: Alternatives, fold: bool = False, confusions: Mapping[str, str] = CONFUSIONS
) -> tuple[str, list[list[tuple[str, float]]]]:
    """Normalise a reading together with its per-position alternatives.

    ``alternatives[i]`` ranks candidates for ``raw_text[i]`` (best first). Positions whose best
    character is removed by normalisation (spaces, punctuation) are dropped (the text equals
    :func:`normalize_plate` of ``raw_text``); inside a position,
    candidates are normalised, removed ones dropped, and duplicates (after folding) merged keeping
    the first (best) rank. Returns ``(normalised text, alternatives aligned with it)``.
    """
    if len(alternatives) != len(raw_text):
        raise ValueError(f"{len(alternatives)} alternative lists for a reading of {len(raw_text)} characters")
    text: list[str] = []
    out: list[list[tuple[str, float]]] = []
    for ch, cands in zip(raw_text, alternatives):
        best = normalize_char(ch)
        if len(best) != 1:
            # Removed (space, punctuation), or a compatibility character that expands to several
            # (e.g. a ligature): each resulting character is its own position, no alternatives.
            for c in best:
                c = fold_char(c, confusions) if fold else c
                text.append(c)
                out.append([(c, float("nan"))])
            continue
        probs: dict[str, float] = {}
        order = [best]
        for cand, prob in cands:
            c = normalize_char(cand)
            if len(c) == 1:
                c = fold_char(c, confusions) if fold else c
                probs.setdefault(c, float(prob))
                order.append(c)
        if fold:
            order[0] = fold_char(best, confusions)
        ranked = [(c, probs.get(c, float("nan"))) for c in dict.fromkeys(order)]
        text.append(ranked[0][0])
        out.append(ranked)
    return "".join(text), out


def levenshtein(a: str, b: str) -> int:
    """Unit-cost edit distance (insertions, deletions, substitutions) between ``a`` and ``b``."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_error_rate(truth: str, reading: str) -> float:
    """``levenshtein(truth, reading) / len(truth)`` (can exceed 1 when the reading is long)."""
    if not truth:
        raise ValueError("character error rate is undefined for an empty ground-truth text")
    return levenshtein(truth, reading) / len(truth)


def char_accuracy(truth: str, reading: str) -> float:
    """``max(0, 1 - CER)``: 1 for an exact reading, 0 for an empty or entirely wrong one."""
    return max(0.0, 1.0 - char_error_rate(truth, reading))


def align(truth: str, reading: str) -> list[tuple[int | None, int | None]]:
    """A minimum-edit alignment as ``(truth index, reading index)`` pairs.

    ``(i, j)`` is a match or substitution, ``(i, None)`` a deletion (truth character not read),
    ``(None, j)`` an insertion. Ties prefer the diagonal, so the result is deterministic.
    """
    n, m = len(truth), len(reading)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (truth[i - 1] != reading[j - 1]))
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != reading[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def topk_char_accuracy(truth: str, reading: str, alternatives: Alternatives, k: int) -> float:
    """Char accuracy where a substitution counts as correct when the true character is in the
    top ``k`` alternatives at the aligned reading position.

    The alignment is the minimum-edit alignment of the top-1 reading (:func:`align`); deletions
    and insertions still count as errors. ``max(0, 1 - errors / len(truth))``; equals
    :func:`char_accuracy` for ``k = 1``.
    """
    if not truth:
        raise ValueError("top-k character accuracy is undefined for an empty ground-truth text")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(alternatives) != len(reading):
        raise ValueError(f"{len(alternatives)} alternative lists for a reading of {len(reading)} characters")
    errors = 0
    for i, j in align(truth, reading):
        if i is None or j is None:
            errors += 1
        elif truth[i] != reading[j]:
            top = [c for c, _ in alternatives[j][:k]]
            errors += truth[i] not in top
    return max(0.0, 1.0 - errors / len(truth))
