"""Compare anonymization methods under attack, from the results of one or several audit runs.

Works on results tables only (``results.csv`` of each run); no model is run. A *method* is one
target of one run (its label, prefixed by the run's name where two runs share a label). For each
method:

* per **attack** (an attack component with its parameters), the worst case over the attack's
  metrics: the highest relative risk, with its metric, CI and n;
* per **utility metric**, its value with CI and n;
* the **worst-case attack** (highest risk over all attacks);
* the **Pareto front** of every (attack, utility) pair: privacy is the attack's risk (lower is
  better; the attack's success rate, oriented by ``higher_is_better``, where no risk is defined),
  utility is oriented by its own ``higher_is_better``; a method some other method beats on both
  axes is *dominated*;
* a **score** at user-chosen weights and the ranking by it.

Scores (each in [0, 1], 1 best): an attack's score is ``1 - risk`` clipped to [0, 1] (0 = leaks at
least as much as the originals, 1 = no better than chance); where the attack has no risk, its
success rate min-max scaled over the compared methods. A utility metric's score is its value
min-max scaled over the compared methods (1 = best of them; 1 for all when they are equal).
``privacy`` is the worst attack score of the method and ``utility`` the mean of its utility
scores. The weighted score is ``sum(w_k * s_k) / sum(w_k)`` over the weighted keys (``privacy``,
``utility``, or any attack or utility key); a method missing a weighted key gets no score and is
ranked last, with the reason.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .pareto import pareto_front

DEFAULT_WEIGHTS = {"privacy": 0.5, "utility": 0.5}
GROUPS = ("privacy", "utility")


def load_runs(folders: Sequence[str | Path]) -> pd.DataFrame:
    """The successful attack and utility rows of every run, with ``run`` and ``method`` columns.

    ``run`` is the run's manifest name (the folder names where those clash); ``method``
    is the target's label, prefixed with ``run: `` where the same label occurs in more than one run.
    """
    from ..results import Results

    if not folders:
        raise ConfigError("compare needs at least one audit output folder")
    loaded = [Results.load(folder) for folder in folders]
    names = [str(r.manifest.get("name") or Path(f).resolve().name) for r, f in zip(loaded, folders)]
    if len(set(names)) < len(names):  # runs of one config: tell them apart by folder
        names = [Path(f).resolve().name for f in folders]
    if len(set(names)) < len(names):
        names = [f"{n}#{i}" for i, n in enumerate(names, 1)]
    tables = []
    for results, folder, name in zip(loaded, folders, names):
        t = results.table
        t = t[(t["status"] == "ok") & t["kind"].isin(["attack", "evaluator"])].copy()
        if t.empty:
            raise DataError(f"{folder}: no successful attack or utility result to compare")
        t["run"] = name
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    runs_per_label = table.groupby("target_label")["run"].nunique()
    shared = set(runs_per_label[runs_per_label > 1].index)
    table["method"] = [f"{r}: {t}" if t in shared else t for r, t in zip(table["run"], table["target_label"])]
    return table


def _keys(rows: pd.DataFrame, short: str) -> pd.Series:
    """A short, unique name per measure: ``short`` where it names one component label, else the label."""
    labels_per_short = rows.groupby(short)["component_label"].nunique()
    clash = set(labels_per_short[labels_per_short > 1].index)
    return pd.Series([lab if s in clash else s for s, lab in zip(rows[short], rows["component_label"])], index=rows.index)


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table[name] if name in table.columns else pd.Series(np.nan, index=table.index)


def attack_measures(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, attack): the attack's worst case over its metrics.

    Columns: method, attack, metric, risk, risk_ci_low, risk_ci_high, value, ci_low, ci_high, n,
    higher_is_better. The worst metric is the one of highest risk; where no metric of the attack has
    a risk, the first metric's success rate is kept (risk empty).
    """
    att = table[table["kind"] == "attack"].copy()
    cols = ["method", "attack", "metric", "risk", "risk_ci_low", "risk_ci_high", "value", "ci_low", "ci_high", "n", "higher_is_better"]
    if att.empty:
        return pd.DataFrame(columns=cols)
    att["attack"] = _keys(att, "component")
    att["risk_ci_low"] = _column(att, "risk_ci_low")
    att["risk_ci_high"] = _column(att, "risk_ci_high")
    att["risk"] = pd.to_numeric(att["risk"], errors="coerce")
    out = []
    for _, g in att.groupby(["method", "attack"], sort=False):
        with_risk = g.dropna(subset=["risk"])
        out.append(with_risk.loc[with_risk["risk"].idxmax()] if not with_risk.empty else g.iloc[0])
    return pd.DataFrame(out)[cols].reset_index(drop=True)


def utility_measures(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, utility metric): value, CI, n and orientation (``utility`` names the metric)."""
    ev = table[table["kind"] == "evaluator"].copy()
    cols = ["method", "utility", "value", "ci_low", "ci_high", "n", "higher_is_better"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    ev = ev[~_is_part(ev)]
    ev["utility"] = _keys(ev.assign(short=ev["metric"]), "short")
    return ev.drop_duplicates(["method", "utility"])[cols].reset_index(drop=True)


def _is_part(rows: pd.DataFrame) -> pd.Series:
    """Rows that detail another metric of the same evaluator (``psnr_identical_pairs`` next to
    ``psnr``, ``landmark_error_jaw`` next to ``landmark_error``): shown in reports, not scored twice."""
    metrics = rows.groupby("component_label")["metric"].agg(lambda m: set(m.astype(str)))
    return pd.Series([any(str(m).startswith(f"{other}_") for other in metrics[lab]) for lab, m in
                      zip(rows["component_label"], rows["metric"])], index=rows.index, dtype=bool)


def _oriented(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Min-max scaled to [0, 1] with 1 the best of the compared values (all 1 when they are equal)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    finite = v[np.isfinite(v)]
    # an infinite value (the PSNR of a release identical to its originals) ranks with the best/worst finite one
    v = v.clip(finite.min(), finite.max()) if len(finite) else v.where(v.isna(), 0.0)
    lo, hi = v.min(), v.max()
    if not np.isfinite(lo) or hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return v.where(v.isna(), 1.0)
    scaled = (v - lo) / (hi - lo)
    return scaled if higher_is_better else 1.0 - scaled


def as_bool(v) -> bool:
    """A boolean cell of a results table (bool, or "True"/"False" text after a CSV round trip)."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else False


def scores(attacks: pd.DataFrame, utilities: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Per method (index), one score column per attack and utility key plus ``privacy`` and ``utility``."""
    out = pd.DataFrame(index=list(methods), dtype=float)
    for key, g in attacks.groupby("attack", sort=False):
        g = g.set_index("method")
        if g["risk"].notna().all():
            s = 1.0 - g["risk"].astype(float).clip(0.0, 1.0)
        else:
            s = _oriented(g["value"], as_bool(g["higher_is_better"].iloc[0]))
        out[key] = s
    for key, g in utilities.groupby("utility", sort=False):
        g = g.set_index("method")
        out[key] = _oriented(g["value"], as_bool(g["higher_is_better"].iloc[0]))
    attack_keys = list(dict.fromkeys(attacks["attack"]))
    utility_keys = list(dict.fromkeys(utilities["utility"]))
    out["privacy"] = out[attack_keys].min(axis=1, skipna=True) if attack_keys else np.nan
    out["utility"] = out[utility_keys].mean(axis=1, skipna=True) if utility_keys else np.nan
    return out


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets (attack keys such as ``ocr(engine=a, k=2)`` hold commas)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_weights(spec: str | None, known: Sequence[str]) -> dict[str, float]:
    """``"privacy=0.7,utility=0.3"`` or per key (``"ocr=2,ssim=1"``) -> ``{key: weight}``.

    Keys are ``privacy``, ``utility`` or one of ``known`` (the attack and utility keys of the
    comparison); weights are non-negative numbers, not all zero.
    """
    if not spec:
        return dict(DEFAULT_WEIGHTS)
    weights: dict[str, float] = {}
    allowed = list(GROUPS) + [k for k in known if k not in GROUPS]
    for part in _split_top_level(spec):
        key, sep, value = part.rpartition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--weights: '{part}' is not KEY=WEIGHT (e.g. privacy=0.7,utility=0.3)")
        if key not in allowed:
            near = difflib.get_close_matches(key, allowed, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"--weights: unknown key '{key}'{hint} (keys: {', '.join(allowed)})")
        try:
            w = float(value)
        except ValueError:
            raise ConfigError(f"--weights: weight of '{key}' is not a number: '{value.strip()}'") from None
        if not math.isfinite(w) or w < 0:
            raise ConfigError(f"--weights: weight of '{key}' must be a finite number >= 0, got {value.strip()}")
        weights[key] = w
    if sum(weights.values()) <= 0:
        raise ConfigError("--weights: at least one weight must be positive")
    return weights


def rank(score_table: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Weighted score and rank per method (1 = best; ties share the best rank; unscored last)."""
    used = {k: w for k, w in weights.items() if w > 0}
    total = sum(used.values())
    weighted = sum(score_table[k] * w for k, w in used.items()) / total
    missing = [", ".join(k for k in used if not np.isfinite(score_table.at[m, k])) for m in score_table.index]
    out = pd.DataFrame({"score": weighted.where([not m for m in missing]), "unscored_because": [
        f"no {m}" if m else "" for m in missing]}, index=score_table.index)
    out["rank"] = out["score"].rank(ascending=False, method="min")
    return out


@dataclass
class Comparison:
    """Everything ``anonaudit compare`` shows: per-method table, Pareto fronts, ranking."""

    table: pd.DataFrame  # one row per method (see :func:`compare`)
    attacks: pd.DataFrame  # per (method, attack) worst case
    utilities: pd.DataFrame  # per (method, utility metric)
    pareto: pd.DataFrame  # per (attack, utility, method): on_front, dominated_by
    weights: dict[str, float]
    runs: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def attack_keys(self) -> list[str]:
        return list(dict.fromkeys(self.attacks["attack"]))

    @property
    def utility_keys(self) -> list[str]:
        return list(dict.fromkeys(self.utilities["utility"]))


def pareto_pairs(attacks: pd.DataFrame, utilities: pd.DataFrame) -> pd.DataFrame:
    """For every (attack, utility) pair, each method's privacy and utility values and front status."""
    rows = []
    for akey, a in attacks.groupby("attack", sort=False):
        use_risk = a["risk"].notna().all()
        privacy = a.set_index("method")["risk" if use_risk else "value"].astype(float)
        p_hib = False if use_risk else as_bool(a["higher_is_better"].iloc[0])
        for ukey, u in utilities.groupby("utility", sort=False):
            util = u.set_index("method")["value"].astype(float)
            pts = pd.DataFrame({"privacy": privacy, "utility": util}).dropna()
            if pts.empty:
                continue
            front = pareto_front(pts, ["privacy", "utility"], [p_hib, as_bool(u["higher_is_better"].iloc[0])])
            for method, r in front.iterrows():
                rows.append({"attack": akey, "utility": ukey, "privacy_measure": "risk" if use_risk else "success",
                             "method": method, "privacy": r["privacy"], "utility_value": r["utility"],
                             "on_front": bool(r["on_front"]), "dominated_by": "; ".join(r["dominated_by"] or [])})
    return pd.DataFrame(rows, columns=["attack", "utility", "privacy_measure", "method", "privacy", "utility_value",
                                       "on_front", "dominated_by"])


def compare(table: pd.DataFrame, weights: str | dict[str, float] | None = None) -> Comparison:
    """Build the comparison from a table of :func:`load_runs` (or any results table with ``method``)."""
    if "method" not in table.columns:
        table = table.assign(method=table["target_label"], run="")
    table = table[(table["status"] == "ok") & table["kind"].isin(["attack", "evaluator"])]
    methods = list(dict.fromkeys(table["method"]))
    attacks = attack_measures(table)
    utilities = utility_measures(table)
    known = list(dict.fromkeys([*attacks["attack"], *utilities["utility"]]))
    w = weights if isinstance(weights, dict) else parse_weights(weights, known)
    sc = scores(attacks, utilities, methods)
    ranking = rank(sc, w)
    pareto = pareto_pairs(attacks, utilities)

    wide = pd.DataFrame(index=methods)
    first = table.drop_duplicates("method").set_index("method")
    wide["run"] = first["run"]
    wide["target"] = first["target_label"]
    wide["rank"] = ranking["rank"]
    wide["score"] = ranking["score"]
    wide["unscored_because"] = ranking["unscored_because"]
    wide["privacy_score"] = sc["privacy"]
    wide["utility_score"] = sc["utility"]
    with_risk = attacks.dropna(subset=["risk"])
    if not with_risk.empty:
        worst = with_risk.loc[with_risk.groupby("method")["risk"].idxmax()].set_index("method")
        wide["worst_attack"] = worst["attack"]
        wide["worst_metric"] = worst["metric"]
        for c in ("risk", "risk_ci_low", "risk_ci_high"):
            wide[f"worst_{c}"] = worst[c]
    if not pareto.empty:
        counts = pareto.groupby("method")["on_front"].agg(["sum", "size"])
        wide["pareto_fronts"] = [f"{int(counts.at[m, 'sum'])}/{int(counts.at[m, 'size'])}" if m in counts.index else ""
                                 for m in methods]
    for key, g in attacks.groupby("attack", sort=False):
        g = g.set_index("method")
        for c in ("risk", "risk_ci_low", "risk_ci_high", "metric", "value", "ci_low", "ci_high", "n"):
            wide[f"{key} {c}"] = g[c]
    for key, g in utilities.groupby("utility", sort=False):
        g = g.set_index("method")
        wide[key] = g["value"]
        for c in ("ci_low", "ci_high", "n"):
            wide[f"{key} {c}"] = g[c]
    wide = wide.sort_values("rank", na_position="last", kind="stable")
    wide.index.name = "method"

    notes = []
    for kind, frame, key in (("attack", attacks, "attack"), ("utility metric", utilities, "utility")):
        have = frame.groupby("method")[key].agg(set)
        for k in dict.fromkeys(frame[key]):
            lacking = [m for m in methods if k not in have.get(m, set())]
            if lacking:
                notes.append(f"{kind} {k} was not measured on {len(lacking)} of {len(methods)} methods: {', '.join(lacking)}")
    return Comparison(wide.reset_index(), attacks, utilities, pareto, w, list(dict.fromkeys(table["run"])), notes)
