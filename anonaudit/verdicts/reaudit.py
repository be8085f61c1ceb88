"""Re-audit a certificate: rerun the certified audit from what ``certificate.json`` records and say
whether the same results and the same verdict come back (``anonaudit reaudit``).

Steps:

1. **Locate** the certificate (a ``certificate.json``, or a run folder holding one) and the certified
   results table (``results.csv`` beside it, else in the run folder the certificate names); the
   table must have the sha256 the certificate records.
2. **Re-hash** every original, auxiliary and released file and every model weight the certificate
   lists, and the policy text. A file that changed or is missing is named and the re-audit refused
   (:class:`Refused`, exit 4): results on other files would certify nothing. Weights are looked up at
   their recorded path, then at the same place under this environment's ``site-packages`` (another
   checkout's virtual environment). Files held in memory (generated data, an anonymizer's output) have
   no file to re-hash: their pixel hashes are compared after the rerun instead.
3. **Re-root** (``data_root``): when the data moved, every recorded path under the *recorded data
   root* (the deepest folder holding every data file and every path in the config, model weights
   aside) is read under ``data_root`` instead, at the same relative place. Relative paths are read
   from the current folder, as the audit read them.
4. **Rerun** the config the certificate records (its seed, the ``embed_examples`` setting of the
   certified run) into a fresh folder, never resuming the old one, and certify it with the same policy
   and data kind.
5. **Compare** the two tables row by row, matched on (target, kind, component, metric), ``seconds``
   ignored (:func:`compare_tables`):

   - rows that depend on training randomness (:func:`trained_rows`: every row of a target whose
     method is trainable, and the rows of the attacks in :data:`TRAINED_ATTACKS`, which fit a model
     during the audit) reproduce when each run's value lies inside the other run's 95% CI (and the
     risk likewise) and ``n`` is equal; such a row without a CI must be identical;
   - every other row must be identical: value, CI, n, baseline, original, risk and its CI equal to
     :data:`REL_TOL` (floating-point summation noise), the status the same.

   The verdicts must be the same: overall, per target and per criterion. The pixel hashes of
   in-memory originals must be the same, and those of in-memory releases of targets that learn
   nothing.

The outcome is REPRODUCED (exit 0) or DIFFERS (exit 1). Environment differences (``python``,
``platform``, package ``versions``, the ``environment`` record and the lock's sha256 where the
manifest has them, the code's version and commit, the model weights loaded) are reported either way
but do not decide it: they explain a difference, the numbers are the test. The comparison is written
to ``reaudit.json`` in the new run folder.
"""

from __future__ import annotations

import math
import os
import re
import site
import sysconfig
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import BARE_NAME_PARAMS, PATH_PARAMS, parse_config
from ..errors import AnonauditError, DataError
from ..fileio import write_json_atomic
from ..provenance import code_version, sha256_file
from ..registry import ANONYMIZERS
from ..results import COLUMNS, Results
from .certificate import _finite, _read_json, write_certificate
from .certify import Verdict, certify, write_verdict
from .policy import Policy, builtin_path, load_policy

REPRODUCED, DIFFERS = "REPRODUCED", "DIFFERS"
#: ``anonaudit reaudit`` exit statuses.
EXIT_REPRODUCED, EXIT_DIFFERS, EXIT_ERROR, EXIT_REFUSED = 0, 1, 3, 4
FORMAT = "anonaudit-reaudit/1"
#: Attacks that fit a model during the audit (a CNN or logistic regression, an MLP, shadow anonymizers).
TRAINED_ATTACKS = frozenset({"gender", "representation_gender", "real_fake_judges", "membership_lira"})
#: Relative tolerance of "identical" (summation-order noise in the last bits of a float).
REL_TOL = 1e-9
#: Numeric columns compared on deterministic rows.
EXACT_COLUMNS = ("value", "ci_low", "ci_high", "n", "baseline", "original", "risk", "risk_ci_low", "risk_ci_high")
#: Manifest keys that describe the environment (those absent from a manifest are skipped).
ENVIRONMENT_KEYS = ("python", "platform", "versions", "environment", "lock_sha256", "packages")
#: Rows of each kind shown on screen before "and N more".
SHOWN = 20


class Refused(AnonauditError):
    """The re-audit was refused: files the certificate rests on changed or are missing (``problems``)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} file(s) the certificate rests on changed or are missing: " + "; ".join(problems)
        )

    def __reduce__(self):  # rebuilt from the constructor's arguments
        return type(self), (self.problems,)


@dataclass
class Certified:
    """A certificate and what it certifies, as found on disk."""

    path: Path
    certificate: dict[str, Any]
    table: pd.DataFrame
    run: Path
    run_manifest: dict[str, Any]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.certificate["manifest"]


@dataclass
class RowDifference:
    """One row that did not come back: its key, the rule it was judged by, and both runs' values."""

    key: str
    rule: str
    why: str
    certified: dict[str, Any] = field(default_factory=dict)
    now: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reaudit:
    """The outcome of a re-audit (see the module doc)."""

    certificate: Path
    run: Path
    data_mapping: tuple[str, str] | None
    rows_compared: int
    trained_rows: int
    rows: list[RowDifference]
    verdicts: dict[str, str]
    verdict_differences: list[str]
    input_differences: list[str]
    environment: list[str]

    @property
    def outcome(self) -> str:
        return DIFFERS if self.rows or self.verdict_differences or self.input_differences else REPRODUCED

    @property
    def exit_code(self) -> int:
        return EXIT_REPRODUCED if self.outcome == REPRODUCED else EXIT_DIFFERS

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "outcome": self.outcome, "certificate": str(self.certificate), "run": str(self.run),
            "data_mapping": None if self.data_mapping is None else dict(zip(("recorded", "now"), self.data_mapping)),
            "verdicts": self.verdicts, "verdict_differences": self.verdict_differences,
            "rows_compared": self.rows_compared, "trained_rows": self.trained_rows,
            "rows": [asdict(r) for r in self.rows], "input_differences": self.input_differences,
            "environment_differences": self.environment,
            "rule": "deterministic rows identical (relative tolerance 1e-9); rows depending on training randomness: "
                    "each run's value inside the other's 95% CI, n equal; the same verdict; seconds ignored",
        }


# -- locating ------------------------------------------------------------------------------------
def load_certified(source: str | Path) -> Certified:
    """The certificate at ``source`` (a file, or a run folder holding ``certificate.json``) and the
    certified results table, checked against the sha256 the certificate records."""
    source = Path(source)
    path = source / "certificate.json" if source.is_dir() else source
    cert = _read_json(path)
    if (
        not isinstance(cert, dict)
        or not isinstance(cert.get("manifest"), dict)
        or not isinstance(cert.get("verdict"), dict)
    ):
        raise DataError(f"{path}: not a certificate (no readable certificate.json with a verdict and a manifest)")
    manifest = cert["manifest"]
    if not isinstance(manifest.get("config"), dict):
        raise DataError(f"{path}: the certificate records no audit config: nothing to rerun")
    want = manifest.get("results_sha256")
    places = [path.parent] + ([Path(manifest["run"])] if manifest.get("run") else [])
    run = next((p for p in places if (p / "results.csv").is_file()), None)
    if run is None:
        raise DataError(
            f"{path}: the certified results table is in none of "
            f"{[str(p / 'results.csv') for p in places]}: "
            "keep results.csv beside certificate.json to re-audit it"
        )
    if sha256_file(run / "results.csv") != want:
        raise Refused([(f"{run / 'results.csv'}: the certified results table changed (sha256 "
                       f"{sha256_file(run / 'results.csv')}, certified {want})")])
    manifest_json = _read_json(run / "manifest.json")
    return Certified(path, cert, pd.read_csv(run / "results.csv", keep_default_na=True), run,
                     manifest_json if isinstance(manifest_json, dict) else {})


# -- paths ---------------------------------------------------------------------------------------
def _config_paths(node: Any, top: bool = True) -> Iterable[tuple[dict, str]]:
    """``(mapping, key)`` of every path parameter in a config (its ``output`` aside)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                yield from _config_paths(v, False)
            elif (k in PATH_PARAMS and not (top and k == "output") and isinstance(v, str) and v
                  and not (k in BARE_NAME_PARAMS and "/" not in v and os.sep not in v)):
                yield node, k
    elif isinstance(node, list):
        for x in node:
            yield from _config_paths(x, False)


def _file_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file-backed entry the certificate hashed: originals, auxiliary images, released files."""
    inputs = manifest.get("inputs") or {}
    entries = list(inputs.get("evaluation") or []) + list(inputs.get("auxiliary") or [])
    for part in ("released", "released_not_audited"):
        for files in (manifest.get(part) or {}).values():
            entries += files or []
    return [e for e in entries if e.get("source") == "file" and e.get("path")]


def recorded_data_root(manifest: dict[str, Any]) -> Path | None:
    """The deepest folder holding every recorded data file and every path of the config (not its
    output, not model weights); None when the certificate records no path."""
    paths = [os.path.dirname(os.path.abspath(e["path"])) for e in _file_entries(manifest)]
    for node, k in _config_paths(manifest["config"]):  # a folder, or a file (a labels CSV, a checkpoint)
        path = os.path.abspath(node[k])
        paths.append(path if os.path.isdir(path) or not Path(path).suffix else os.path.dirname(path))
    return Path(os.path.commonpath(paths)) if paths else None


class PathMap:
    """Maps recorded paths under ``recorded`` onto ``now`` (identity without a mapping)."""

    def __init__(self, recorded: Path | None = None, now: Path | None = None):
        self.recorded, self.now = recorded, None if now is None else Path(now).resolve()

    def __call__(self, path: str) -> str:
        if self.recorded is None or self.now is None:
            return path
        absolute = Path(os.path.abspath(path))
        if absolute != self.recorded and self.recorded not in absolute.parents:
            return path
        return str(self.now / absolute.relative_to(self.recorded))

    def relabel(self, text: str) -> str:
        """``text`` (a target label, which names the paths of its parameters) with the recorded root
        read as the new one."""
        if self.recorded is None or self.now is None or not isinstance(text, str):
            return text
        return re.sub(re.escape(str(self.recorded)) + r"(?=[/),\s]|$)", lambda _: str(self.now), text)


def _site_packages() -> list[Path]:
    places = [sysconfig.get_paths().get("purelib", ""), *site.getsitepackages()]
    return [Path(p) for p in dict.fromkeys(places) if p]


def _weight_candidates(path: str, remap: PathMap) -> list[Path]:
    """Where a recorded weight file may be now: the re-rooted path, its recorded path, and the same
    place under this environment's site-packages."""
    out = [Path(remap(path)), Path(path)]
    parts = Path(path).parts
    if "site-packages" in parts:
        tail = parts[len(parts) - parts[::-1].index("site-packages"):]
        out += [p.joinpath(*tail) for p in _site_packages()]
    return list(dict.fromkeys(out))


def file_problems(manifest: dict[str, Any], remap: PathMap) -> list[str]:
    """Every recorded data file and weight that is missing or whose sha256 changed, in words."""
    problems = []
    for e in _file_entries(manifest):
        now = Path(remap(e["path"]))
        if not now.is_file():
            problems.append(f"{now}: missing" + (f" (recorded as {e['path']})" if str(now) != e["path"] else ""))
        elif sha256_file(now) != e["sha256"]:
            problems.append(f"{now}: changed (sha256 {sha256_file(now)}, certified {e['sha256']})")
    for w in manifest.get("weights") or []:
        where = [p for p in _weight_candidates(w["path"], remap) if p.is_file()]
        if not where:
            problems.append(f"{w['path']}: model weight missing")
        elif all(sha256_file(p) != w["sha256"] for p in where):
            problems.append(
                f"{where[0]}: model weight changed (sha256 {sha256_file(where[0])}, certified {w['sha256']})"
            )
    return problems


def certified_policy(manifest: dict[str, Any], remap: PathMap) -> Policy:
    """The policy whose text has the certified sha256: at its recorded source, re-rooted, or built in."""
    recorded = manifest.get("policy") or {}
    source, name, want = recorded.get("source") or "", recorded.get("name") or "", recorded.get("sha256")
    candidates = [Path(remap(source)), Path(source)] if source else []
    candidates += [
        p for p in (builtin_path(name), builtin_path(Path(source).stem) if source else None) if p is not None
    ]
    for path in dict.fromkeys(candidates):
        if path.is_file():
            policy = load_policy(path)
            if policy.sha256 == want:
                return policy
    raise Refused([(f"policy {name!r}: no text with the certified sha256 {want} at {source or 'its source'} "
                   "nor among the built-in policies (the policy changed or is missing)")])


# -- rerun ---------------------------------------------------------------------------------------
def rerun_config(manifest: dict[str, Any], remap: PathMap, output: Path, roots: list[str | Path]):
    """The certified config, its paths re-rooted and its output the new folder, parsed and confined
    to ``roots`` (plus the current folder and the new folder's parent)."""
    import copy

    raw = copy.deepcopy(manifest["config"])
    for node, k in _config_paths(raw):
        node[k] = remap(node[k])
    raw["output"] = str(output)
    if manifest.get("seed") is not None:
        raw["seed"] = manifest["seed"]
    return parse_config(raw, roots=[*roots, output.parent])


def default_output(certified: Certified) -> Path:
    """``<run>-reaudit-<UTC timestamp>`` beside the certified run folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return certified.run.parent / f"{certified.run.name}-reaudit-{stamp}"


def _fresh(output: Path) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise DataError(f"{output}: the re-audit's output folder must be new or empty (a re-audit never resumes)")


# -- comparing -----------------------------------------------------------------------------------
def _keyed(table: pd.DataFrame) -> pd.DataFrame:
    """The table indexed by ``target / kind / component / metric`` (a repeat numbered ``#2``, ...)."""
    t = table.reset_index(drop=True)
    parts = [t[c].fillna("").astype(str) for c in ("target_label", "kind", "component_label", "metric")]
    key = parts[0] + " | " + parts[1] + " | " + parts[2] + "/" + parts[3]
    repeat = key.groupby(key).cumcount()
    return t.set_index(key + repeat.map(lambda i: f" #{i + 1}" if i else ""))


def trained_rows(table: pd.DataFrame) -> pd.Series:
    """Per row, whether it depends on training randomness (see the module doc)."""

    def trainable(name: Any) -> bool:
        try:
            return bool(getattr(ANONYMIZERS.get(str(name)), "trainable", False))
        except AnonauditError:  # a target this installation does not know
            return False

    by_target = {name: trainable(name) for name in table["target"].dropna().unique()}
    return table["target"].map(by_target).fillna(False).astype(bool) | table["component"].isin(TRAINED_ATTACKS)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _same(a: Any, b: Any) -> bool:
    x, y = _num(a), _num(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-12)


def _inside(v: float, lo: float, hi: float) -> bool:
    return lo - abs(lo) * REL_TOL <= v <= hi + abs(hi) * REL_TOL


def _within_ci(old: pd.Series, new: pd.Series, value: str, low: str, high: str) -> str:
    """Why ``value`` of a trained row did not come back within the CIs ("" when it did)."""
    a, b = _num(old[value]), _num(new[value])
    if math.isnan(a) or math.isnan(b) or any(math.isnan(_num(r[c])) for r in (old, new) for c in (low, high)):
        return "" if _same(a, b) else f"{value} {a:.6g} -> {b:.6g} (no 95% CI: must be identical)"
    if not _inside(b, _num(old[low]), _num(old[high])):
        return f"{value} {b:.6g} outside the certified 95% CI [{_num(old[low]):.6g}, {_num(old[high]):.6g}]"
    if not _inside(a, _num(new[low]), _num(new[high])):
        return f"certified {value} {a:.6g} outside the new 95% CI [{_num(new[low]):.6g}, {_num(new[high]):.6g}]"
    return ""


def _row_problem(old: pd.Series, new: pd.Series, trained: bool) -> str:
    """Why one matched row differs ("" when it reproduced)."""
    if str(old["status"]) != str(new["status"]):
        return f"status {old['status']} -> {new['status']}"
    if trained:
        if not _same(old["n"], new["n"]):
            return f"n {_num(old['n']):.6g} -> {_num(new['n']):.6g}"
        return (_within_ci(old, new, "value", "ci_low", "ci_high")
                or _within_ci(old, new, "risk", "risk_ci_low", "risk_ci_high"))
    changed = [c for c in EXACT_COLUMNS if not _same(old[c], new[c])]
    return "; ".join(f"{c} {_num(old[c]):.10g} -> {_num(new[c]):.10g}" for c in changed)


def _shown(r: pd.Series | None) -> dict[str, Any]:
    if r is None:
        return {}
    return {c: (None if pd.isna(r[c]) else r[c].item() if hasattr(r[c], "item") else r[c])
            for c in ("status", "value", "ci_low", "ci_high", "n", "risk", "risk_ci_low", "risk_ci_high")}


def compare_tables(certified: pd.DataFrame, now: pd.DataFrame) -> tuple[list[RowDifference], int, int]:
    """The rows that did not come back (see the module doc), the number of rows compared and how many
    of them depend on training randomness."""
    old, new = _keyed(certified.reindex(columns=COLUMNS)), _keyed(now.reindex(columns=COLUMNS))
    flags = trained_rows(old.reset_index(drop=True)).set_axis(old.index)
    out = []
    for key in old.index:
        rule = "within CI" if flags[key] else "identical"
        if key not in new.index:
            out.append(RowDifference(key, rule, "missing from the new results", _shown(old.loc[key])))
        elif why := _row_problem(old.loc[key], new.loc[key], bool(flags[key])):
            out.append(RowDifference(key, rule, why, _shown(old.loc[key]), _shown(new.loc[key])))
    out += [RowDifference(key, "identical", "not in the certified results", {}, _shown(new.loc[key]))
            for key in new.index if key not in old.index]
    return out, len(old), int(flags.sum())


def verdict_differences(certified: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Where the verdicts differ: overall, per target, per criterion."""
    out = (
        [f"overall {certified.get('overall')} -> {now.get('overall')}"]
        if certified.get("overall") != now.get("overall")
        else []
    )
    old = {t["target_label"]: t for t in certified.get("targets") or []}
    new = {t["target_label"]: t for t in now.get("targets") or []}
    for label in dict.fromkeys([*old, *new]):
        a, b = old.get(label), new.get(label)
        if a is None or b is None:
            out.append(f"{label}: {'only in the new run' if a is None else 'missing from the new run'}")
            continue
        if a.get("verdict") != b.get("verdict"):
            out.append(f"{label}: {a.get('verdict')} -> {b.get('verdict')}")
        crit_a = {c["id"]: c.get("status") for c in a.get("criteria") or []}
        crit_b = {c["id"]: c.get("status") for c in b.get("criteria") or []}
        out += [f"{label} / {cid}: {crit_a.get(cid)} -> {crit_b.get(cid)}"
                for cid in dict.fromkeys([*crit_a, *crit_b]) if crit_a.get(cid) != crit_b.get(cid)]
    return out


def _pixel_hashes(entries: Iterable[dict[str, Any]]) -> dict[str, str]:
    return {str(e.get("key")): e.get("sha256") for e in entries if e.get("source") == "pixels"}


def input_differences(certified: dict[str, Any], now: dict[str, Any], trainable: set[str]) -> list[str]:
    """In-memory images whose pixels differ between the runs: originals, auxiliary images, and the
    releases of targets that learn nothing (``trainable``: labels of targets that learn)."""
    parts = [(f"inputs.{p}", (certified.get("inputs") or {}).get(p) or [], (now.get("inputs") or {}).get(p) or [])
             for p in ("evaluation", "auxiliary")]
    parts += [(f"released[{label}]", files or [], (now.get("released") or {}).get(label) or [])
              for label, files in (certified.get("released") or {}).items() if label not in trainable]
    out = []
    for what, old, new in parts:
        a, b = _pixel_hashes(old), _pixel_hashes(new)
        differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if differ:
            out.append(f"{what}: {len(differ)} image(s) with other pixels, e.g. {', '.join(differ[:5])}")
    return out


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def dict_differences(certified: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: certified -> now`` for every (dotted) key whose value differs; absent keys read "absent"."""
    a, b = _flat(certified), _flat(now)
    return [f"{k}: {a.get(k, 'absent')} (certified) -> {b.get(k, 'absent')} (now)"
            for k in sorted(a.keys() | b.keys()) if a.get(k, "absent") != b.get(k, "absent")]


def environment_differences(certified: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the certified run's environment and this one's (see the module doc)."""
    keys = [k for k in ENVIRONMENT_KEYS if k in certified or k in now]
    out = dict_differences({k: certified.get(k) for k in keys}, {k: now.get(k) for k in keys})
    code = {k: v for k, v in (certified.get("code") or {}).items() if k in ("anonaudit", "git_commit", "git_dirty")}
    out += dict_differences({"code": code}, {"code": {k: v for k, v in code_version().items() if k in code}})
    old = {w["sha256"]: w["path"] for w in certified.get("weights") or []}
    new = {w["sha256"]: w["path"] for w in now.get("weights") or []}
    out += [f"weights: {old[s]} (certified) not loaded now" for s in old.keys() - new.keys()]
    out += [f"weights: {new[s]} loaded now, not in the certificate" for s in new.keys() - old.keys()]
    return out


# -- the whole re-audit --------------------------------------------------------------------------
def prepare(source: str | Path, data_root: str | Path | None = None) -> tuple[Certified, PathMap, Policy]:
    """Load the certificate and check every file it rests on; raise :class:`Refused` naming those that
    changed or are missing."""
    certified = load_certified(source)
    manifest = certified.manifest
    remap = PathMap(recorded_data_root(manifest), data_root) if data_root is not None else PathMap()
    if data_root is not None and remap.recorded is None:
        raise DataError(f"{certified.path}: the certificate records no data path to re-root onto {data_root}")
    problems = file_problems(manifest, remap)
    try:
        policy = certified_policy(manifest, remap)
    except Refused as exc:
        problems += exc.problems
    if problems:
        raise Refused(problems)
    return certified, remap, policy


def reaudit(source: str | Path, output: str | Path | None = None, data_root: str | Path | None = None,
            roots: list[str | Path] | None = None, show_progress: bool = False) -> Reaudit:
    """Re-audit the certificate at ``source`` (see the module doc): rerun into ``output`` (default
    :func:`default_output`), certify, compare and write ``reaudit.json``. ``data_root`` re-roots the
    recorded data; ``roots`` are folders the config may read besides the current one and ``data_root``."""
    from ..audit import audit_from_config

    certified, remap, policy = prepare(source, data_root)
    out = Path(output).resolve() if output else default_output(certified).resolve()
    _fresh(out)
    config = rerun_config(certified.manifest, remap, out, [*(roots or []), *([data_root] if data_root else [])])
    audit = audit_from_config(config, show_progress=show_progress)
    audit.embed_examples = bool(certified.run_manifest.get("embed_examples", False))
    results = audit.run(out, resume=False, show_progress=show_progress)
    verdict = certify(results, policy, certified.certificate["verdict"].get("kind"))
    write_verdict(verdict, out)
    outcome = compare(certified, remap, results, verdict, _read_json(write_certificate(results, verdict)))
    write_json_atomic(out / "reaudit.json", _finite(outcome.to_dict()))
    return outcome


def compare(
    certified: Certified, remap: PathMap, results: Results, verdict: Verdict, new_certificate: dict[str, Any]
) -> Reaudit:
    """The certified run against its rerun (``results``, ``verdict`` and ``new_certificate``), the
    certified target labels read with the new data root."""
    old = certified.certificate["verdict"]
    old = {
        **old,
        "targets": [{**t, "target_label": remap.relabel(t["target_label"])} for t in old.get("targets") or []],
    }
    released = {remap.relabel(k): v for k, v in (certified.manifest.get("released") or {}).items()}
    table = results.table
    rows, compared, trained = compare_tables(
        certified.table.assign(target_label=certified.table["target_label"].map(remap.relabel)), table)
    trainable = set(table.loc[trained_rows(table) & (table["kind"] == "target"), "target_label"].dropna())
    return Reaudit(
        certificate=certified.path,
        run=Path(results.output),
        data_mapping=None if remap.now is None else (str(remap.recorded), str(remap.now)),
        rows_compared=compared,
        trained_rows=trained,
        rows=rows,
        verdicts={"certified": old.get("overall"), "now": verdict.overall},
        verdict_differences=verdict_differences(old, verdict.to_dict()),
        input_differences=input_differences(
            {**certified.manifest, "released": released}, new_certificate["manifest"], trainable
        ),
        environment=environment_differences(certified.manifest, {**results.manifest, **new_certificate["manifest"]}),
    )


def format_reaudit(r: Reaudit) -> str:
    """The re-audit as printed by ``anonaudit reaudit``: the differences, the verdicts, then the outcome."""
    lines = [f"certificate: {r.certificate}", f"re-audit:    {r.run}"]
    if r.data_mapping:
        lines.append(f"data:        {r.data_mapping[0]} read as {r.data_mapping[1]}")
    lines.append(
        f"rows compared: {r.rows_compared} ({r.trained_rows} depend on training randomness: within the "
        "95% CI; "
        "the others identical)"
    )
    if r.rows:
        lines.append(f"\n{len(r.rows)} row(s) differ:")
        for d in r.rows[:SHOWN]:
            lines.append(f"  {d.key} [{d.rule}]: {d.why}")
            for side, values in (("certified", d.certified), ("now", d.now)):
                if values:
                    lines.append(f"      {side:9s} {_value_text(values)}")
        if len(r.rows) > SHOWN:
            lines.append(f"  ... and {len(r.rows) - SHOWN} more (reaudit.json)")
    for title, items in (("verdicts differ", r.verdict_differences), ("in-memory images differ", r.input_differences),
                         ("environment differences (reported, not judged)", r.environment)):
        if items:
            lines += [f"\n{title}:", *(f"  {x}" for x in items)]
    lines += [f"\nverdict: certified {r.verdicts['certified']}, now {r.verdicts['now']}",
              f"reaudit: {r.run / 'reaudit.json'}", r.outcome]
    return "\n".join(lines)


def _value_text(v: dict[str, Any]) -> str:
    def num(x: Any) -> str:
        return (
            "-"
            if x is None or (isinstance(x, float) and math.isnan(x))
            else f"{x:.6g}"
            if isinstance(x, float)
            else str(x)
        )

    return (
        f"{v.get('status')}: {num(v.get('value'))} [{num(v.get('ci_low'))}, {num(v.get('ci_high'))}] "
        f"n={num(v.get('n'))}"
    )
