"""Self-contained HTML report (one file: figures and thumbnails inlined) from a results table.

Reads only the run's files (``results.csv``, ``manifest.json``, ``verdict.json`` when a policy was
applied, and ``examples/<target_id>/``); never runs a model. The verdict comes first; then the
headline (strongest attack per target, with n and 95% CIs), the trade-off plot, the details per
target, and one line per reason for everything that did not run. Targets are ordered by method
(first seen) and naturally within a method (block 4, 8, 16). Examples are redacted unless
``embed_examples`` is set (see :mod:`.examples`) and shown side by side by index.

Rates and risks read ``12.3% [8.1, 17.6]`` in the verdict and in every table (:mod:`.fmt`); a risk
carries a badge only when its whole CI clears the badge's threshold (:func:`risk_badges`). The
page reads at 1280 and at 768 px: key cells (risk, CI, n, verdict: class ``k``) never need a
horizontal scroll, secondary columns (``sec``) are hidden below 900 px and long labels are
shortened in the middle with the full label in a tooltip.

Every user-provided string (file names, labels, config values, error messages) is HTML-escaped by
Jinja2's autoescaping.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

from ..errors import DataError
from ..fileio import write_atomic
from . import fmt
from .evidence import with_evidence
from .examples import side_by_side, target_examples
from .plots import numbered_points, tradeoff_png

if TYPE_CHECKING:
    from ..results import Results

VERDICT_FILE = "verdict.json"
#: Utility metrics tried in this order for the trade-off plot's x axis.
PREFERRED_UTILITY = ["ssim", "ssim_outside_boxes", "plate_detectability", "face_detection_rate", "psnr"]


def environment() -> Environment:
    """The Jinja2 environment of every report template, with the number filters of :mod:`.fmt`."""
    env = Environment(loader=PackageLoader("anonaudit", "reports/templates"), autoescape=select_autoescape(["html"]))
    fmts = {"num": fmt.num, "pct": fmt.pct}
    env.filters.update(
        num=fmt.num,
        pct=fmt.pct,
        risk=fmt.risk,
        count=fmt.count,
        seconds=fmt.seconds,
        fmt_as=lambda v, f: fmts[f](v),
        cls=lambda s: str(s).replace(" ", "-"),
        middle=fmt.middle,
    )
    env.globals.update(interval=fmt.interval, ci=fmt.ci, pct_bounds=fmt.pct_bounds)
    return env


#: Badges a risk can carry: (risk kind, CI lower bound above, text, CSS class, tooltip).
BADGE_RULES = (
    ("relative", 1.0, "leaks more than the originals", "more",
     "the 95% CI of the risk lies above 100%: the release leaks more than the original images"),
    ("new_leak", 0.0, "new leak", "red",
     "the originals give this attack nothing and the 95% CI of the release's leak lies above 0"),
)
#: Neutral notes on the scale of a risk that carries no badge.
SCALE_NOTES = {"new_leak": "originals leak nothing", "absolute": "originals not measured"}


def risk_badges(kind: Any, ci_low: Any) -> list[dict[str, str]]:
    """The badges of one risk: "leaks more than the originals" only when a relative risk's 95% CI
    lower bound is above 1, the red "new leak" only when a new-leak risk's lower bound is above 0;
    otherwise at most a neutral note on the risk's scale (``cls`` ``note``). A point estimate
    above the threshold with a CI reaching below it gets no badge."""
    try:
        low = float(ci_low)
    except (TypeError, ValueError):
        low = math.nan
    for rule_kind, above, text, cls, why in BADGE_RULES:
        if kind == rule_kind and low > above:  # False for a missing (NaN) bound
            return [{"text": text, "cls": cls, "title": why}]
    note = SCALE_NOTES.get(str(kind or ""))
    return [{"text": note, "cls": "note", "title": "how this risk is scaled: see How to read this"}] if note else []


def shown_as(kind: Any, metric: Any, values: list[Any]) -> str:
    """How a value is shown: ``pct`` for attack rates (and risks), ``num`` for everything else."""
    return "pct" if kind == "attack" and fmt.is_rate(metric, values) else "num"


def _displayed(rec: dict) -> dict:
    """An attack row (or a headline row) with ``f`` (its value's format) and ``badges``."""
    rec["f"] = shown_as(
        "attack", rec.get("metric"), [rec.get(c) for c in ("value", "original", "baseline", "ci_low", "ci_high")]
    )
    rec["badges"] = risk_badges(rec.get("risk_kind"), rec.get("risk_ci_low")) if rec.get("risk") is not None else []
    return rec


def _records(df: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def read_verdict(output: Path | None) -> dict | None:
    """``<output>/verdict.json`` (written by ``anonaudit certify``) for the templates, or None when
    there is none: ``overall``, ``policy`` (name), ``description``, ``created``, ``targets``
    (label -> verdict) and ``criteria`` (label -> the criteria dicts of verdict.json)."""
    if output is None or not (output / VERDICT_FILE).is_file():
        return None
    path = output / VERDICT_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        targets = raw["targets"]
        policy = raw.get("policy") or {}
        verdict = {
            "overall": str(raw["overall"]),
            "policy": policy.get("name", ""),
            "description": policy.get("description", ""),
            "created": raw.get("created", ""),
            "targets": {t["target_label"]: str(t["verdict"]) for t in targets},
            "criteria": {t["target_label"]: list(t.get("criteria") or []) for t in targets},
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a readable verdict file ({type(exc).__name__}: {exc})") from exc
    return {**verdict, **_split_common(verdict["criteria"])}


def _split_common(criteria: dict[str, list[dict]]) -> dict[str, Any]:
    """Criteria not passed with the same status and reason on every target (said once: ``common``)
    and, per target, the others (``specific``)."""
    def key(c: dict) -> tuple:
        return c.get("id"), c.get("status"), c.get("reason")

    failing = {label: [c for c in cs if c.get("status") != "PASS"] for label, cs in criteria.items()}
    keys = [set(map(key, cs)) for cs in failing.values()]
    shared = set.intersection(*keys) if len(keys) > 1 else set()
    first = next(iter(failing.values()), [])
    return {"common": [c for c in first if key(c) in shared],
            "specific": {label: [c for c in cs if key(c) not in shared] for label, cs in failing.items()}}


def criterion_formats(verdict: dict | None, table: pd.DataFrame) -> None:
    """Set ``f`` on every criterion of ``verdict`` (in place): ``pct`` where it is judged on a risk or
    on an attack rate of the results table, else ``num`` (the report's tables use the same rule)."""
    if not verdict:
        return
    kinds = dict(zip(zip(table["component"].astype(str), table["metric"].astype(str)), table["kind"]))
    for criteria in verdict["criteria"].values():
        for c in criteria:
            kind = "attack" if c.get("on") == "risk" else kinds.get((str(c.get("component")), str(c.get("metric"))))
            metric = "risk" if c.get("on") == "risk" else c.get("metric")
            c["f"] = shown_as(kind, metric, [c.get("value"), c.get("ci_low"), c.get("ci_high")])


def target_order(table: pd.DataFrame) -> list[str]:
    """Target labels by method (first seen) and naturally within a method."""
    t = table[table["target_label"].notna() & (table["target_label"] != "")]
    method = dict(zip(t["target_label"], t["target"].astype(str)))
    return fmt.natural_order(t["target_label"], group=lambda lab: method.get(lab, fmt.method_of(lab)))


def short_names(table: pd.DataFrame) -> dict[str, str]:
    """``component_label -> name shown in tables``: the component's name where that names one
    configuration, else the full label."""
    rows = table.dropna(subset=["component_label"]).drop_duplicates("component_label")
    per_component = rows.groupby("component")["component_label"].nunique()
    return {
        lab: (comp if per_component.get(comp, 0) == 1 else lab)
        for lab, comp in zip(rows["component_label"], rows["component"])
    }


def not_run(table: pd.DataFrame, order: list[str]) -> list[dict]:
    """Unavailable, failed and not applicable units, one entry per (component, status, reason) with the targets
    it hit."""
    t = table[table["status"].isin(["unavailable", "failed", "not_applicable"])].copy()
    if t.empty:
        return []
    t["who"] = t["component_label"].fillna(t["component"]).fillna("").astype(str)
    t.loc[t["kind"] == "data", "target_label"] = ""
    out = []
    for (kind, who, status, message), g in t.groupby(["kind", "who", "status", t["message"].fillna("")], sort=False):
        targets = [lab for lab in order if lab in set(g["target_label"])]
        out.append({"kind": kind, "component": who or kind, "status": status, "message": message, "units": len(g),
                    "targets": targets, "all_targets": len(targets) == len(order) and len(order) > 1})
    order_of = {"unavailable": 0, "failed": 1, "not_applicable": 2}
    return sorted(out, key=lambda r: (order_of[r["status"]], r["kind"], r["component"]))


def headline(results: Results, order: list[str]) -> list[dict]:
    """:meth:`Results.max_risk` in report order, each row with ``f`` (its value's format: ``pct``
    or ``num``) and ``badges`` (:func:`risk_badges`); its ``attacker`` (learned, searching or classical,
    as the strongest attack declares itself) marks a learned or searching attack in the table."""
    mr = results.max_risk()
    rows = {r["target_label"]: r for r in _records(mr)}
    out = []
    for label in order:
        r = rows.get(label)
        if r is None:
            continue
        out.append(_displayed(r))
    return out


def _split(message: Any) -> list[str]:
    return [p.strip() for p in message.split("; ") if p.strip()] if isinstance(message, str) else []


def shared_notes(rows: pd.DataFrame, n_targets: int) -> tuple[dict[tuple[str, str], list[str]], dict[int, str]]:
    """Notes said once: for each (component_label, metric), the message parts every target shares
    (``common``) and, per row index, the parts left for that row."""
    common: dict[tuple[str, str], list[str]] = {}
    rest: dict[int, str] = {}
    for (label, metric), g in rows.groupby([rows["component_label"].fillna(""), rows["metric"].fillna("")], sort=False):
        parts = [_split(m) for m in g["message"]]
        shared = (
            [p for p in dict.fromkeys(parts[0]) if all(p in ps for ps in parts)]
            if len(g) == n_targets and n_targets > 1
            else []
        )
        if shared:
            common[(label, metric)] = shared
        for idx, ps in zip(g.index, parts):
            rest[idx] = "; ".join(p for p in ps if p not in shared)
    return common, rest


def compute_cost(table: pd.DataFrame, order: list[str], names: dict[str, str]) -> dict[str, Any]:
    """Seconds per target: making the release, each attack, the utility evaluators together, in total.

    A unit's rows all carry the unit's seconds (the release's only on its ``pairs`` row), so each
    unit counts once (its largest value). Units a resumed run reused count with the seconds they
    took when computed. ``{"columns": [...], "rows": [{"label", "cells", "total"}], "totals": [...], "total"}``."""
    t = table[table["target_label"].isin(order)].copy()
    t["unit"] = t["component_label"].fillna(t["component"]).fillna("").astype(str)
    t["seconds"] = pd.to_numeric(t["seconds"], errors="coerce").fillna(0.0)
    per_unit = t.groupby(["target_label", "kind", "unit"], sort=False)["seconds"].max().reset_index()
    attacks = list(dict.fromkeys(per_unit.loc[per_unit["kind"] == "attack", "unit"]))
    columns = [
        ("target", None, "release"),
        *(("attack", a, names.get(a, a)) for a in attacks),
        ("evaluator", None, "utility metrics"),
    ]
    rows = []
    for label in order:
        mine = per_unit[per_unit["target_label"] == label]
        cells = [float(mine.loc[(mine["kind"] == kind) & ((mine["unit"] == unit) if unit else True), "seconds"].sum())
                 for kind, unit, _ in columns]
        rows.append({"label": label, "cells": cells, "total": float(mine["seconds"].sum())})
    totals = [sum(r["cells"][k] for r in rows) for k in range(len(columns))]
    return {"columns": [c[2] for c in columns], "rows": rows, "totals": totals, "total": sum(r["total"] for r in rows)}


def _pick_utility(table: pd.DataFrame) -> tuple[str | None, bool]:
    ok = table[(table["status"] == "ok") & (table["kind"] == "evaluator")]
    if ok.empty:
        return None, True
    metrics = list(dict.fromkeys(ok["metric"]))
    chosen = next((m for m in PREFERRED_UTILITY if m in metrics), metrics[0])
    hib = ok[ok["metric"] == chosen]["higher_is_better"].iloc[0]
    return chosen, str(hib).lower() not in ("false", "0") if hib is not None else True


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def report_context(results: Results, embed_examples: bool = False) -> dict[str, Any]:
    """What every report shows (HTML report, compliance report): verdict, headline, not-run list,
    examples, data sizes, ordered targets."""
    table = results.table
    order = target_order(table)
    manifest = results.manifest or {}
    verdict = read_verdict(results.output)
    criterion_formats(verdict, table)
    examples = target_examples(results.output, table, order, embed=embed_examples)
    return {
        "manifest": manifest,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "verdict": verdict,
        "verdict_mismatch": sorted(set(order) ^ set(verdict["targets"])) if verdict else [],
        "run_dir": str(results.output) if results.output else "",
        "order": order,
        "headline": headline(results, order),
        "not_run": not_run(table, order),
        "examples": examples,
        "examples_by_index": side_by_side(examples),
        "embed_examples": embed_examples,
        "config_yaml": yaml.safe_dump(manifest.get("config") or {}, sort_keys=False, default_flow_style=None)
        if manifest.get("config")
        else "",
    }


def render_html(results: Results, title: str | None = None, embed_examples: bool = False) -> str:
    """The report page as a string (see the module doc)."""
    table = results.table
    ctx = report_context(results, embed_examples)
    order = ctx["order"]
    names = short_names(table)
    ok = table[table["status"] == "ok"]
    attacks = ok[ok["kind"] == "attack"]
    evaluators = ok[ok["kind"] == "evaluator"]
    attack_common, attack_rest = shared_notes(attacks.assign(metric=""), len(order))
    eval_common, eval_rest = shared_notes(evaluators, len(order))
    targets = []
    for label in order:
        g = table[table["target_label"] == label]
        mine = attacks[attacks["target_label"] == label]
        att, notes = _records(mine), {}
        for idx, rec in zip(mine.index, att):
            rec["short"] = names.get(rec["component_label"], rec["component"])
            _displayed(rec)
            if attack_rest.get(idx):
                notes.setdefault(attack_rest[idx], rec["short"])
        mine = evaluators[evaluators["target_label"] == label]
        ev = _records(mine)
        for idx, rec in zip(mine.index, ev):
            rec["short"] = names.get(rec["component_label"], rec["component"])
            rec["notes"] = eval_rest.get(idx, "")
        targets.append({"label": label, "release": _records(g[g["kind"] == "target"]), "attacks": att,
                        "attack_notes": [{"component": c, "text": t} for t, c in notes.items()], "evaluators": ev})
    legend = [
        {"short": names[lab], "label": lab, "kind": kind, "notes": attack_common.get((lab, ""), [])}
        for lab, kind in ok.drop_duplicates("component_label")[["component_label", "kind"]].itertuples(index=False)
        if kind == "attack"
    ]
    metric_notes = [
        {"component": names.get(lab, lab), "metric": m, "notes": parts} for (lab, m), parts in eval_common.items()
    ]
    metric, hib = _pick_utility(table)
    plot = tradeoff_png(table, results.max_risk(), metric, hib) if metric else None
    plot_key = _records(numbered_points(table, results.max_risk(), metric)) if plot else []
    nonstandard = _records(
        ok[ok["standard"].astype(str).str.lower().isin(["false", "0"])].drop_duplicates(["component", "metric"])
    )
    manifest = ctx["manifest"]
    return environment().get_template("report.html").render(
        **ctx,
        title=title or f"anonaudit report: {manifest.get('name', 'audit')}",
        targets=targets,
        legend=legend,
        metric_notes=metric_notes,
        plot=_b64(plot) if plot else None,
        plot_key=plot_key,
        utility_metric=metric,
        nonstandard=nonstandard,
        cost=compute_cost(table, order, names),
    )


def write_html_report(
    results: Results, path: str | Path | None = None, title: str | None = None, embed_examples: bool = False
) -> Path:
    """Render and write the self-contained report atomically, with the evidence per file
    (:mod:`.evidence`); returns its path, by default ``<results.output>/report.html``."""
    if path is None:
        if results.output is None:
            raise ValueError("give a report path: these results have no output folder")
        path = results.output / "report.html"
    path = Path(path)
    return write_atomic(path, with_evidence(render_html(results, title, embed_examples), results, path, embed_examples))
