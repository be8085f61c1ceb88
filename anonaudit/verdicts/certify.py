"""Judge an audit's results against a policy: PASS / FAIL / NOT TESTED per criterion, target and run.

The rules are in the package docstring (:mod:`anonaudit.verdicts`). Only the results table, its
manifest, the record of the released files (``files.csv``) and the findings (``findings.csv``) are
read; nothing is recomputed.

Fail closed: a target with any released file not fully audited (skipped because it could not be
decoded, unpaired, partly read) cannot PASS: every criterion that would pass on the files that were
audited is NOT TESTED instead, naming how many files and the first of them (criteria that fail stay
FAIL). A run folder without ``files.csv`` (an older audit) records no file statuses: its criteria
are NOT TESTED likewise until the audit is rerun. A FAILed criterion points to its evidence: the
first files whose findings count toward the judged metric and their number in ``findings.csv``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError, DataError
from ..fileio import write_json_atomic
from ..results import FILE_COLUMNS, Results
from ..stats import is_wilson, scaled_n_needed, wilson_n_needed
from .policy import KINDS, Criterion, Policy, load_policy

PASS, FAIL, NOT_TESTED, NOT_APPLICABLE = "PASS", "FAIL", "NOT TESTED", "NOT APPLICABLE"
#: ``anonaudit certify`` exit status per overall verdict.
EXIT_CODES = {PASS: 0, FAIL: 1, NOT_TESTED: 2}
#: Data sets whose kind is known by name (runs of other data sets say ``kind`` in their config).
DATASET_KINDS = {"synthetic_plates": "plates", "openalpr_scenes": "plates", "pascal_voc": "plates",
                 "lfw": "faces", "celeba": "faces"}


@dataclass
class CriterionResult:
    """How one target fared on one criterion (fields described in :mod:`anonaudit.verdicts`)."""

    id: str
    description: str
    select: str
    on: str
    comparison: str
    threshold_text: str
    bound: str
    status: str
    reason: str
    threshold: float = float("nan")
    component: str = ""
    metric: str = ""
    value: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n: int = 0
    baseline: float = float("nan")
    bound_value: float = float("nan")
    evidence: dict[str, Any] = field(default_factory=dict)  # FAIL: {files, findings, count} (see the module doc)


@dataclass
class Verdict:
    """A policy's verdict on every target of a run."""

    policy: Policy
    kind: str | None
    criteria: dict[str, list[CriterionResult]]
    targets: dict[str, str]
    overall: str
    run: str = ""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # per target: file_summary()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.overall]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "policy": self.policy.to_dict(),
            "kind": self.kind,
            "run": self.run,
            "created": self.created,
            "targets": [
                {"target_label": label, "verdict": self.targets[label], "files": self.files.get(label),
                 "criteria": [{k: _json_number(v) for k, v in asdict(c).items()} for c in self.criteria[label]]}
                for label in self.targets
            ],
        }

    def table(self) -> pd.DataFrame:
        """One row per (target, criterion), for printing."""
        return pd.DataFrame([{"target": label, **asdict(c)} for label, cs in self.criteria.items() for c in cs])


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.4g}"


def run_kind(results: Results) -> str | None:
    """``faces`` or ``plates``: the run config's ``kind``, else known by the data set's name, else None."""
    manifest = results.manifest or {}
    config = manifest.get("config") or {}
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind in KINDS:
        return kind
    data = config.get("data") if isinstance(config, dict) else None
    name = data.get("name") if isinstance(data, dict) else data if isinstance(data, str) else None
    name = name or (manifest.get("data") or {}).get("name")
    return DATASET_KINDS.get(name)


def _sample_size_note(c: Criterion, r: pd.Series, value: float, bound: float, n: float, threshold: float) -> str:
    """Why a bound that breaks the threshold may or may not pass with more data: the smallest n at which
    the same observed value would pass, exact for a Wilson interval (a count's rate, or a new-leak or
    absolute risk mapped from one), approximate otherwise (half-width scaled by ``sqrt(n / n_new)``)."""
    side = {"<=": "upper", "<": "upper", ">=": "lower", ">": "lower"}.get(c.comparison)
    if side is None or c.bound != side:
        return ""
    if not c.holds(value, threshold):
        return "; the value itself breaks the threshold: no sample size can pass"
    rate, lo, hi, t = value, _num(r["ci_low"]), _num(r["ci_high"]), threshold
    if (
        c.on == "risk"
    ):  # risk = (rate - b) / (1 - b) for new-leak and absolute risks: judge the rate against the mapped threshold
        b = _num(r["baseline"])
        mapped = str(r["risk_kind"]) in ("new_leak", "absolute") and math.isfinite(b) and b < 1 and threshold > 0
        rate, t = (_num(r["value"]), b + threshold * (1 - b)) if mapped else (float("nan"), t)
    if is_wilson(rate, lo, hi, n):
        needed, how = wilson_n_needed(rate, t, side), "exact, Wilson 95% CI"
    else:
        needed, how = (
            scaled_n_needed(value, bound, n, threshold),
            "approximate: the CI's half-width scaled by sqrt(n / n_new)",
        )
    if math.isinf(needed):
        return "; the value is at the threshold: its CI straddles it at any sample size, so no n can pass"
    return (f"; the value meets the threshold but its CI straddles it: the same observed value would pass "
            f"with n >= {int(needed)} (has {int(n)}; {how})")


def _judge_row(c: Criterion, r: pd.Series) -> tuple[str, float, float, str]:
    """``(status, bound value, threshold, reason)`` of one measured row; a failing bound says whether, and
    from which n, more data could pass (:func:`_sample_size_note`)."""
    value = _num(r["risk"] if c.on == "risk" else r["value"])
    lo = _num(r["risk_ci_low"] if c.on == "risk" else r["ci_low"])
    hi = _num(r["risk_ci_high"] if c.on == "risk" else r["ci_high"])
    n = _num(r["n"])
    what = f"{r['component']}/{r['metric']}" + (" risk" if c.on == "risk" else "")
    if math.isnan(value) or not n:
        why = str(r["reason"]) if isinstance(r["reason"], str) and r["reason"] else ""
        return NOT_TESTED, float("nan"), float("nan"), f"{what} measured nothing (n=0)" + (f": {why}" if why else "")
    threshold = c.threshold.resolve(_num(r["baseline"]))
    if math.isnan(threshold):
        return NOT_TESTED, float("nan"), threshold, f"{what} has no baseline for the threshold {c.threshold.text!r}"
    bound = {"upper": hi, "lower": lo, "value": value}[c.bound]
    if math.isnan(bound):
        return NOT_TESTED, bound, threshold, f"{what} has no 95% CI to judge its {c.bound} bound on"
    held = c.holds(bound, threshold)
    label = "value" if c.bound == "value" else f"{c.bound} 95% bound"
    reason = (
        f"{what}: {label} {_fmt(bound)} {c.comparison if held else 'breaks ' + c.comparison} {_fmt(threshold)} "
        f"(value {_fmt(value)}, n={int(n)})"
    )
    if not held:
        reason += _sample_size_note(c, r, value, bound, n, threshold)
    return (PASS if held else FAIL), bound, threshold, reason


def _margin(c: Criterion, bound: float, threshold: float) -> float:
    """How far a row is on the failing side of the threshold (larger = worse)."""
    if c.comparison in ("<=", "<"):
        return bound - threshold
    if c.comparison in (">=", ">"):
        return threshold - bound
    return abs(bound - threshold)


def judge(c: Criterion, rows: pd.DataFrame) -> CriterionResult:
    """Judge one criterion on one target's rows (the whole table of that target)."""
    out = CriterionResult(c.id, c.description, c.select, c.on, c.comparison, c.threshold.text, c.bound, NOT_TESTED, "")
    target_down = rows[(rows["kind"] == "target") & rows["status"].isin(["failed", "unavailable"])]
    if not target_down.empty:
        out.reason = f"the target itself {target_down['status'].iloc[0]}: {target_down['message'].iloc[0]}"
        return out
    units = rows[
        rows["kind"].isin(["attack"] if c.on == "risk" else ["attack", "evaluator"])
    ]  # only attacks have risks
    units = units[[c.matches_component(str(comp)) for comp in units["component"]]]
    broken = units[units["status"].isin(["failed", "unavailable"])]
    selected = pd.Series(
        [c.matches(str(a), str(b)) for a, b in zip(units["component"], units["metric"])], index=units.index, dtype=bool
    )
    measured = units[(units["status"] == "ok") & selected]
    judged = []
    for _, r in measured.iterrows():
        status, bound, threshold, reason = _judge_row(c, r)
        judged.append((status, bound, threshold, reason, r))
    untested = [j[3] for j in judged if j[0] == NOT_TESTED]
    untested += [
        f"{b['component']}: {b['status']} ({b['message']})"
        for _, b in broken.drop_duplicates(["component", "message"]).iterrows()
    ]
    decided = [j for j in judged if j[0] != NOT_TESTED]
    failed = [j for j in decided if j[0] == FAIL]
    inapplicable = units[units["status"] == "not_applicable"]
    if not judged and broken.empty and not inapplicable.empty:
        out.status, out.reason = NOT_APPLICABLE, "; ".join(dict.fromkeys(inapplicable["message"].astype(str)))
        return out
    if failed:
        pick, out.status = max(failed, key=lambda j: _margin(c, j[1], j[2])), FAIL
        out.reason = pick[3] + (f"; also not tested: {'; '.join(untested)}" if untested else "")
    elif untested or not decided:
        pick = max(decided, key=lambda j: _margin(c, j[1], j[2])) if decided else None
        out.reason = "; ".join(untested) or f"no attack or evaluator matching '{c.select}' was run"
    else:
        pick, out.status = max(decided, key=lambda j: _margin(c, j[1], j[2])), PASS
        out.reason = pick[3] + (f" (worst of {len(decided)} rows)" if len(decided) > 1 else "")
    if pick is not None:
        r = pick[4]
        risk = c.on == "risk"
        out.component, out.metric = str(r["component"]), str(r["metric"])
        out.value = _num(r["risk"] if risk else r["value"])
        out.ci_low, out.ci_high = (
            _num(r["risk_ci_low"] if risk else r["ci_low"]),
            _num(r["risk_ci_high"] if risk else r["ci_high"]),
        )
        out.n, out.baseline = int(_num(r["n"]) or 0), _num(r["baseline"])
        out.bound_value, out.threshold = pick[1], pick[2]
    return out


def combine(statuses: list[str]) -> str:
    """FAIL if any fails, else NOT TESTED if any is not tested, else PASS (PASS needs at least one
    criterion that applies: NOT APPLICABLE ones, e.g. membership of a method that learns nothing, are left out)."""
    statuses = [s for s in statuses if s != NOT_APPLICABLE]
    if FAIL in statuses:
        return FAIL
    if NOT_TESTED in statuses or not statuses:
        return NOT_TESTED
    return PASS


#: Files named in a criterion's evidence and in a target's file summary on screen.
EVIDENCE_FILES = 20
SHOWN_FILES = 5


def file_summary(files: pd.DataFrame | None, label: str) -> dict[str, Any]:
    """``{recorded, counts, not_audited}`` of one target: whether the run recorded its released files,
    their count per status and every file not fully audited (``file``, ``key``, ``status``, ``reason``)."""
    if files is None:
        return {"recorded": False, "counts": {}, "not_audited": []}
    mine = files[files["target_label"].astype(str) == label].reindex(columns=FILE_COLUMNS)
    counts = {str(k): int(v) for k, v in mine["status"].astype(str).value_counts(sort=False).items()}
    bad = mine[mine["status"].astype(str) != "audited"]
    not_audited = [{k: "" if pd.isna(r[k]) else str(r[k]) for k in ("file", "key", "status", "reason")}
                   for _, r in bad.iterrows()]
    return {"recorded": True, "counts": counts, "not_audited": not_audited}


def _file_name(f: dict[str, Any]) -> str:
    return Path(f["file"]).name if f.get("file") else str(f.get("key", ""))


def _not_fully_audited(summary: dict[str, Any]) -> str:
    """Why no criterion of a target can pass ("" when every released file was audited)."""
    if not summary["recorded"]:
        return ("the run records no status of its released files (no files.csv: written by an older anonaudit): "
                "rerun the audit")
    bad = summary["not_audited"]
    if not bad:
        return ""
    first = ", ".join(f"{_file_name(f)} ({f['status']}{': ' + f['reason'] if f['reason'] else ''})" for f in bad[:3])
    return f"{len(bad)} released file(s) not fully audited: {first}{', ...' if len(bad) > 3 else ''} (see files.csv)"


def fail_closed(criteria: list[CriterionResult], summary: dict[str, Any]) -> None:
    """Turn every PASS of a target with files not fully audited into NOT TESTED (see the module doc)."""
    why = _not_fully_audited(summary)
    if not why:
        return
    for c in criteria:
        if c.status == PASS:
            c.status, c.reason = NOT_TESTED, f"{why}; on the audited files alone: {c.reason}"


def attach_evidence(criteria: list[CriterionResult], findings: pd.DataFrame, label: str) -> None:
    """Point every FAILed criterion to the findings that count toward its judged metric."""
    mine = findings[findings["target_label"].astype(str) == label]
    for c in criteria:
        if c.status != FAIL or not c.metric or mine.empty:
            continue
        counts = mine["metric"].astype(str).map(lambda m, want=c.metric: want in m.split(";")).astype(bool)
        hits = mine[(mine["attack"].astype(str) == c.component) & counts]
        if hits.empty:
            continue
        names = list(dict.fromkeys(hits["file"].where(hits["file"].astype(str) != "", hits["key"]).astype(str)))
        c.evidence = {"files": names[:EVIDENCE_FILES], "files_total": len(names), "findings": "findings.csv",
                      "count": int(len(hits))}


def certify(results: Results | str | Path, policy: Policy | str | Path, kind: str | None = None) -> Verdict:
    """The verdict of ``policy`` on every target of ``results`` (a :class:`Results` or a run folder).

    ``kind`` (``faces`` or ``plates``) selects the criteria that apply; by default it is read from
    the run (:func:`run_kind`). When the kind is unknown every criterion applies.
    """
    if not isinstance(results, Results):
        results = Results.load(results)
    policy = load_policy(policy)
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    kind = kind or run_kind(results)
    table = results.table
    labels = [lab for lab in dict.fromkeys(table["target_label"]) if isinstance(lab, str) and lab]
    if not labels:
        raise DataError(f"{results.output or 'results'}: no target in the results table: nothing to certify")
    criteria = policy.for_kind(kind)
    per_target = {label: [judge(c, table[table["target_label"] == label]) for c in criteria] for label in labels}
    files = {label: file_summary(results.files, label) for label in labels}
    for label, cs in per_target.items():
        fail_closed(cs, files[label])
        attach_evidence(cs, results.findings, label)
    targets = {label: combine([c.status for c in cs]) for label, cs in per_target.items()}
    return Verdict(
        policy, kind, per_target, targets, combine(list(targets.values())), str(results.output or ""), files=files
    )


def format_verdict(verdict: Verdict) -> str:
    """The verdict as printed by ``anonaudit certify``: per target, one line per criterion, then overall."""
    lines = [
        f"policy {verdict.policy.name} ({verdict.policy.source or 'in memory'}), data kind: {verdict.kind or 'unknown'}"
    ]
    for label, results in verdict.criteria.items():
        lines.append(f"\n{label}: {verdict.targets[label]}")
        lines += format_files(verdict.files.get(label))
        for c in results:
            lines.append(
                f"  {c.status:10s} {c.id} ({c.select} {c.comparison} {c.threshold_text}, {c.bound} bound): {c.reason}"
            )
            if c.evidence:
                e = c.evidence
                more = (
                    f" and {e['files_total'] - len(e['files'][:SHOWN_FILES])} more"
                    if e["files_total"] > SHOWN_FILES
                    else ""
                )
                lines.append(f"             evidence: {e['count']} finding(s) in {e['findings']}, in "
                             f"{', '.join(Path(f).name for f in e['files'][:SHOWN_FILES])}{more}")
    lines.append(f"\noverall: {verdict.overall}")
    return "\n".join(lines)


def format_files(summary: dict[str, Any] | None) -> list[str]:
    """Lines for one target's released files: the count per status, then the first files of each
    status other than audited (with the reason)."""
    if summary is None:
        return []
    if not summary["recorded"]:
        return ["  files: not recorded (no files.csv): rerun the audit"]
    counts = summary["counts"]
    lines = ["  files: " + (", ".join(f"{n} {status}" for status, n in counts.items()) or "none recorded")]
    for status in [s for s in counts if s != "audited"]:
        mine = [f for f in summary["not_audited"] if f["status"] == status]
        for f in mine[:SHOWN_FILES]:
            lines.append(f"    {status}: {_file_name(f)}" + (f" ({f['reason']})" if f["reason"] else ""))
        if len(mine) > SHOWN_FILES:
            lines.append(f"    {status}: ... and {len(mine) - SHOWN_FILES} more (see files.csv)")
    return lines


def write_verdict(verdict: Verdict, folder: str | Path) -> Path:
    """Write ``verdict.json`` into the run folder (atomically); returns its path."""
    path = Path(folder) / "verdict.json"
    write_json_atomic(path, verdict.to_dict())
    return path
