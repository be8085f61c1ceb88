"""Self-contained HTML report (one file: figures and thumbnails inlined) from a results table.

Every user-provided string (file names, labels, config values, error messages) is HTML-escaped by
Jinja2's autoescaping. Original images are never embedded; only anonymized examples are.
"""

from __future__ import annotations

import base64
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

from .plots import tradeoff_png

if TYPE_CHECKING:
    from ..results import Results


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        if math.isinf(v):
            return "∞"
        return f"{v:.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def _ci(r: dict) -> str:
    lo, hi = r.get("ci_low"), r.get("ci_high")
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return ""
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def _records(df) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _examples(output: Path | None, table) -> list[dict]:
    if output is None:
        return []
    from ..audit import component_id

    shown = []
    for (name, params, label), _ in table.groupby(["target", "params", "target_label"], sort=False):
        import json

        folder = output / "examples" / component_id(name, json.loads(params))
        pics = sorted(folder.glob("*.png"))[:4] if folder.is_dir() else []
        if pics:
            shown.append({"label": label, "images": [_b64(p.read_bytes()) for p in pics]})
    return shown


def _pick_utility(table) -> tuple[str | None, bool]:
    ok = table[(table["status"] == "ok") & (table["kind"] == "evaluator")]
    if ok.empty:
        return None, True
    preferred = ["ssim", "ssim_outside_boxes", "plate_detectability", "face_detection_rate", "psnr"]
    metrics = list(dict.fromkeys(ok["metric"]))
    for m in preferred:
        if m in metrics:
            chosen = m
            break
    else:
        chosen = metrics[0]
    hib = ok[ok["metric"] == chosen]["higher_is_better"].iloc[0]
    return chosen, bool(hib) if hib is not None else True


def render_html(results: "Results", title: str | None = None) -> str:
    table = results.table
    env = Environment(loader=PackageLoader("anonaudit", "reports/templates"), autoescape=select_autoescape(["html"]))
    env.filters["fmt"] = _fmt
    env.filters["ci"] = _ci
    manifest = results.manifest or {}
    targets = []
    for label, group in table.groupby("target_label", sort=False):
        if not label:
            continue
        g = group
        targets.append({
            "label": label,
            "release": _records(g[g["kind"] == "target"]),
            "attacks": _records(g[(g["kind"] == "attack") & (g["status"] == "ok")]),
            "evaluators": _records(g[(g["kind"] == "evaluator") & (g["status"] == "ok")]),
        })
    metric, hib = _pick_utility(table)
    plot = tradeoff_png(table, metric, hib) if metric else None
    max_risk = _records(results.max_risk())
    nonstandard = _records(table[(table["status"] == "ok") & (table["standard"] == False)].drop_duplicates(["component", "metric"]))  # noqa: E712
    return env.get_template("report.html").render(
        title=title or f"anonaudit report: {manifest.get('name', 'audit')}",
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        manifest=manifest,
        targets=targets,
        max_risk=max_risk,
        plot=_b64(plot) if plot else None,
        utility_metric=metric,
        failures=_records(results.failures()),
        nonstandard=nonstandard,
        examples=_examples(results.output, table[table["target_label"].notna() & (table["target_label"] != "")]),
        config_yaml=yaml.safe_dump(manifest.get("config") or {}, sort_keys=False) if manifest.get("config") else "",
        data_rows=_records(table[table["kind"] == "data"]),
    )


def write_html_report(results: "Results", path: Path, title: str | None = None) -> Path:
    """Render and write the report atomically; returns its path."""
    import os

    html = render_html(results, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path
