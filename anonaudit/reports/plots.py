"""Matplotlib figures for reports, returned as PNG bytes (no model is run here).

Point labels are placed by :func:`place_labels`: each label goes to the first of several offsets
around its point (at growing distances) where it overlaps neither another label, nor a marker,
nor the axes' edge; a leader line joins labels set far from their point.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from .fmt import natural_key  # noqa: E402

#: Highest y shown for a risk (an unbounded upper CI is drawn up to the top edge, with an arrow).
RISK_AXIS_CAP = 3.0
#: Most panels of the Pareto figure (the list in the comparison report has every pair).
MAX_PARETO_PANELS = 8
_DIRECTIONS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)]


def tradeoff_points(table: pd.DataFrame, max_risk: pd.DataFrame, utility_metric: str) -> pd.DataFrame:
    """Per target: its ``utility_metric`` value (with CI) from ``table`` and its headline risk (with
    CI) from ``max_risk`` (the frame :meth:`~anonaudit.results.Results.max_risk` returns); targets
    without either are left out."""
    cols = ["target_label", "target", "utility", "utility_ci_low", "utility_ci_high", "risk", "risk_ci_low", "risk_ci_high"]
    ok = table[table["status"] == "ok"]
    util = ok[(ok["kind"] == "evaluator") & (ok["metric"] == utility_metric)]
    util = util[["target_label", "target", "value", "ci_low", "ci_high"]].rename(
        columns={"value": "utility", "ci_low": "utility_ci_low", "ci_high": "utility_ci_high"})
    risk = max_risk.reindex(columns=["target_label", "risk", "risk_ci_low", "risk_ci_high"]).dropna(subset=["risk"])
    if util.empty or risk.empty:
        return pd.DataFrame(columns=cols)
    pts = util.merge(risk, on="target_label").drop_duplicates("target_label")
    return pts[cols].apply(lambda c: pd.to_numeric(c) if c.name not in ("target_label", "target") else c)


def swept_params(labels: list[str]) -> list[str]:
    """For labels of one method (``name(a=1, b=2)``), the parameters that differ between them:
    ``["sigma=1", "sigma=2"]`` for a blur sweep that also fixes ``region=boxes``; ``""`` where none differ."""
    parts = [[p.strip() for p in lab.split("(", 1)[1].rstrip(")").split(", ")] if "(" in lab else [] for lab in labels]
    common = set.intersection(*(set(p) for p in parts)) if parts else set()
    return [", ".join(p for p in ps if p not in common) for ps in parts]


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
        for radius in (4, 12, 22, 34):
            for dx, dy in _DIRECTIONS:
                ann = ax.annotate(text, (0, 0), xycoords="figure pixels", fontsize=fontsize,
                                  ha={1: "left", -1: "right", 0: "center"}[dx], va={1: "bottom", -1: "top", 0: "center"}[dy])
                ann.xy = (px + dx * radius, py + dy * radius)
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


def _errors(values: pd.Series, low: pd.Series, high: pd.Series, cap: float | None = None) -> np.ndarray:
    """Asymmetric error bar lengths (2 x n); missing ends give no bar; ``cap`` bounds the upper end."""
    v = values.to_numpy(float)
    lo = np.where(np.isfinite(low.to_numpy(float)), low.to_numpy(float), v)
    hi = high.to_numpy(float)
    hi = np.where(np.isnan(hi), v, hi)
    if cap is not None:
        hi = np.minimum(hi, cap)
    return np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return buf.getvalue()


def tradeoff_png(table: pd.DataFrame, max_risk: pd.DataFrame, utility_metric: str, higher_is_better: bool = True) -> bytes | None:
    """Privacy-utility trade-off: x = utility, y = the headline (highest) risk, both with 95% CIs."""
    pts = tradeoff_points(table, max_risk, utility_metric)
    if pts.empty:
        return None
    finite_hi = pts["risk_ci_high"].replace(np.inf, np.nan)
    top = float(np.nanmax([1.0, pts["risk"].max(), finite_hi.max()]))
    top = min(RISK_AXIS_CAP, top) * 1.08
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    ax.set_ylim(-0.05, top)
    xs, ys, texts, bars = [], [], [], []
    for name, group in pts.groupby("target", sort=False):
        group = group.iloc[sorted(range(len(group)), key=lambda i: natural_key(group["target_label"].iloc[i]))]
        yerr = _errors(group["risk"], group["risk_ci_low"], group["risk_ci_high"], cap=top)
        xerr = _errors(group["utility"], group["utility_ci_low"], group["utility_ci_high"])
        line = ax.errorbar(group["utility"], group["risk"], xerr=xerr, yerr=yerr, marker="o", ms=5, capsize=2.5,
                           elinewidth=0.8, label=str(name))
        color = line[0].get_color()
        unbounded = group[np.isinf(group["risk_ci_high"])]
        for _, r in unbounded.iterrows():
            ax.annotate("", (r["utility"], top), (r["utility"], r["risk"]),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8})
        xs += list(group["utility"])
        ys += list(group["risk"])
        texts += swept_params(list(group["target_label"]))
        for x, y, (dy0, dy1), (dx0, dx1) in zip(group["utility"], group["risk"], yerr.T, xerr.T):
            bars += [(x, y - dy0, x, y + dy1), (x - dx0, y, x + dx1, y)]
    ax.axhline(1.0, color="#b3261e", lw=0.8, ls="--", label="risk of the originals")
    ax.set_xlabel(f"{utility_metric} ({'higher' if higher_is_better else 'lower'} = more utility)")
    ax.set_ylabel("highest risk over attacks\n(0 = chance, 1 = as the originals)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    ax.set_title("Privacy-utility trade-off (bars: 95% CI)")
    fig.canvas.draw()
    place_labels(ax, xs, ys, [t[:28] for t in texts], avoid=bars)
    return _png(fig)


def pareto_png(pairs: pd.DataFrame, utility_hib: dict[str, bool], max_panels: int = MAX_PARETO_PANELS) -> bytes | None:
    """Small multiples, one panel per (attack, utility) pair of a comparison's Pareto table
    (:func:`anonaudit.verdicts.compare.pareto_pairs`): front members filled and joined, dominated
    methods hollow and grey. At most ``max_panels`` panels (the first pairs)."""
    if pairs.empty:
        return None
    keys = list(dict.fromkeys(zip(pairs["attack"], pairs["utility"])))[:max_panels]
    cols = min(2, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), dpi=90, squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, (attack, utility) in zip(axes.flat, keys):
        p = pairs[(pairs["attack"] == attack) & (pairs["utility"] == utility)]
        front = p[p["on_front"]].sort_values("utility_value")
        dominated = p[~p["on_front"]]
        ax.scatter(dominated["utility_value"], dominated["privacy"], facecolors="none", edgecolors="#888", s=28,
                   label="dominated")
        ax.plot(front["utility_value"], front["privacy"], "o-", color="#1f5fbf", ms=5, lw=1, label="Pareto front")
        measure = p["privacy_measure"].iloc[0]
        hib = utility_hib.get(utility, True)
        ax.set_xlabel(f"{utility} ({'higher' if hib else 'lower'} = better)", fontsize=8)
        ax.set_ylabel(f"{attack}: {measure}", fontsize=8)
        ax.set_title(f"{attack} vs {utility}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        fig.canvas.draw()
        place_labels(ax, list(front["utility_value"]), list(front["privacy"]), [str(m)[:24] for m in front["method"]], fontsize=6.5)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)
