"""Pareto fronts of privacy against utility (pure functions on numbers; nothing is run here).

A method *dominates* another when it is at least as good on both axes and strictly better on one,
"good" being oriented per axis (lower attack success or risk is better for privacy; a utility
metric says whether higher is better). The front is the set of methods no other method dominates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def dominates(a: Sequence[float], b: Sequence[float], higher_is_better: Sequence[bool]) -> bool:
    """Whether point ``a`` dominates ``b``: no worse on every axis and strictly better on one."""
    better = False
    for x, y, hib in zip(a, b, higher_is_better):
        gain = (x - y) if hib else (y - x)
        if gain < 0:
            return False
        better = better or gain > 0
    return better


def pareto_front(points: pd.DataFrame, columns: Sequence[str], higher_is_better: Sequence[bool]) -> pd.DataFrame:
    """Mark the non-dominated rows of ``points``.

    Returns a copy of ``points`` with ``on_front`` (bool) and ``dominated_by`` (the index labels of
    the rows that dominate it, as a list). Rows with a missing value on any axis are neither on the
    front nor dominated: they get ``on_front = False`` and ``dominated_by = None`` (not comparable).
    """
    if len(columns) != len(higher_is_better):
        raise ValueError(f"{len(columns)} columns but {len(higher_is_better)} orientations")
    out = points.copy()
    values = {i: [float(v) for v in r] for i, r in zip(points.index, points[list(columns)].itertuples(index=False))}
    complete = {i: v for i, v in values.items() if all(math.isfinite(x) for x in v)}
    on_front, dominated_by = [], []
    for i in points.index:
        if i not in complete:
            on_front.append(False)
            dominated_by.append(None)
            continue
        by = [j for j, v in complete.items() if j != i and dominates(v, complete[i], higher_is_better)]
        on_front.append(not by)
        dominated_by.append(by)
    out["on_front"] = on_front
    out["dominated_by"] = dominated_by
    return out
