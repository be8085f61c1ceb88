"""The tidy results table: one row per (target, component, metric). Reports read only this."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import DataError
from .fileio import atomic_path, write_json_atomic
from .measurement import Measurement, as_measurements

if TYPE_CHECKING:
    from .attacks.base import AttackerModel

COLUMNS = [
    "target",
    "target_label",
    "params",
    "target_id",
    "kind",
    "component",
    "component_label",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "baseline",
    "original",
    "risk",
    "risk_ci_low",
    "risk_ci_high",
    "risk_kind",
    "higher_is_better",
    "standard",
    "reason",
    "status",
    "message",
    "seconds",
]

STATUSES = ("ok", "unavailable", "failed", "not_applicable")

#: Columns of ``RUN/files.csv`` (:attr:`Results.files`): one row per released file of each target.
FILE_COLUMNS = ["target_label", "target_id", "file", "key", "status", "reason"]

#: Columns of ``RUN/findings.csv`` (:attr:`Results.findings`): one row per finding in a released file.
#: ``metric`` lists the metrics the finding counts toward (``;``-separated); ``recovered`` is True
#: when ``detail`` holds what the attack recovered (text read, identity matched: ``--embed-examples``).
FINDING_COLUMNS = [
    "file",
    "target",
    "attack",
    "finding",
    "detail",
    "target_label",
    "target_id",
    "key",
    "metric",
    "recovered",
]

#: Columns of :meth:`Results.max_risk` (the headline table). ``attacker`` is the strongest attack's
#: kind by its declaration (:func:`attacker_model`): ``learned``, ``searching`` or ``classical``.
MAX_RISK_COLUMNS = [
    "target_label", "risk", "risk_ci_low", "risk_ci_high", "risk_kind", "exceeds_original", "component", "metric",
    "attacker", "value", "ci_low", "ci_high", "n", "original", "baseline", "reason",
]


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def row(**fields: Any) -> dict[str, Any]:
    """A results row with every column present (missing ones empty)."""
    out = dict.fromkeys(COLUMNS)
    unknown = set(fields) - set(out)
    if unknown:
        raise KeyError(f"unknown result columns {sorted(unknown)}")
    out.update({k: _clean(v) for k, v in fields.items()})
    return out


def measurement_rows(measurements: Measurement | Sequence[Measurement], base: dict[str, Any], kind: str, seconds: float,
                     notes: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per measurement of an attack (``kind="attack"``) or evaluator (``"evaluator"``) run.

    Attack rows carry the risk with its CI and kind (from release, original and baseline); the
    ``message`` holds the run's ``notes`` and the scalar details of the estimate (``Estimate.extra``).
    """
    rows = []
    for m in as_measurements(measurements):
        e = m.release
        risk = m.risk_estimate() if kind == "attack" else None
        details = [f"{k}={_short(v)}" for k, v in (e.extra or {}).items() if _is_scalar(v)]
        rows.append(row(
            **base, kind=kind, metric=m.metric, value=e.value, ci_low=e.ci_low, ci_high=e.ci_high, n=e.n,
            baseline=m.baseline, original=None if m.original is None else m.original.value,
            risk=None if risk is None else risk.value, risk_ci_low=None if risk is None else risk.ci_low,
            risk_ci_high=None if risk is None else risk.ci_high, risk_kind=None if risk is None else risk.label,
            higher_is_better=m.higher_is_better, standard=e.standard, reason=e.reason or m.description or e.method,
            status="ok", message="; ".join([*notes, *details]), seconds=seconds,
        ))
    return rows


def _short(v: Any) -> str:
    """Details as read in tables: floats to 4 significant digits (the value columns keep full precision)."""
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool, np.integer, np.floating))


def status_row(base: dict[str, Any], kind: str, status: str, message: str, seconds: float = 0.0) -> dict[str, Any]:
    return row(**base, kind=kind, metric="", status=status, message=message, seconds=seconds)


def write_csv_atomic(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` (without its index) as CSV to ``path`` atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def files_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """File statuses as far as a results table tells them (for results built without a files record).

    Each target's released files that could not be read (``kind=data, component=input, status=failed``
    rows with the target's label, message ``skipped PATH: problem``) are ``skipped``; the released
    files its ``release/unpaired_release_files`` row lists are ``unpaired``. The table does not name
    the audited files, so none are listed.
    """
    t = table.reindex(columns=COLUMNS)
    out = []
    labelled = t[t["target_label"].map(lambda v: isinstance(v, str) and bool(v))]
    skipped = labelled[
        (labelled["kind"] == "data") & (labelled["component"] == "input") & (labelled["status"] == "failed")
    ]
    for r in skipped.itertuples():
        path, _, problem = str(r.message).removeprefix("skipped ").partition(": ")
        out.append({"target_label": r.target_label, "target_id": r.target_id, "file": path, "key": Path(path).name,
                    "status": "skipped", "reason": problem})
    unpaired = labelled[(labelled["kind"] == "target") & (labelled["metric"] == "unpaired_release_files")]
    for r in unpaired.itertuples():
        names = [k for k in str(r.message or "").split(", ") if k and k != "nan"]
        count = int(_clean(r.value) or 0)
        names += [f"(one of {count - len(names)} more)"] * max(0, count - len(names))
        out += [{"target_label": r.target_label, "target_id": r.target_id, "file": "", "key": k, "status": "unpaired",
                 "reason": "released file without an original"} for k in names]
    return pd.DataFrame(out, columns=FILE_COLUMNS)


def _finite(v: Any) -> float:
    """``v`` as a float, ``-inf`` when missing (a CI bound that was not computed decides nothing)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if math.isnan(f) else f


def _no_risk_reason(rows: pd.DataFrame) -> str:
    """Why a target's rows hold no risk estimate, in words."""
    target = rows[(rows["kind"] == "target") & rows["status"].isin(["failed", "unavailable"])]
    if not target.empty:
        return f"target {target['status'].iloc[0]}: {target['message'].iloc[0]}"
    attacks = rows[rows["kind"] == "attack"]
    if attacks.empty:
        return "no attack was run on this target"
    ran = attacks[attacks["status"] == "ok"]
    if ran.empty:
        by = attacks.drop_duplicates("component")
        return (
            "every attack was unavailable, failed or not applicable ("
            + "; ".join(f"{c}: {s}" for c, s in zip(by["component"], by["status"]))
            + ")"
        )
    kinds = ran["risk_kind"].dropna().astype(str)
    why = sorted({k.removeprefix("none: ") for k in kinds if k.startswith("none")})
    return "no attack gave a risk estimate" + (f" ({'; '.join(why)})" if why else "")


def configured_params(manifest: dict, name: str) -> dict[str, Any] | None:
    """The parameters the run's manifest gives attack ``name`` (None when it lists the attack other
    than exactly once: a sweep's variants differ, and only the class declarations are common)."""
    entries = [a for a in manifest.get("attacks") or [] if isinstance(a, dict) and a.get("name") == name]
    return dict(entries[0].get("params") or {}) if len(entries) == 1 else None


def attacker_model(name: str, params: dict[str, Any] | None = None) -> AttackerModel | None:
    """The attacker model attack ``name`` declares (:meth:`~anonaudit.attacks.base.Attack.intruder`), built
    with ``params`` when given (parameter-dependent parts), else from its class declarations; None for
    an attack no longer installed (old results)."""
    from .attacks.base import Attack, AttackerModel
    from .registry import ATTACKS

    try:
        cls = ATTACKS.get(name)
    except Exception:  # noqa: BLE001 - an attack no longer installed still appears in old results
        return None
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        return None
    if params is not None:
        try:
            return ATTACKS.create(name, **params).intruder()
        except Exception:  # noqa: BLE001 - parameters of an older version: the class declarations still hold
            pass
    return AttackerModel(tuple(cls.attacker_holds), cls.attacker_trains, cls.attacker_searches)


def _read_csv(path: Path) -> pd.DataFrame | None:
    """A record CSV as text columns (file names stay as written), None when absent."""
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False)


class Results:
    """An audit's results: the tidy table, the output folder, the run's manifest, the status of every
    released file (:attr:`files`, ``RUN/files.csv``) and the per-file findings (:attr:`findings`,
    ``RUN/findings.csv``).

    Results built without ``files`` take the statuses the table tells (:func:`files_from_table`);
    results loaded from a run folder that has no ``files.csv`` (written by an older version) have
    ``files = None``: nothing records which released files were read, so no target of it can PASS.
    """

    def __init__(self, table: pd.DataFrame, output: str | Path | None = None, manifest: dict | None = None,
                 files: pd.DataFrame | None = None, findings: pd.DataFrame | None = None):
        self.table = table.reindex(columns=COLUMNS)
        self.output = Path(output) if output else None
        self.manifest = manifest or {}
        self.files: pd.DataFrame | None = (files_from_table(self.table) if files is None else files).reindex(
            columns=FILE_COLUMNS
        )
        self.findings = (pd.DataFrame() if findings is None else findings).reindex(columns=FINDING_COLUMNS)

    def __repr__(self) -> str:
        return f"Results({len(self.table)} rows, {self.table['target'].nunique()} targets, output={self.output})"

    @classmethod
    def load(cls, folder: str | Path) -> Results:
        folder = Path(folder)
        path = folder / "results.csv"
        if not path.is_file():
            raise DataError(f"{folder}: no results.csv (is this an audit output folder?)")
        table = pd.read_csv(path, keep_default_na=True)
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        files, findings = folder / "files.csv", folder / "findings.csv"
        results = cls(table, folder, manifest, _read_csv(files), _read_csv(findings))
        if not files.is_file():
            results.files = None  # an older run: which released files were read is not recorded
        return results

    def save(self, folder: str | Path | None = None) -> Path:
        folder = Path(folder or self.output or ".")
        folder.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(folder / "results.csv", self.table)
        records = [{k: _clean(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]
        write_json_atomic(folder / "results.json", records)
        write_json_atomic(folder / "manifest.json", self.manifest)
        if self.files is not None:
            write_csv_atomic(folder / "files.csv", self.files)
        write_csv_atomic(folder / "findings.csv", self.findings)
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
        """The headline: per target (every one, in order), its strongest attack metric by risk.

        Columns :data:`MAX_RISK_COLUMNS`. ``exceeds_original`` marks a release that leaks more than
        the originals (a relative risk whose 95% CI lower bound is above 1). ``attacker`` says whether the
        strongest attack learned, searched or is classical (its declared attacker model), so a reader sees
        when a learned or searching attacker set the headline. A target without any risk estimate keeps
        its row with an empty risk and ``reason`` saying why (target failed, every attack unavailable or
        failed, no attack configured, nothing measured).
        """
        t = self.table
        labels = [lab for lab in dict.fromkeys(t["target_label"]) if isinstance(lab, str) and lab]
        p = self.privacy()
        p = p[p["risk"].notna()]
        out = []
        for label in labels:
            mine = p[p["target_label"] == label]
            if mine.empty:
                out.append({"target_label": label, "reason": _no_risk_reason(t[t["target_label"] == label])})
                continue
            best = mine.assign(_hi=mine["risk_ci_high"].fillna(-np.inf)).sort_values(
                ["risk", "_hi"], ascending=False, kind="stable").iloc[0]
            model = attacker_model(best["component"], configured_params(self.manifest, best["component"]))
            out.append({**{c: best[c] for c in MAX_RISK_COLUMNS if c in best.index}, "reason": "",
                        "attacker": model.kind if model else "",
                        "exceeds_original": best["risk_kind"] == "relative" and _finite(best["risk_ci_low"]) > 1.0})
        return pd.DataFrame(out, columns=MAX_RISK_COLUMNS)

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
