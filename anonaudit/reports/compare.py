"""Render a :class:`~anonaudit.verdicts.compare.Comparison`: a text table for the terminal,
``compare.csv`` (one row per method, full labels, every measure with its CI and n), ``pareto.csv``
(front membership per (attack, utility) pair) and a self-contained ``compare.html``.

Methods are numbered in rank order; the plot marks each point with its number only (numbers do not
collide where labels would), and the table beside it gives each number's label, shortened in the
middle, with the full ``run: target`` label in its tooltip and in the CSV.
"""

from __future__ import annotations

import base64
import math
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..fileio import write_atomic
from ..verdicts.compare import Comparison, as_bool
from . import fmt
from .html import environment
from .plots import MAX_PARETO_PANELS, RISK_AXIS_CAP, _png, place_labels, plt


def numbers(c: Comparison) -> dict[str, int]:
    """Each method's number: its position in the ranked table (1 = ranked first)."""
    return {m: i for i, m in enumerate(c.table["method"], 1)}


def display_table(c: Comparison) -> pd.DataFrame:
    """Per method (ranked, indexed by its number): label, verdict, rank, score, privacy and utility
    scores, the worst-case attack, each attack's risk (percent of what the originals leak) and each
    utility metric's value with their 95% CIs."""
    t = c.table.set_index("method")
    util = c.utilities.set_index(["method", "utility"])
    att = c.attacks.set_index(["method", "attack"])
    out = pd.DataFrame(index=pd.Index(range(1, len(t) + 1), name="#"))
    out["method"] = list(t["label"])
    if "verdict" in t.columns:
        out["verdict"] = list(t["verdict"])
    out["rank"] = [fmt.count(v) for v in t["rank"]]
    out["score"] = [fmt.num(v) if pd.notna(v) else f"– ({why})" for v, why in zip(t["score"], t["unscored_because"])]
    out["privacy score"] = [fmt.num(v) for v in t["privacy_score"]]
    out["utility score"] = [fmt.num(v) for v in t["utility_score"]]
    if "worst_attack" in t.columns:
        out["worst attack: risk [95% CI]"] = [
            f"{a}/{m}: {fmt.pct_ci(r, lo, hi)}" if isinstance(a, str) else fmt.MISSING
            for a, m, r, lo, hi in zip(t["worst_attack"], t["worst_metric"], t["worst_risk"], t["worst_risk_ci_low"],
                                       t["worst_risk_ci_high"])]
    for key in c.attack_keys:
        cells = []
        for m in t.index:
            if (m, key) not in att.index:
                cells.append(fmt.MISSING)
                continue
            r = att.loc[(m, key)]
            cells.append(fmt.pct_ci(r["risk"], r["risk_ci_low"], r["risk_ci_high"]) if pd.notna(r["risk"])
                         else f"{fmt.pct_ci(r['value'], r['ci_low'], r['ci_high'])} (success)")
        out[f"{key} risk"] = cells
    for key in c.utility_keys:
        out[key] = [
            fmt.num_ci(*util.loc[(m, key), ["value", "ci_low", "ci_high"]]) if (m, key) in util.index else fmt.MISSING
            for m in t.index
        ]
    if "pareto_fronts" in t.columns:
        out["on Pareto fronts"] = list(t["pareto_fronts"])
    return out


def front_lines(c: Comparison) -> list[str]:
    """One line per (attack, utility) pair: its Pareto front (methods by number and label) and how
    many methods it dominates (``pareto.csv`` says which method dominates which)."""
    num, label = numbers(c), dict(zip(c.table["method"], c.table["label"]))
    lines = []
    for (attack, utility), p in c.pareto.groupby(["attack", "utility"], sort=False):
        dominated = int((~p["on_front"]).sum())
        front = sorted(p.loc[p["on_front"], "method"], key=num.get)
        lines.append(f"{attack} vs {utility}: front {', '.join(f'#{num[m]} {label[m]}' for m in front)}"
                     + (f" ({dominated} dominated)" if dominated else ""))
    return lines


def _weights_text(c: Comparison) -> str:
    return ", ".join(f"{k}={w:g}" for k, w in c.weights.items())


def comparison_text(c: Comparison) -> str:
    """The comparison as printed by ``anonaudit compare``."""
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_colwidth", 60):
        table = display_table(c).to_string()
    shortened = [(i, m) for i, (m, lab) in enumerate(zip(c.table["method"], c.table["label"]), 1) if m != lab]
    parts = [
        f"methods ranked {c.ranking_rule}",
        "(risk: 0% = chance, 100% = as the originals; 95% CIs in brackets; worst attack = highest upper bound):",
        table,
    ]
    if shortened:
        parts += ["", "full labels:", *(f"  #{i} {m}" for i, m in shortened)]
    parts += [
        "",
        (
            "Pareto fronts (privacy: risk upper bound vs utility; dominated = another method is at least "
            "as good "
            "on both, better on one):"
        ),
        *front_lines(c),
    ]
    if c.notes:
        parts += ["", *c.notes]
    return "\n".join(parts)


def _clipped(values: pd.Series, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Values clipped to ``[low, high]`` and which of them were cut."""
    v = values.astype(float).to_numpy()
    return np.clip(v, low, high), (v < low) | (v > high)


def _merged_numbers(x: np.ndarray, y: np.ndarray, nums: list[int]) -> tuple[list[float], list[float], list[str]]:
    """One label per distinct point: methods drawn at the same place share it (``3, 4``)."""
    at: dict[tuple[float, float], list[int]] = {}
    for xi, yi, n in zip(x, y, nums):
        at.setdefault((float(xi), float(yi)), []).append(n)
    return [k[0] for k in at], [k[1] for k in at], [", ".join(map(str, sorted(v))) for v in at.values()]


def comparison_png(c: Comparison, max_panels: int = MAX_PARETO_PANELS) -> bytes | None:
    """Small multiples, one panel per (attack, utility) pair (the first ``max_panels``): every method
    a point marked with its number (one label for methods at the same place), front members filled and joined,
    dominated ones hollow; a risk axis always shows 0 (chance) and 1 (as the originals, dotted); a risk
    above :data:`~anonaudit.reports.plots.RISK_AXIS_CAP` (or an infinite utility) is drawn at the
    axis' edge as a triangle. Panel titles name the attack and utility in full."""
    if c.pareto.empty:
        return None
    num = numbers(c)
    hib = {k: as_bool(g["higher_is_better"].iloc[0]) for k, g in c.utilities.groupby("utility", sort=False)}
    keys = list(dict.fromkeys(zip(c.pareto["attack"], c.pareto["utility"])))[:max_panels]
    cols = min(2, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.0 * rows), dpi=90, squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, (attack, utility) in zip(axes.flat, keys):
        p = c.pareto[(c.pareto["attack"] == attack) & (c.pareto["utility"] == utility)]
        finite = p["utility_value"][np.isfinite(p["utility_value"].astype(float))]
        x, x_cut = _clipped(
            p["utility_value"], finite.min() if len(finite) else 0.0, finite.max() if len(finite) else 1.0
        )
        y, y_cut = _clipped(p["privacy"], -RISK_AXIS_CAP, RISK_AXIS_CAP)
        on, cut = p["on_front"].to_numpy(bool), x_cut | y_cut
        order = np.argsort(x[on])
        ax.plot(x[on][order], y[on][order], "-", color="#1f5fbf", lw=1, zorder=1)
        ax.scatter(x[on & ~cut], y[on & ~cut], color="#1f5fbf", s=30, label="Pareto front", zorder=2)
        ax.scatter(
            x[~on & ~cut], y[~on & ~cut], facecolors="none", edgecolors="#888", s=30, label="dominated", zorder=2
        )
        if cut.any():
            ax.scatter(x[cut], y[cut], marker="^", color="#b3261e", s=36, label="beyond the axis (cut)", zorder=2)
        if p["privacy_measure"].iloc[0] == "risk upper bound":  # 0 (chance) and 1 (as the originals) always in view
            ax.axhline(1.0, color="#b3261e", lw=0.8, ls=":", label="as the originals (1)", zorder=0)
            top = max(1.0, float(np.nanmax(y)))
            ax.set_ylim(min(0.0, float(np.nanmin(y))) - 0.06 * top, top * 1.08)
        ax.set_xlabel(f"{utility} ({'higher' if hib.get(utility, True) else 'lower'} = better)", fontsize=8)
        ax.set_ylabel(f"{attack}: {p['privacy_measure'].iloc[0]}", fontsize=8)
        ax.set_title("\n".join(textwrap.wrap(f"{attack} vs {utility}", 60)), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.margins(x=0.12)
        fig.canvas.draw()
        place_labels(ax, *_merged_numbers(x, y, [num[m] for m in p["method"]]), fontsize=7.5)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def render_comparison_html(c: Comparison) -> str:
    """The comparison as one self-contained HTML page."""
    plot = comparison_png(c)
    table = display_table(c)
    full = list(c.table["method"])
    return (
        environment()
        .get_template("compare.html")
        .render(
            title=f"anonaudit comparison: {', '.join(c.runs)}",
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            columns=[col for col in table.columns if col != "method"],
            rows=[
                (i, full[i - 1], r["method"], [r[col] for col in table.columns if col != "method"])
                for i, r in table.iterrows()
            ],
            rule=c.ranking_rule,
            fronts=front_lines(c),
            notes=c.notes,
            pairs=len(c.pareto.groupby(["attack", "utility"])) if not c.pareto.empty else 0,
            max_panels=MAX_PARETO_PANELS,
            plot=base64.b64encode(plot).decode("ascii") if plot else None,
        )
    )


def write_comparison(c: Comparison, folder: Path) -> tuple[Path, Path]:
    """Write ``compare.csv``, ``pareto.csv`` and ``compare.html`` into ``folder``; returns the CSV and HTML paths."""
    csv = write_atomic(folder / "compare.csv", c.table.to_csv(index=False))
    write_atomic(folder / "pareto.csv", c.pareto.to_csv(index=False))
    return csv, write_atomic(folder / "compare.html", render_comparison_html(c))
