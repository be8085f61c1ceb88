"""Compare anonymization methods under attack, from the results of one or several audit runs.

Works on results tables only (``results.csv`` of each run, and the verdicts of a policy when one is
given); no model is run. A *method* is one target of one run, named ``run: target label`` in full
(:func:`method_label`); its short label (:func:`short_labels`) is shortened in the middle and
always unique among the compared methods. For each method:

* per **attack** (an attack component with its parameters), the worst case over the attack's
  metrics: the metric of highest **risk upper bound** (the upper end of the risk's 95% CI, the risk
  itself where a row has no CI), with its risk, CI and n;
* per **utility metric**, its value with CI and n;
* the **worst-case attack**: the highest risk upper bound over all attacks;
* the **Pareto front** of every (attack, utility) pair: privacy is the attack's risk upper bound
  (lower is better; the attack's success rate, oriented by ``higher_is_better``, where no risk is
  defined), utility is the metric as measured, oriented by its own ``higher_is_better``; a method
  some other method beats on both axes is *dominated*;
* with a policy, its **verdict** (PASS, FAIL or NOT TESTED, from
  :func:`~anonaudit.verdicts.certify.certify` on its run);
* a **score** at user-chosen weights and the ranking by it.

Scores are in [0, 1], 1 best, and never depend on which other methods are compared:

* an attack's score is ``1 - u`` with ``u`` its risk upper bound clipped to [0, 1] (0 = may leak
  as much as the originals, 1 = no better than chance); an attack without any risk estimate has no
  score;
* a utility metric is scored only on a fixed scale of its own, [0, 1] as measured
  (:data:`UNIT_SCALE_METRICS`: SSIM, LPIPS, detection rates): its value clipped to [0, 1], or
  ``1 - value`` where lower is better. Metrics without such a scale (PSNR in dB, Fréchet
  distances, landmark errors) are shown with their CIs but not scored, and cannot be weighted;
* ``privacy`` is the worst attack score (``1 -`` the worst-case risk upper bound) and ``utility``
  the mean of the method's scored utility metrics.

The weighted score is the weighted geometric mean ``prod(s_k ** (w_k / sum(w)))`` over the keys of
positive weight (``privacy``, ``utility``, or any attack or scored utility key): a method whose
worst-case attack may leak as much as the originals scores 0 whatever its utility. A method
missing a weighted key (e.g. no risk estimate) gets no score and ranks after every scored one,
with the reason. With verdicts, every PASS ranks above every NOT TESTED, which ranks above every
FAIL, and the score orders methods within a verdict (``ignore_verdict`` ranks on the score alone).
Ties on the score are broken by the lower worst-case risk upper bound, then the higher utility.

Runs of different data kinds (faces, plates: :func:`~anonaudit.verdicts.certify.run_kind`) or of
different data sets (the manifest's data name and sizes, and the sha256 of the evaluated originals
where both runs recorded them) measure different things: :func:`check_comparable` refuses them
unless forced.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..results import Results
from .certify import FAIL, NOT_TESTED, PASS, certify, run_kind
from .pareto import pareto_front
from .policy import Policy, load_policy

DEFAULT_WEIGHTS = {"privacy": 0.5, "utility": 0.5}
GROUPS = ("privacy", "utility")
#: Rank order of verdicts (lower ranks first).
VERDICT_ORDER = {PASS: 0, NOT_TESTED: 1, FAIL: 2}
#: Longest short label of a method (longer ones are shortened in the middle, unless that makes two equal).
LABEL_WIDTH = 44
#: Utility metrics measured on a fixed [0, 1] scale (regular expression on the metric name -> what the scale means).
UNIT_SCALE_METRICS = {
    r"ssim(_\w+)?": "SSIM as measured, 1 = identical to the original (below 0 counts as 0)",
    r"lpips_\w+": "1 - LPIPS distance, LPIPS 0 = identical to the original (above 1 counts as 1)",
    r"face_detection_rate(_\w+)?": "share of released images in which a face is still detected",
    r"plate_detectability": "share of released images in which a plate is still detected",
}


# -- runs --------------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One audit output folder: its results, the name it is shown under, its data kind and data set."""

    name: str
    folder: Path
    results: Results

    @cached_property
    def kind(self) -> str | None:
        return run_kind(self.results)

    @cached_property
    def data(self) -> dict[str, Any]:
        """``name``, ``n`` (images in the data set), ``evaluated`` (those audited) and ``inputs`` (sha256
        over the sorted sha256 of the evaluated originals, from ``provenance/inputs.json``), None where unknown."""
        data = (self.results.manifest or {}).get("data") or {}
        return {
            "name": data.get("name"),
            "n": data.get("n"),
            "evaluated": data.get("evaluation"),
            "inputs": _inputs_digest(self.folder),
        }


def _inputs_digest(folder: Path) -> str | None:
    path = folder / "provenance" / "inputs.json"
    try:
        hashes = sorted(str(e["sha256"]) for e in json.loads(path.read_text())["evaluation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def open_runs(folders: Sequence[str | Path]) -> list[Run]:
    """The runs in ``folders``, named by their manifest names (the folder names where those clash)."""
    if not folders:
        raise ConfigError("compare needs at least one audit output folder")
    loaded = [Results.load(folder) for folder in folders]
    names = [str(r.manifest.get("name") or Path(f).resolve().name) for r, f in zip(loaded, folders)]
    if len(set(names)) < len(names):  # runs of one config: tell them apart by folder
        names = [Path(f).resolve().name for f in folders]
    if len(set(names)) < len(names):
        names = [f"{n}#{i}" for i, n in enumerate(names, 1)]
    return [Run(name, Path(f), r) for name, f, r in zip(names, folders, loaded)]


def _data_text(data: dict[str, Any]) -> str:
    parts = [str(data["name"] or "unknown data set")]
    if data["n"] is not None:
        parts.append(
            f"{data['n']} images"
            + (f", {data['evaluated']} evaluated" if data["evaluated"] not in (None, data["n"]) else "")
        )
    if data["inputs"]:
        parts.append(f"originals sha256 {data['inputs'][:12]}")
    return ", ".join(parts)


def check_comparable(runs: Sequence[Run], force: bool = False) -> list[str]:
    """Refuse (:class:`~anonaudit.errors.DataError`) runs of different data kinds or data sets, naming
    both, unless ``force``; returns notes on what was compared anyway or could not be checked."""
    problems, notes = [], []
    first = runs[0] if runs else None
    for run in runs[1:]:
        if first.kind and run.kind and first.kind != run.kind:
            problems.append(f"{first.name} ({first.folder}) audits {first.kind} but {run.name} ({run.folder}) audits "
                            f"{run.kind}: their attacks and risks are not comparable")
        a, b = first.data, run.data
        differ = [
            k for k in ("name", "n", "evaluated", "inputs") if a[k] is not None and b[k] is not None and a[k] != b[k]
        ]
        if differ:
            problems.append(f"{first.name} ({first.folder}) and {run.name} ({run.folder}) audit different data "
                            f"({_data_text(a)} vs {_data_text(b)})")
    unknown_kind = [r.name for r in runs if r.kind is None]
    if unknown_kind and len(runs) > 1:
        notes.append(f"data kind not recorded in {', '.join(unknown_kind)}: not checked")
    no_inputs = [r.name for r in runs if r.data["inputs"] is None]
    if no_inputs and len(runs) > 1:
        notes.append(f"no record of the evaluated originals (provenance/inputs.json) in {', '.join(no_inputs)}: "
                     "the data sets are compared by name and size only")
    if problems and not force:
        raise DataError("compare refuses runs that measure different things: " + "; ".join(problems)
                        + " (pass --force to compare them anyway)")
    return [f"compared although {p} (--force)" for p in problems] + notes


def method_label(run: str, target_label: str) -> str:
    """The full name of a method: its run's name and its target's label."""
    return f"{run}: {target_label}" if run else str(target_label)


def shorten(text: str, width: int = LABEL_WIDTH) -> str:
    """``text`` cut in the middle to ``width`` characters (an ellipsis marks the cut); shorter text unchanged."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def short_labels(labels: Sequence[str], width: int = LABEL_WIDTH) -> list[str]:
    """``labels`` shortened in the middle, widened until no two distinct labels read the same."""
    distinct = len(set(labels))
    longest = max((len(s) for s in labels), default=0)
    while width < longest and len({shorten(s, width) for s in labels}) < distinct:
        width += 4
    return [shorten(s, width) for s in labels]


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """The successful attack and utility rows of every run, with ``run`` and ``method`` columns."""
    tables = []
    for run in runs:
        t = run.results.table
        t = t[(t["status"] == "ok") & t["kind"].isin(["attack", "evaluator"])].copy()
        if t.empty:
            raise DataError(f"{run.folder}: no successful attack or utility result to compare")
        t["run"] = run.name
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    table["method"] = [method_label(r, t) for r, t in zip(table["run"], table["target_label"])]
    return table


def load_runs(folders: Sequence[str | Path]) -> pd.DataFrame:
    """:func:`runs_table` of the runs in ``folders`` (no comparability check: see :func:`compare_runs`)."""
    return runs_table(open_runs(folders))


def run_verdicts(runs: Sequence[Run], policy: Policy | str | Path) -> dict[str, str]:
    """Per method (:func:`method_label`), the verdict of ``policy`` on its target (each run certified once)."""
    policy = load_policy(policy)
    out = {}
    for run in runs:
        verdict = certify(run.results, policy)
        out.update({method_label(run.name, label): v for label, v in verdict.targets.items()})
    return out


# -- measures ----------------------------------------------------------------------------------------------------------
def _keys(rows: pd.DataFrame, short: str) -> pd.Series:
    """A short, unique name per measure: ``short`` where it names one component label, else the label."""
    labels_per_short = rows.groupby(short)["component_label"].nunique()
    clash = set(labels_per_short[labels_per_short > 1].index)
    return pd.Series(
        [lab if s in clash else s for s, lab in zip(rows[short], rows["component_label"])], index=rows.index
    )


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return table[name] if name in table.columns else pd.Series(np.nan, index=table.index)


def attack_measures(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, attack): the attack's worst case over its metrics.

    Columns: method, attack, metric, risk, risk_ci_low, risk_ci_high, risk_upper, value, ci_low,
    ci_high, n, higher_is_better. The worst metric is the one of highest ``risk_upper`` (the risk's
    95% upper bound, the risk where it has none); where no metric of the attack has a risk, the
    first metric's success rate is kept (risk empty).
    """
    att = table[table["kind"] == "attack"].copy()
    cols = [
        "method",
        "attack",
        "metric",
        "risk",
        "risk_ci_low",
        "risk_ci_high",
        "risk_upper",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "higher_is_better",
    ]
    if att.empty:
        return pd.DataFrame(columns=cols)
    att["attack"] = _keys(att, "component")
    att["risk"] = pd.to_numeric(att["risk"], errors="coerce")
    att["risk_ci_low"] = pd.to_numeric(_column(att, "risk_ci_low"), errors="coerce")
    att["risk_ci_high"] = pd.to_numeric(_column(att, "risk_ci_high"), errors="coerce")
    att["risk_upper"] = att["risk_ci_high"].where(att["risk_ci_high"].notna() & att["risk"].notna(), att["risk"])
    out = []
    for _, g in att.groupby(["method", "attack"], sort=False):
        with_risk = g.dropna(subset=["risk_upper"])
        out.append(with_risk.loc[with_risk["risk_upper"].idxmax()] if not with_risk.empty else g.iloc[0])
    return pd.DataFrame(out)[cols].reset_index(drop=True)


def utility_measures(table: pd.DataFrame) -> pd.DataFrame:
    """Per (method, utility metric): value, CI, n and orientation (``utility`` names the metric)."""
    ev = table[table["kind"] == "evaluator"].copy()
    cols = ["method", "utility", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better"]
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


def unit_scale(metric: str) -> str | None:
    """What a utility metric's [0, 1] scale means (:data:`UNIT_SCALE_METRICS`), None when it has none."""
    return next((text for pattern, text in UNIT_SCALE_METRICS.items() if re.fullmatch(pattern, str(metric))), None)


def as_bool(v) -> bool:
    """A boolean cell of a results table (bool, or "True"/"False" text after a CSV round trip)."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else False


def scores(attacks: pd.DataFrame, utilities: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Per method (index), one score column per attack and scored utility key plus ``privacy`` and
    ``utility`` (see the module doc; empty where a method has no such score)."""
    out = pd.DataFrame(index=list(methods), dtype=float)
    for key, g in attacks.groupby("attack", sort=False):
        out[key] = 1.0 - g.set_index("method")["risk_upper"].astype(float).clip(0.0, 1.0)
    scored = []
    for key, g in utilities.groupby("utility", sort=False):
        if unit_scale(g["metric"].iloc[0]) is None:
            continue
        g = g.set_index("method")
        v = pd.to_numeric(g["value"], errors="coerce").astype(float).clip(0.0, 1.0)
        out[key] = v if as_bool(g["higher_is_better"].iloc[0]) else 1.0 - v
        scored.append(key)
    attack_keys = list(dict.fromkeys(attacks["attack"]))
    out["privacy"] = out[attack_keys].min(axis=1, skipna=True) if attack_keys else np.nan
    out["utility"] = out[scored].mean(axis=1, skipna=True) if scored else np.nan
    return out


def unscored_utilities(utilities: pd.DataFrame) -> list[str]:
    """The utility keys without a fixed [0, 1] scale (shown, never scored)."""
    return [k for k, g in utilities.groupby("utility", sort=False) if unit_scale(g["metric"].iloc[0]) is None]


# -- weights and ranking -----------------------------------------------------------------------------------------------
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


def parse_weights(
    spec: str | None, known: Sequence[str], unscorable: Mapping[str, str] | None = None
) -> dict[str, float]:
    """``"privacy=0.7,utility=0.3"`` or per key (``"ocr=2,ssim=1"``) -> ``{key: weight}``.

    Keys are ``privacy``, ``utility`` or one of ``known`` (the attack and utility keys of the
    comparison); weights are non-negative numbers, not all zero. A key of ``unscorable`` (key -> why)
    cannot be weighted.
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
        if w > 0 and unscorable and key in unscorable:
            raise ConfigError(f"--weights: '{key}' cannot be weighted: {unscorable[key]}")
        weights[key] = w
    if sum(weights.values()) <= 0:
        raise ConfigError("--weights: at least one weight must be positive")
    return weights


def weighted_scores(score_table: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Per method: ``score`` (the weighted geometric mean of its key scores) and ``unscored_because``."""
    used = {k: w for k, w in weights.items() if w > 0}
    total = sum(used.values())
    logs = []
    for k, w in used.items():
        s = score_table[k].astype(float)
        logs.append(np.log(s.where(s > 0, np.nan)).fillna(-np.inf).where(s.notna()) * (w / total))
    score = np.exp(sum(logs))
    missing = [", ".join(("risk estimate" if k == "privacy" else "scored utility metric" if k == "utility" else k)
                         for k in used if not np.isfinite(score_table.at[m, k])) for m in score_table.index]
    return pd.DataFrame({"score": score.where([not m for m in missing]),
                         "unscored_because": [f"no {m}" if m else "" for m in missing]}, index=score_table.index)


def rank(score_table: pd.DataFrame, weights: dict[str, float], verdicts: Mapping[str, str] | None = None,
         worst_upper: pd.Series | None = None) -> pd.DataFrame:
    """Weighted score and rank per method (1 = best; equal keys share the best rank).

    Order: by verdict (PASS, NOT TESTED, FAIL) when ``verdicts`` are given, scored before unscored,
    higher score, lower ``worst_upper`` (worst-case risk upper bound), higher utility score.
    """
    out = weighted_scores(score_table, weights)
    tier = pd.Series([VERDICT_ORDER.get(verdicts.get(m), len(VERDICT_ORDER)) if verdicts is not None else 0
                      for m in out.index], index=out.index)
    upper = (worst_upper if worst_upper is not None else pd.Series(np.nan, index=out.index)).reindex(out.index)
    keys = pd.DataFrame(
        {
            "tier": tier,
            "unscored": out["score"].isna().astype(int),
            "score": -out["score"].fillna(0.0),
            "upper": upper.astype(float).fillna(np.inf),
            "utility": -score_table["utility"].astype(float).fillna(-1.0),
        }
    )
    ordered = keys.sort_values(list(keys.columns), kind="stable")
    ranks, previous, position = {}, None, 0
    for i, (m, k) in enumerate(zip(ordered.index, ordered.itertuples(index=False)), 1):
        position = position if k == previous else i
        ranks[m], previous = position, k
    out["rank"] = pd.Series(ranks).reindex(out.index).astype(float)
    return out


# -- the comparison ----------------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Everything ``anonaudit compare`` shows: per-method table, Pareto fronts, ranking."""

    table: pd.DataFrame  # one row per method, ranked (see :func:`compare`)
    attacks: pd.DataFrame  # per (method, attack) worst case
    utilities: pd.DataFrame  # per (method, utility metric)
    pareto: pd.DataFrame  # per (attack, utility, method): on_front, dominated_by
    weights: dict[str, float]
    runs: list[str]
    notes: list[str] = field(default_factory=list)
    policy: str | None = None  # the policy whose verdicts are shown
    ignore_verdict: bool = False  # ranked on the score alone

    @property
    def attack_keys(self) -> list[str]:
        return list(dict.fromkeys(self.attacks["attack"]))

    @property
    def utility_keys(self) -> list[str]:
        return list(dict.fromkeys(self.utilities["utility"]))

    @property
    def ranking_rule(self) -> str:
        """How the methods are ranked, in words."""
        weights = ", ".join(f"{k}={w:g}" for k, w in self.weights.items())
        rule = (f"score = weighted geometric mean of key scores at {weights} (privacy: 1 - worst-case risk upper "
                "bound; utility: mean of the utility metrics on their own [0, 1] scale)")
        if self.policy and not self.ignore_verdict:
            return f"by verdict of policy {self.policy} (PASS, then NOT TESTED, then FAIL), then by {rule}"
        if self.policy:
            return f"by {rule} alone (--ignore-verdict; verdicts of policy {self.policy} shown)"
        return f"by {rule}"


def pareto_pairs(attacks: pd.DataFrame, utilities: pd.DataFrame) -> pd.DataFrame:
    """For every (attack, utility) pair, each method's privacy and utility values and front status."""
    rows = []
    for akey, a in attacks.groupby("attack", sort=False):
        use_risk = a["risk_upper"].notna().all()
        privacy = a.set_index("method")["risk_upper" if use_risk else "value"].astype(float)
        p_hib = False if use_risk else as_bool(a["higher_is_better"].iloc[0])
        for ukey, u in utilities.groupby("utility", sort=False):
            util = u.set_index("method")["value"].astype(float)
            pts = pd.DataFrame({"privacy": privacy, "utility": util}).dropna()
            if pts.empty:
                continue
            front = pareto_front(pts, ["privacy", "utility"], [p_hib, as_bool(u["higher_is_better"].iloc[0])])
            for method, r in front.iterrows():
                rows.append({"attack": akey, "utility": ukey,
                             "privacy_measure": "risk upper bound" if use_risk else "success",
                             "method": method, "privacy": r["privacy"], "utility_value": r["utility"],
                             "on_front": bool(r["on_front"]), "dominated_by": "; ".join(r["dominated_by"] or [])})
    return pd.DataFrame(rows, columns=["attack", "utility", "privacy_measure", "method", "privacy", "utility_value",
                                       "on_front", "dominated_by"])


def _missing_notes(attacks: pd.DataFrame, utilities: pd.DataFrame, methods: list[str]) -> list[str]:
    notes = []
    for kind, frame, key in (("attack", attacks, "attack"), ("utility metric", utilities, "utility")):
        have = frame.groupby("method")[key].agg(set)
        for k in dict.fromkeys(frame[key]):
            lacking = [m for m in methods if k not in have.get(m, set())]
            if lacking:
                notes.append(
                    f"{kind} {k} was not measured on {len(lacking)} of {len(methods)} methods: {', '.join(lacking)}"
                )
    riskless = [k for k, g in attacks.groupby("attack", sort=False) if g["risk_upper"].isna().all()]
    if riskless:
        notes.append(f"{', '.join(riskless)}: no risk estimate, shown as success rates but not in the privacy score")
    unscored = unscored_utilities(utilities)
    if unscored:
        notes.append(f"{', '.join(unscored)}: no fixed [0, 1] scale, shown with CIs but not scored")
    return notes


def compare(
    table: pd.DataFrame,
    weights: str | dict[str, float] | None = None,
    verdicts: Mapping[str, str] | None = None,
    ignore_verdict: bool = False,
    notes: Sequence[str] = (),
    policy: str | None = None,
) -> Comparison:
    """Build the comparison from a table of :func:`runs_table` (or any results table with ``method``).

    ``verdicts`` (method -> PASS / FAIL / NOT TESTED, e.g. :func:`run_verdicts`) add a ``verdict``
    column and rank by verdict first unless ``ignore_verdict``; ``policy`` names their policy.
    """
    if verdicts is None and ignore_verdict:
        raise ConfigError("--ignore-verdict only applies with --policy (there is no verdict to ignore)")
    if "method" not in table.columns:
        table = table.assign(method=table["target_label"], run="")
    table = table[(table["status"] == "ok") & table["kind"].isin(["attack", "evaluator"])]
    methods = list(dict.fromkeys(table["method"]))
    attacks = attack_measures(table)
    utilities = utility_measures(table)
    known = list(dict.fromkeys([*attacks["attack"], *utilities["utility"]]))
    no_scale = dict.fromkeys(unscored_utilities(utilities), "it has no fixed [0, 1] scale (shown, not scored)")
    w = weights if isinstance(weights, dict) else parse_weights(weights, known, no_scale)
    sc = scores(attacks, utilities, methods)
    with_risk = attacks.dropna(subset=["risk_upper"])
    worst = (
        with_risk.loc[with_risk.groupby("method")["risk_upper"].idxmax()].set_index("method")
        if not with_risk.empty
        else None
    )
    ranking = rank(sc, w, verdicts if verdicts is not None and not ignore_verdict else None,
                   worst["risk_upper"] if worst is not None else None)
    pareto = pareto_pairs(attacks, utilities)

    wide = pd.DataFrame(index=methods)
    first = table.drop_duplicates("method").set_index("method")
    wide["label"] = short_labels(methods)
    wide["run"] = first["run"]
    wide["target_label"] = first["target_label"]
    if verdicts is not None:
        wide["verdict"] = [verdicts.get(m, NOT_TESTED) for m in methods]
    wide["rank"] = ranking["rank"]
    wide["score"] = ranking["score"]
    wide["unscored_because"] = ranking["unscored_because"]
    wide["privacy_score"] = sc["privacy"]
    wide["utility_score"] = sc["utility"]
    if worst is not None:
        wide["worst_attack"] = worst["attack"]
        wide["worst_metric"] = worst["metric"]
        for c in ("risk", "risk_ci_low", "risk_ci_high", "risk_upper"):
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
    wide = wide.sort_values("rank", kind="stable")
    wide.index.name = "method"
    return Comparison(wide.reset_index(), attacks, utilities, pareto, w, list(dict.fromkeys(table["run"])),
                      [*notes, *_missing_notes(attacks, utilities, methods)], policy, ignore_verdict)


def compare_runs(
    folders: Sequence[str | Path],
    weights: str | dict[str, float] | None = None,
    policy: Policy | str | Path | None = None,
    ignore_verdict: bool = False,
    force: bool = False,
) -> Comparison:
    """The comparison of the runs in ``folders`` (``anonaudit compare``): refused for runs of different
    kinds or data sets unless ``force`` (:func:`check_comparable`); with ``policy``, each run is
    certified and the verdicts rank first unless ``ignore_verdict``."""
    if ignore_verdict and policy is None:
        raise ConfigError("--ignore-verdict only applies with --policy (there is no verdict to ignore)")
    runs = open_runs(folders)
    notes = check_comparable(runs, force)
    verdicts, name = None, None
    if policy is not None:
        loaded = load_policy(policy)
        verdicts, name = run_verdicts(runs, loaded), loaded.name
    return compare(runs_table(runs), weights, verdicts, ignore_verdict, notes, name)
