"""Number formatting and ordering shared by every report (HTML, PDF, compare tables).

One rule per kind of number, so that a column reads the same everywhere: attack success rates,
originals and baselines as percentages with one decimal (a baseline of 1.85e-07 is ``0.0%``),
risks with two decimals (``1.35`` for a release that leaks more than the originals), counts as
integers and other measures with a fixed number of decimals chosen by magnitude (never in
scientific notation).

The HTML and compliance reports show every rate and every risk in one form, :func:`pct_ci`:
``12.3% [8.1, 17.6]`` (a risk of 1.35 reads ``135.0%`` of what the originals leak); other
measures (AUC, SSIM) read :func:`num_ci`. Long labels are shortened in the middle
(:func:`middle`), the full text going into a tooltip.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

MISSING = "–"


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def num(v: Any) -> str:
    """A measure: 3 decimals below 10, 2 below 100, 1 below 1000, thousands separators above."""
    f = _number(v)
    if f is None:
        return MISSING
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    a = abs(f)
    text = f"{f:,.0f}" if a >= 1000 else f"{f:.1f}" if a >= 100 else f"{f:.2f}" if a >= 10 else f"{f:.3f}"
    return "0.000" if text in ("-0.000", "-0.00", "-0.0") else text


def count(v: Any) -> str:
    """A count (n, pairs): an integer."""
    f = _number(v)
    return MISSING if f is None or math.isinf(f) else f"{int(round(f)):,}"


def seconds(v: Any) -> str:
    """A duration: ``0.4 s``, ``12.3 s``, ``2 min 05 s`` (whole seconds from a minute on)."""
    f = _number(v)
    if f is None or math.isinf(f):
        return MISSING
    if f < 59.95:
        return f"{f:.1f} s"
    minutes, rest = divmod(int(round(f)), 60)
    return f"{minutes} min {rest:02d} s"


def pct(v: Any) -> str:
    """A rate in [0, 1] as a percentage with one decimal."""
    f = _number(v)
    if f is None:
        return MISSING
    if math.isinf(f):
        return "∞"
    text = f"{100 * f:.1f}%"
    return "0.0%" if text == "-0.0%" else text


def risk(v: Any) -> str:
    """A risk (0 = chance, 1 = as the originals, above 1 = leaks more than the originals)."""
    f = _number(v)
    if f is None:
        return MISSING
    return "∞" if math.isinf(f) else f"{f:.2f}"


def interval(lo: Any, hi: Any, fmt: Callable[[Any], str] = num) -> str:
    """``[lo, hi]`` in the value's own format, or empty when there is no interval."""
    if _number(lo) is None or _number(hi) is None:
        return ""
    return f"[{fmt(lo)}, {fmt(hi)}]"


def pct_bounds(lo: Any, hi: Any) -> str:
    """A rate's 95% CI as percentages with one decimal and no sign (``[8.1, 17.6]``), or empty."""
    if _number(lo) is None or _number(hi) is None:
        return ""
    return f"[{pct(lo).rstrip('%')}, {pct(hi).rstrip('%')}]"


def ci(lo: Any, hi: Any, kind: str = "num") -> str:
    """The bracketed CI of a value shown as ``kind`` (``pct``: :func:`pct_bounds`; ``num``: :func:`interval`)."""
    return pct_bounds(lo, hi) if kind == "pct" else interval(lo, hi)


def pct_ci(v: Any, lo: Any = None, hi: Any = None) -> str:
    """A rate or a risk with its CI in the reports' one format: ``12.3% [8.1, 17.6]``."""
    return f"{pct(v)} {pct_bounds(lo, hi)}".strip()


def num_ci(v: Any, lo: Any = None, hi: Any = None) -> str:
    """A measure that is not a rate with its CI: ``0.750 [0.700, 0.800]``."""
    return f"{num(v)} {interval(lo, hi)}".strip()


def middle(text: Any, limit: int = 44) -> str:
    """``text`` shortened to ``limit`` characters by cutting its middle (``external(path=/da…/release)``)."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head):]}"


def is_rate(metric: Any, values: Iterable[Any]) -> bool:
    """Whether an attack metric reads as a percentage: every value in [0, 1] and not an AUC."""
    if "auc" in str(metric).lower():
        return False
    nums = [f for f in (_number(v) for v in values) if f is not None]
    return all(-1e-9 <= f <= 1 + 1e-9 for f in nums)


def natural_key(text: Any) -> tuple:
    """Sort key under which ``block=4`` < ``block=8`` < ``block=16`` (numbers compare as numbers)."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", str(text))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p != "")


def method_of(label: str) -> str:
    """The method part of a target label (``pixelate`` of ``pixelate(block=8)``)."""
    return str(label).split("(", 1)[0]


def natural_order(labels: Iterable[str], group: Callable[[str], str] = method_of) -> list[str]:
    """``labels`` (duplicates dropped) sorted naturally within their group, groups in first-seen order."""
    labels = list(dict.fromkeys(labels))
    first: dict[str, int] = {}
    for lab in labels:
        first.setdefault(group(lab), len(first))
    return sorted(labels, key=lambda lab: (first[group(lab)], natural_key(lab)))
