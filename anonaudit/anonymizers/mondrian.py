"""Mondrian grouping and mean unification for K-anonymity of vectors (paper 001, Algorithm 1).

Algorithm 1 on the vectors ``v_i`` (rows of ``X``, ``d`` dimensions), for a set ``V`` of rows:

1. if ``|V| < 2K``, ``V`` is a group;
2. draw a set ``A`` of ``N_s`` distinct dimensions at random;
3. ``j* = argmax_{j in A} (max_{i in V} v_ij - min_{i in V} v_ij)`` (the widest range);
4. sort ``V`` by dimension ``j*`` and cut it into its first and last half;
5. repeat from 1 on each half.

A set of ``|V| >= 2K`` rows splits into halves of ``floor(|V|/2) >= K`` and ``ceil(|V|/2)`` rows,
so every group has ``K .. 2K-1`` members whenever ``n >= K``. Unification replaces each member's
vector by its group's mean, so every released vector is shared by at least ``K`` rows.

Implementation choices the paper leaves open: the sort is stable (ties keep row order), the
odd row of an odd-sized set goes to the last half, ties in step 3 go to the first dimension drawn,
and the recursion is processed depth-first from the first half, with one seeded random generator,
so the same seed always gives the same groups.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..params import check_range


def mondrian_groups(
    vectors: np.ndarray, k: int, n_search: int | None = None, seed: int | np.random.Generator = 0
) -> list[np.ndarray]:
    """Algorithm 1: the groups (arrays of row indices, each sorted) of the ``(n, d)`` ``vectors``.

    ``n_search`` is ``N_s``, the number of dimensions searched per split (``None`` or more than
    ``d``: all of them). Raises :class:`DataError` when fewer than ``k`` rows are given (no group
    of ``k`` can exist) or the vectors are not finite.
    """
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise DataError(f"Mondrian needs an (n, d) array of vectors, got shape {x.shape}")
    k = int(k)
    check_range("mondrian", "K", k, ge=1)
    n, d = x.shape
    if n < k:
        raise DataError(f"cannot K-anonymize {n} item(s) with K={k}: at least K items are needed")
    if not np.all(np.isfinite(x)):
        raise DataError("Mondrian: the vectors contain NaN or infinite values")
    n_s = d if n_search is None else int(n_search)
    check_range("mondrian", "N_s (n_search)", n_s, ge=1)
    n_s = min(n_s, d)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    groups: list[np.ndarray] = []
    stack = [np.arange(n)]
    while stack:
        members = stack.pop()
        if len(members) < 2 * k:  # step 1
            groups.append(np.sort(members))
            continue
        dims = rng.choice(d, size=n_s, replace=False) if n_s < d else np.arange(d)  # step 2
        block = x[np.ix_(members, dims)]
        j_star = dims[int(np.argmax(block.max(axis=0) - block.min(axis=0)))]  # step 3
        ordered = members[np.argsort(x[members, j_star], kind="stable")]  # step 4
        half = len(ordered) // 2
        stack.append(ordered[half:])  # step 5, first half processed first
        stack.append(ordered[:half])
    return groups


def unify_by_mean(vectors: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Each row replaced by the mean of its group (the paper's unification)."""
    x = np.asarray(vectors, dtype=np.float64)
    out = np.empty_like(x)
    for g in groups:
        out[g] = x[g].mean(axis=0)
    return out


def group_index(groups: list[np.ndarray], n: int) -> np.ndarray:
    """``(n,)`` array: the group number of each row."""
    index = np.full(n, -1, dtype=np.int64)
    for gi, g in enumerate(groups):
        index[g] = gi
    if np.any(index < 0):
        raise DataError("the groups do not cover every row")
    return index
