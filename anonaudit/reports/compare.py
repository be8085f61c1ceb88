"""Render a :class:`~anonaudit.verdicts.compare.Comparison`: a text table for the terminal,
``compare.csv`` (one row per method, every measure with its CI and n), ``pareto.csv`` (front
membership per (attack, utility) pair) and a self-contained ``compare.html``."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..verdicts.compare import Comparison, as_bool
from . import fmt
from .html import environment, write_atomic
from .plots import MAX_PARETO_PANELS, pareto_png


def _risk_cell(risk, lo, hi) -> str:
    return f"{fmt.risk(risk)} {fmt.interval(lo, hi, fmt.risk)}".strip()


def display_table(c: Comparison) -> pd.DataFrame:
    """Per method (ranked), display strings: rank, score, worst attack, each attack's risk and each
    utility metric's value with their 95% CIs."""
    t = c.table.set_index("method")
    util = c.utilities.set_index(["method", "utility"])
    att = c.attacks.set_index(["method", "attack"])
    out = pd.DataFrame(index=t.index)
    out["rank"] = [fmt.count(v) for v in t["rank"]]
    out["score"] = [fmt.num(v) if pd.notna(v) else f"– ({why})" for v, why in zip(t["score"], t["unscored_because"])]
    if "worst_attack" in t.columns:
        out["worst attack"] = [f"{a}: {_risk_cell(r, lo, hi)}" if isinstance(a, str) else fmt.MISSING
                               for a, r, lo, hi in zip(t["worst_attack"], t["worst_risk"], t["worst_risk_ci_low"], t["worst_risk_ci_high"])]
    for key in c.attack_keys:
        cells = []
        for m in t.index:
            if (m, key) not in att.index:
                cells.append(fmt.MISSING)
                continue
            r = att.loc[(m, key)]
            cells.append(_risk_cell(r["risk"], r["risk_ci_low"], r["risk_ci_high"]) if pd.notna(r["risk"])
                         else f"{fmt.pct(r['value'])} {fmt.interval(r['ci_low'], r['ci_high'], fmt.pct)} (success)")
        out[f"{key} risk"] = cells
    for key in c.utility_keys:
        out[key] = [f"{fmt.num(util.loc[(m, key), 'value'])} {fmt.interval(util.loc[(m, key), 'ci_low'], util.loc[(m, key), 'ci_high'])}".strip()
                    if (m, key) in util.index else fmt.MISSING for m in t.index]
    if "pareto_fronts" in t.columns:
        out["on Pareto fronts"] = t["pareto_fronts"]
    return out


def front_lines(c: Comparison) -> list[str]:
    """One line per (attack, utility) pair: its Pareto front and how many methods it dominates
    (``pareto.csv`` says which method dominates which)."""
    lines = []
    for (attack, utility), p in c.pareto.groupby(["attack", "utility"], sort=False):
        dominated = int((~p["on_front"]).sum())
        lines.append(f"{attack} vs {utility}: front {', '.join(p.loc[p['on_front'], 'method'])}"
                     + (f" ({dominated} dominated)" if dominated else ""))
    return lines


def _weights_text(c: Comparison) -> str:
    return ", ".join(f"{k}={w:g}" for k, w in c.weights.items())


def comparison_text(c: Comparison) -> str:
    """The comparison as printed by ``anonaudit compare``."""
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_colwidth", 48):
        table = display_table(c).to_string()
    parts = [f"methods ranked at weights {_weights_text(c)} (risk: 0 = chance, 1 = as the originals; 95% CIs):", table,
             "", "Pareto fronts (privacy vs utility; dominated = another method is at least as good on both, better on one):",
             *front_lines(c)]
    if c.notes:
        parts += ["", *c.notes]
    return "\n".join(parts)


def render_comparison_html(c: Comparison) -> str:
    """The comparison as one self-contained HTML page."""
    hib = {k: as_bool(g["higher_is_better"].iloc[0]) for k, g in c.utilities.groupby("utility", sort=False)}
    plot = pareto_png(c.pareto, hib)
    table = display_table(c)
    return environment().get_template("compare.html").render(
        title=f"anonaudit comparison: {', '.join(c.runs)}",
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        columns=list(table.columns), rows=[(m, list(r)) for m, r in table.iterrows()],
        weights=_weights_text(c), fronts=front_lines(c), notes=c.notes,
        pairs=len(c.pareto.groupby(["attack", "utility"])) if not c.pareto.empty else 0, max_panels=MAX_PARETO_PANELS,
        plot=base64.b64encode(plot).decode("ascii") if plot else None,
    )


def write_comparison(c: Comparison, folder: Path) -> tuple[Path, Path]:
    """Write ``compare.csv``, ``pareto.csv`` and ``compare.html`` into ``folder``; returns the CSV and HTML paths."""
    csv = write_atomic(folder / "compare.csv", c.table.to_csv(index=False))
    write_atomic(folder / "pareto.csv", c.pareto.to_csv(index=False))
    return csv, write_atomic(folder / "compare.html", render_comparison_html(c))
