"""The release certificate: the verdict plus a manifest of everything it rests on (``certificate.json``).

Content (``format: anonaudit-certificate/1``): ``verdict`` (as in ``verdict.json``), ``manifest``
with ``inputs`` (sha256 of every evaluation original and auxiliary image), ``released`` (per
target, sha256 of every released image), ``released_not_audited`` (per target, sha256, status and
reason of every released file the audit could not fully audit), ``weights`` (every model weight file the audit loaded),
``results_sha256`` (of ``results.csv``), ``files_sha256`` and ``findings_sha256`` (of ``files.csv``,
the status of every released file, and ``findings.csv``, the per-file findings), ``policy`` (name, source and sha256 of
its text),
``config``, ``seed``, ``versions`` (main packages), ``environment`` (what determinism depends on:
:func:`anonaudit.environment.environment`), ``lock_sha256`` (of the dependency lock the environment
was installed from, None outside a checkout), ``packages`` (every installed distribution), ``code`` (anonaudit version,
git commit and whether
the checkout had local changes), ``audit_started`` and ``certified`` dates. See
:mod:`anonaudit.provenance` for how the hashes are taken.

The verdict holds, per target, the count of released files per status and every file not fully
audited with the reason (``verdict.targets[].files``), and for each FAILed criterion its evidence
(``criteria[].evidence``: the first files whose findings count toward the judged metric, and the
number of such findings in ``findings.csv``).

Files hashed during the audit are hashed again when the certificate is written: a file that
changed since the audit makes :func:`write_certificate` refuse (rerun the audit); a file no longer
there is listed under ``missing_now``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..fileio import write_json_atomic
from ..provenance import code_version, sha256_file
from ..results import Results
from .certify import Verdict

FORMAT = "anonaudit-certificate/1"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _released(run: Path, table, part: str = "released") -> dict[str, Any]:
    """Per target label, the released-file hashes the audit recorded (None when it recorded none):
    ``part="released"`` the audited images, ``"not_audited"`` the files it could not fully audit."""
    out: dict[str, Any] = {}
    if "target_id" not in table:
        return out
    pairs = table[["target_label", "target_id"]].dropna().drop_duplicates("target_label")
    for label, target_id in zip(pairs["target_label"], pairs["target_id"]):
        data = _read_json(run / "provenance" / "released" / f"{target_id}.json")
        out[str(label)] = data.get(part) if isinstance(data, dict) else None
    return out


def _recheck(entries: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Re-hash the file-backed entries: ``(changed, missing)`` paths."""
    changed, missing = [], []
    for e in entries:
        if e.get("source") != "file" or not e.get("path"):
            continue
        path = Path(e["path"])
        if not path.is_file():
            missing.append(str(path))
        elif sha256_file(path) != e["sha256"]:
            changed.append(str(path))
    return changed, missing


def build_certificate(results: Results, verdict: Verdict) -> dict[str, Any]:
    """The certificate of ``verdict`` on the audit in ``results.output`` (see the module doc)."""
    if results.output is None:
        raise DataError("a certificate needs the audit's output folder (these results were never saved)")
    run = Path(results.output)
    manifest = results.manifest or {}
    inputs = _read_json(run / "provenance" / "inputs.json")
    if not isinstance(inputs, dict):
        raise DataError(f"{run}: no record of the audited files (provenance/inputs.json); rerun the audit with this "
                        "version of anonaudit to certify it")
    released = _released(run, results.table)
    unrecorded = sorted(label for label, files in released.items() if files is None and verdict.targets.get(label))
    every = list(inputs.get("evaluation") or []) + list(inputs.get("auxiliary") or [])
    not_audited = _released(run, results.table, "not_audited")
    for files in [*released.values(), *not_audited.values()]:
        every += files or []
    changed, missing = _recheck(every)
    if changed:
        raise DataError(f"{len(changed)} audited file(s) changed since the audit, e.g. {changed[:3]}: "
                        "the results no longer describe them; rerun the audit")
    csv = run / "results.csv"
    return {
        "format": FORMAT,
        "verdict": verdict.to_dict(),
        "manifest": {
            "run": str(run),
            "results_sha256": sha256_file(csv) if csv.is_file() else None,
            "files_sha256": _sha256_if_file(run / "files.csv"),
            "findings_sha256": _sha256_if_file(run / "findings.csv"),
            "policy": {k: verdict.policy.to_dict()[k] for k in ("name", "source", "sha256")},
            "inputs": {"evaluation": inputs.get("evaluation") or [], "auxiliary": inputs.get("auxiliary") or []},
            "released": released,
            "released_not_audited": not_audited,
            "released_not_recorded": unrecorded,
            "missing_now": missing,
            "weights": manifest.get("weights", []),
            "config": manifest.get("config"),
            "seed": manifest.get("seed"),
            "versions": manifest.get("versions", {}),
            "python": manifest.get("python"),
            "platform": manifest.get("platform"),
            "environment": manifest.get("environment"),  # what determinism depends on, lock_sha256 included
            "lock_sha256": (manifest.get("environment") or {}).get("lock_sha256"),
            "packages": manifest.get("packages", {}),  # every installed distribution at audit time
            "code": inputs.get("code") or {},
            "code_at_certification": code_version(),
            "audit_started": manifest.get("started"),
            "certified": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


def _sha256_if_file(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def _finite(obj: Any) -> Any:
    """JSON has no NaN/inf: NaN becomes null, infinities the strings "inf"/"-inf"."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def write_certificate(results: Results, verdict: Verdict) -> Path:
    """Write ``<run>/certificate.json`` atomically; returns its path."""
    cert = build_certificate(results, verdict)
    path = Path(results.output) / "certificate.json"
    write_json_atomic(path, _finite(cert))
    return path
