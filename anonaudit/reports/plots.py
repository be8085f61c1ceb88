"""Matplotlib figures for reports, returned as PNG bytes (no model is run here).

Point labels are placed by :func:`place_labels`: each label goes to the first of several offsets
around its point (at growing distances) where it overlaps neither another label, nor a marker,
nor the axes' edge; a leader line joins labels set far from their point. The trade-off plot labels
its points with numbers (:func:`numbered_points`), which the report's key spells out in full, so
that points that coincide still get labels that do not collide.

Its risk axis (:func:`risk_axis`) shows every point and every CI up to :data:`RISK_AXIS_CAP`; a CI
that goes on beyond the axis (an unbounded upper end, say) ends in a triangle on the axis' edge.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter
from matplotlib.transforms import Bbox

from .fmt import natural_key

#: Highest y shown for a CI end (a higher or unbounded end is cut at the edge and marked there).
RISK_AXIS_CAP = 3.0
#: Most panels of the Pareto figure (the list in the comparison report has every pair).
MAX_PARETO_PANELS = 8
_DIRECTIONS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)]
#: Distances (pixels) of the label offsets tried around a point, nearest first.
_RADII = (4, 12, 22, 34, 48, 64, 84)


def tradeoff_points(table: pd.DataFrame, max_risk: pd.DataFrame, utility_metric: str) -> pd.DataFrame:
    """Per target: its ``utility_metric`` value (with CI) from ``table`` and its headline risk (with
    CI) from ``max_risk`` (the frame :meth:`~anonaudit.results.Results.max_risk` returns); targets
    without either are left out."""
    cols = [
        "target_label",
        "target",
        "utility",
        "utility_ci_low",
        "utility_ci_high",
        "risk",
        "risk_ci_low",
        "risk_ci_high",
    ]
    ok = table[table["status"] == "ok"]
    util = ok[(ok["kind"] == "evaluator") & (ok["metric"] == utility_metric)]
    util = util[["target_label", "target", "value", "ci_low", "ci_high"]].rename(
        columns={"value": "utility", "ci_low": "utility_ci_low", "ci_high": "utility_ci_high"})
    risk = max_risk.reindex(columns=["target_label", "risk", "risk_ci_low", "risk_ci_high"]).dropna(subset=["risk"])
    if util.empty or risk.empty:
        return pd.DataFrame(columns=cols)
    pts = util.merge(risk, on="target_label").drop_duplicates("target_label")
    return pts[cols].apply(lambda c: pd.to_numeric(c) if c.name not in ("target_label", "target") else c)


def numbered_points(table: pd.DataFrame, max_risk: pd.DataFrame, utility_metric: str) -> pd.DataFrame:
    """:func:`tradeoff_points` ordered by method (first seen) and naturally within a method, with
    ``number`` (1, 2, ...): the label of each point in the plot and its row in the report's key."""
    pts = tradeoff_points(table, max_risk, utility_metric)
    first = {t: i for i, t in enumerate(dict.fromkeys(pts["target"]))}
    order = sorted(
        range(len(pts)), key=lambda i: (first[pts["target"].iloc[i]], natural_key(pts["target_label"].iloc[i]))
    )
    return pts.iloc[order].reset_index(drop=True).assign(number=lambda d: range(1, len(d) + 1))


def risk_axis(
    risk: Sequence[float], low: Sequence[float], high: Sequence[float], cap: float = RISK_AXIS_CAP
) -> tuple[float, float]:
    """The risk axis' limits: every point, 0 and 1 (chance and the originals), and every CI end
    within ``[-cap, cap]``, with a margin of 6%. CI ends beyond them are cut (and marked)."""
    r = np.asarray(risk, float)
    ends = np.concatenate([np.asarray(low, float), np.asarray(high, float)])
    ends = ends[np.isfinite(ends)]
    shown = np.concatenate([[0.0, 1.0], r[np.isfinite(r)], np.clip(ends, -cap, cap)])
    lo, hi = float(shown.min()), float(shown.max())
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def place_labels(ax, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], fontsize: float = 7.5,
                 avoid: Sequence[tuple[float, float, float, float]] = ()) -> list:
    """Annotate point ``i`` with ``texts[i]`` without collisions (see the module doc); ``avoid``
    adds data-space boxes ``(x0, y0, x1, y1)`` to keep clear of (error bars). Returns the
    annotations (empty texts are skipped)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    points = [to_px((x, y)) for x, y in zip(xs, ys)]
    marker = 4.0 * fig.dpi / 72.0
    obstacles = [Bbox.from_extents(px - marker, py - marker, px + marker, py + marker) for px, py in points]
    for x0, y0, x1, y1 in avoid:
        (a, b), (c, d) = to_px((x0, y0)), to_px((x1, y1))
        obstacles.append(Bbox.from_extents(min(a, c) - 1, min(b, d) - 1, max(a, c) + 1, max(b, d) + 1))
    frame = ax.get_window_extent(renderer)
    placed = []
    for (px, py), text in zip(points, texts):
        if not text:
            continue
        best = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                # created at its place: an annotation moved after creation reports its old extent until drawn
                ann = ax.annotate(
                    text,
                    (px + dx * radius, py + dy * radius),
                    xycoords="figure pixels",
                    fontsize=fontsize,
                    ha={1: "left", -1: "right", 0: "center"}[dx],
                    va={1: "bottom", -1: "top", 0: "center"}[dy],
                )
                box = ann.get_window_extent(renderer)
                ann.remove()
                cost = sum(_overlap(box, o) for o in obstacles)
                outside = box.width * box.height - _overlap(box, frame)
                cost += 4 * outside
                if best is None or cost < best[0]:
                    best = (cost, dx, dy, radius, box)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, dx, dy, radius, box = best
        data_xy = ax.transData.inverted().transform((px, py))
        ann = ax.annotate(text, data_xy, xytext=(dx * radius * 72.0 / fig.dpi, dy * radius * 72.0 / fig.dpi),
                          textcoords="offset points", fontsize=fontsize,
                          ha={1: "left", -1: "right", 0: "center"}[dx], va={1: "bottom", -1: "top", 0: "center"}[dy],
                          arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "#777"} if radius > 12 else None)
        obstacles.append(box)
        placed.append(ann)
    return placed


def _errors(
    values: pd.Series, low: pd.Series, high: pd.Series, limits: tuple[float, float] | None = None
) -> np.ndarray:
    """Asymmetric error bar lengths (2 x n); missing ends give no bar; ``limits`` cut both ends."""
    v = values.to_numpy(float)
    lo, hi = low.to_numpy(float), high.to_numpy(float)
    lo = np.where(np.isnan(lo), v, lo)
    hi = np.where(np.isnan(hi), v, hi)
    if limits is not None:
        lo, hi = np.maximum(lo, limits[0]), np.minimum(hi, limits[1])
    return np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return buf.getvalue()


def tradeoff_png(
    table: pd.DataFrame, max_risk: pd.DataFrame, utility_metric: str, higher_is_better: bool = True
) -> bytes | None:
    """Privacy-utility trade-off: x = utility, y = the headline (highest) risk, both with 95% CIs;
    points numbered as in :func:`numbered_points`, CIs cut by the risk axis marked at its edge."""
    pts = numbered_points(table, max_risk, utility_metric)
    if pts.empty:
        return None
    bottom, top = risk_axis(pts["risk"], pts["risk_ci_low"], pts["risk_ci_high"])
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    ax.set_ylim(bottom, top)
    bars, cut = [], False
    for name, group in pts.groupby("target", sort=False):
        yerr = _errors(group["risk"], group["risk_ci_low"], group["risk_ci_high"], (bottom, top))
        xerr = _errors(group["utility"], group["utility_ci_low"], group["utility_ci_high"])
        line = ax.errorbar(group["utility"], group["risk"], xerr=xerr, yerr=yerr, marker="o", ms=5, capsize=2.5,
                           elinewidth=0.8, label=str(name))
        color = line[0].get_color()
        for edge, ends, marker in (
            (top, group["risk_ci_high"] > top, "^"),
            (bottom, group["risk_ci_low"] < bottom, "v"),
        ):
            if ends.any():
                ax.plot(group.loc[ends, "utility"], [edge] * int(ends.sum()), marker, color=color, ms=7, clip_on=False)
                cut = True
        for x, y, (dy0, dy1), (dx0, dx1) in zip(group["utility"], group["risk"], yerr.T, xerr.T):
            bars += [(x, y - dy0, x, y + dy1), (x - dx0, y, x + dx1, y)]
    ax.axhline(1.0, color="#b3261e", lw=0.8, ls="--", label="risk of the originals (100%)")
    if cut:
        ax.plot([], [], "^", color="#555", ms=6, label="CI goes on beyond the axis")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"{utility_metric} ({'higher' if higher_is_better else 'lower'} = more utility)")
    ax.set_ylabel("highest risk over attacks\n(0% = chance, 100% = as the originals)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    ax.set_title("Privacy-utility trade-off (bars: 95% CI; numbers: targets in the key)")
    fig.canvas.draw()
    place_labels(ax, list(pts["utility"]), list(pts["risk"]), [str(n) for n in pts["number"]], fontsize=8, avoid=bars)
    return _png(fig)

