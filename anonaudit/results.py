"""The tidy results table: one row per (target, component, metric). Reports read only this."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .attacks.base import AttackResult
from .stats import Estimate

COLUMNS = [
    "target", "target_label", "params", "kind", "component", "component_label", "metric", "value", "ci_low",
    "ci_high", "n", "baseline", "original", "risk", "higher_is_better", "standard", "reason", "status", "message",
    "seconds",
]

STATUSES = ("ok", "unavailable", "failed")


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def row(**fields: Any) -> dict[str, Any]:
    """A results row with every column present (missing ones empty)."""
    out = {c: None for c in COLUMNS}
    unknown = set(fields) - set(out)
    if unknown:
        raise KeyError(f"unknown result columns {sorted(unknown)}")
    out.update({k: _clean(v) for k, v in fields.items()})
    return out


def attack_rows(result: AttackResult, base: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for m in result.metrics:
        e = m.release
        rows.append(row(
            **base, kind="attack", metric=m.metric, value=e.value, ci_low=e.ci_low, ci_high=e.ci_high, n=e.n,
            baseline=m.baseline, original=None if m.original is None else m.original.value, risk=m.risk,
            higher_is_better=False, standard=e.standard, reason=e.reason or m.description, status="ok",
            message="; ".join(result.notes), seconds=seconds,
        ))
    return rows


def estimate_row(e: Estimate, base: dict[str, Any], metric: str, higher_is_better: bool, seconds: float) -> dict[str, Any]:
    original = e.extra.get("original") if e.extra else None
    return row(
        **base, kind="evaluator", metric=metric, value=e.value, ci_low=e.ci_low, ci_high=e.ci_high, n=e.n,
        original=original, higher_is_better=higher_is_better, standard=e.standard,
        reason=e.reason or e.method, status="ok", seconds=seconds,
        message="; ".join(f"{k}={_short(v)}" for k, v in (e.extra or {}).items()
                          if k != "metric_name" and not k.startswith("original") and _is_scalar(v)),
    )


def _short(v: Any) -> str:
    """Details as read in tables: floats to 4 significant digits (the value columns keep full precision)."""
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool, np.integer, np.floating))


def status_row(base: dict[str, Any], kind: str, status: str, message: str, seconds: float = 0.0) -> dict[str, Any]:
    return row(**base, kind=kind, metric="", status=status, message=message, seconds=seconds)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


class Results:
    """An audit's results: the tidy table, the output folder and the run's manifest."""

    def __init__(self, table: pd.DataFrame, output: str | Path | None = None, manifest: dict | None = None):
        self.table = table.reindex(columns=COLUMNS)
        self.output = Path(output) if output else None
        self.manifest = manifest or {}

    def __repr__(self) -> str:
        return f"Results({len(self.table)} rows, {self.table['target'].nunique()} targets, output={self.output})"

    @classmethod
    def load(cls, folder: str | Path) -> "Results":
        folder = Path(folder)
        path = folder / "results.csv"
        if not path.is_file():
            from .errors import DataError

            raise DataError(f"{folder}: no results.csv (is this an audit output folder?)")
        table = pd.read_csv(path, keep_default_na=True)
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        return cls(table, folder, manifest)

    def save(self, folder: str | Path | None = None) -> Path:
        folder = Path(folder or self.output or ".")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".results.csv.tmp{os.getpid()}"
        self.table.to_csv(tmp, index=False)
        os.replace(tmp, folder / "results.csv")
        records = [{k: _clean(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]
        write_json_atomic(folder / "results.json", records)
        write_json_atomic(folder / "manifest.json", self.manifest)
        self.output = folder
        return folder

    def ok(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "ok"]

    def privacy(self) -> pd.DataFrame:
        """Attack rows (successful runs only)."""
        t = self.ok()
        return t[t["kind"] == "attack"]

    def utility(self) -> pd.DataFrame:
        t = self.ok()
        return t[t["kind"] == "evaluator"]

    def max_risk(self) -> pd.DataFrame:
        """Per target, the highest relative risk over all attack metrics (the headline privacy number)."""
        p = self.privacy().dropna(subset=["risk"])
        if p.empty:
            return pd.DataFrame(columns=["target_label", "risk", "component", "metric"])
        idx = p.groupby("target_label")["risk"].idxmax()
        return p.loc[idx, ["target_label", "risk", "component", "metric", "value", "original", "baseline"]].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Wide view: one row per target, one column per component/metric value."""
        t = self.ok()
        t = t[t["kind"].isin(["attack", "evaluator"])]
        if t.empty:
            return pd.DataFrame()
        t = t.assign(col=t["component_label"] + ":" + t["metric"])
        return t.pivot_table(index="target_label", columns="col", values="value", aggfunc="first", sort=False)

    def failures(self) -> pd.DataFrame:
        return self.table[self.table["status"].isin(["failed", "unavailable"])]

    def report(self, path: str | Path | None = None, **kwargs: Any) -> Path:
        """Write the self-contained HTML report (default: ``<output>/report.html``)."""
        from .reports.html import write_html_report

        if path is None:
            if self.output is None:
                raise ValueError("give a report path: these results have no output folder")
            path = self.output / "report.html"
        return write_html_report(self, Path(path), **kwargs)
