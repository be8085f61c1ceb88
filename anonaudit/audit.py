"""The audit runner: data x targets x (attacks + evaluators) -> the tidy results table.

Every (target, component) pair is one *unit* whose rows are written atomically to
``<output>/units/<target>/<component>.json`` as soon as it finishes, so an interrupted audit
resumes where it stopped and a failing component never loses other units' results. Its per-file
findings go to ``<output>/units/<target>/records/<component>.findings.json`` and the status of each
of the target's released files to ``records/files.json``; a run writes them all to ``findings.csv``
and ``files.csv``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import random
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .anonymizers.base import Anonymizer
from .anonymizers.whitebox import missing
from .attacks.base import NEEDS, Attack, FileFinding, unknown_needs
from .data.imageset import ImageSet, ImageStore, Record, Release, ReleasedFile
from .data.io import IMAGE_SUFFIXES, write_image
from .environment import claim_environment, environment, installed_packages
from .errors import AnonauditError, AuditError, DataError, ImageReadError, ModelUnavailableError
from .evaluators.base import Evaluator
from .executors import Executor, LocalExecutor, per_image
from .fileio import write_json_atomic
from .memo import RUN_CACHE_NAME, run_cache
from .params import clone
from .progress import finished, progress, reused, silenced
from .provenance import record_inputs, record_release, record_weight_loads, weights_used
from .registry import ANONYMIZERS, ATTACKS, DATASETS, EVALUATORS
from .results import FILE_COLUMNS, FINDING_COLUMNS, Results, measurement_rows, row, status_row


def slug(text: str, limit: int = 48) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s[:limit] or "x"


def component_id(name: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps([name, params], sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{slug(name)}-{digest}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global RNG that third-party code draws from
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # torch is optional for plate-only audits
        pass


def drop_unreadable(images: ImageSet, on_error: str, show_progress: bool
                    ) -> tuple[ImageSet, list[dict[str, Any]], list[tuple[Record, str]]]:
    """Decode every file-backed image once; unreadable ones raise or are dropped and recorded.

    Returns the readable images, a results row per dropped file and the dropped records with the problem.
    """
    if images.in_memory:
        return images, [], []
    keep, rows, dropped = [], [], []
    for i in progress(range(len(images)), desc=f"check {images.name or 'images'}", disable=not show_progress):
        try:
            images[i]
            keep.append(i)
        except ImageReadError as exc:
            if on_error == "raise":
                raise
            rows.append(row(target="", kind="data", component="input", metric="", status="failed",
                            message=f"skipped {exc.path}: {exc.problem}"))
            dropped.append((images.record(i), exc.problem))
    return (images if len(keep) == len(images) else images.subset(keep)), rows, dropped


def released_files(release: Release, dropped: list[tuple[Record, str]], paths: dict[str, Any],
                   others: dict[str, Any]) -> list[ReleasedFile]:
    """Every released file of a target with its status: the pairs and the auxiliary people's files
    audited, the ``dropped`` ones skipped (the decode error as reason), those without an original
    unpaired (``paths``: released key -> file, for the files the release lists by their own name), and
    ``others`` (key -> file: files of a type no reader takes) skipped."""

    def where(r: Record) -> str:
        return "" if r.path is None else str(r.path)

    files = [ReleasedFile(r.key, where(r), "audited") for r in release.anonymized.records]
    if release.auxiliary is not None:
        files += [ReleasedFile(r.key, where(r), "audited") for r in release.auxiliary.records]
    files += [ReleasedFile(r.key, where(r), "skipped", problem) for r, problem in dropped]
    files += [ReleasedFile(k, str(paths.get(k) or ""), "unpaired", "released file without an original")
              for k in release.unpaired["extra"]]
    files += [ReleasedFile(k, str(p), "skipped", f"not an image file anonaudit reads ({', '.join(IMAGE_SUFFIXES)})")
              for k, p in others.items()]
    return files


@dataclass
class _Unit:
    target_id: str
    component_id: str
    base: dict[str, Any]


@dataclass
class _Outcome:
    """A target's results rows, the status of each of its released files and the findings in them."""

    rows: list[dict]
    files: list[dict]
    findings: list[dict]


class Audit:
    """Run attacks and evaluators against every target on one data set.

    ``auxiliary`` is the intruder's own data; when not given, ``aux_fraction`` of ``data`` is split
    off by seed (identity-disjoint when the images carry identities) and never used as evaluation data.
    ``executor`` runs the per-image work (anonymization, evaluators' scoring, cached model calls): in
    this process by default, on a Ray cluster with :class:`~anonaudit.executors.RayExecutor`; the
    table is the same. Every released file gets a status (``RUN/files.csv``) and every attack's
    per-file findings are kept (``RUN/findings.csv``); with ``embed_examples`` a finding's detail holds
    what the attack recovered (the plate text read, the identity matched), otherwise only the fact.
    """

    def __init__(
        self,
        data: ImageSet,
        targets: Sequence[Anonymizer],
        attacks: Sequence[Attack] = (),
        evaluators: Sequence[Evaluator] = (),
        *,
        auxiliary: ImageSet | None = None,
        aux_fraction: float = 0.2,
        aux_by: str | None = None,
        seed: int = 0,
        on_error: str = "skip",
        batch_size: int = 32,
        name: str = "audit",
        config: dict[str, Any] | None = None,
        examples: int = 4,
        executor: Executor | None = None,
        embed_examples: bool = False,
    ):
        if on_error not in ("skip", "raise"):
            raise ValueError("on_error must be 'skip' or 'raise'")
        if not targets:
            raise ValueError("an audit needs at least one target")
        self.data = data
        self.targets = list(targets)
        self.attacks = list(attacks)
        self.evaluators = list(evaluators)
        self.auxiliary = auxiliary
        self.aux_fraction = aux_fraction
        self.aux_by = aux_by
        self.seed = seed
        self.on_error = on_error
        self.batch_size = batch_size
        self.name = name
        self.config = config or {}
        self.examples = examples
        self.executor = executor or LocalExecutor()  # where per-image work runs (anonaudit.executors)
        self.embed_examples = embed_examples  # findings.csv holds the texts read and identities matched

    # -- data -----------------------------------------------------------------------------------
    def split(self) -> tuple[ImageSet | None, ImageSet]:
        """``(auxiliary, evaluation)`` sets."""
        if self.auxiliary is not None or self.aux_fraction <= 0 or len(self.data) < 10:
            return self.auxiliary, self.data
        by = self.aux_by
        if by is None and self.data.has_labels("identity"):
            by = "identity"
        aux, evaluation = self.data.split(self.aux_fraction, seed=self.seed, by=by)
        return aux, evaluation

    # -- running --------------------------------------------------------------------------------
    def run(self, output: str | Path | None = None, resume: bool = True, show_progress: bool = True) -> Results:
        """Run every unit (skipping finished ones when ``resume``) and return the results.

        ``show_progress=False`` silences every progress bar of the run, the components' own too.
        Model outputs (OCR readings, detections, embeddings) are cached in ``<output>/cache.sqlite``
        (:mod:`anonaudit.memo`), so a rerun computes only what it does not have yet."""
        out = Path(output) if output else None
        with contextlib.nullcontext() if show_progress else silenced(), run_cache(out and out / RUN_CACHE_NAME), \
                self.executor.running():
            return self._run(out, resume, show_progress)

    def _run(self, out: Path | None, resume: bool, show_progress: bool) -> Results:
        started = time.time()
        record_weight_loads()
        if out is not None:
            self._claim_output(out, resume)
        aux, evaluation = self.split()
        evaluation, rows, _ = drop_unreadable(evaluation, self.on_error, show_progress)
        if aux is not None:
            aux, aux_rows, _ = drop_unreadable(aux, self.on_error, show_progress)
            rows += aux_rows
        if out is not None:
            record_inputs(out, evaluation, aux)  # sha256 of what is audited, for the certificate
        files: list[dict] = []
        findings: list[dict] = []
        for target in progress(self.targets, desc="targets", disable=not show_progress or len(self.targets) < 2):
            with tempfile.TemporaryDirectory(prefix=".release-", dir=out) as folder:  # streamed releases (_anonymize)
                outcome = self._run_target(target, aux, evaluation, out, resume, show_progress, Path(folder))
            rows += outcome.rows
            files += outcome.files
            findings += outcome.findings
        table = pd.DataFrame(rows)
        manifest = self._manifest(started, aux, evaluation)
        results = Results(table, out, manifest, pd.DataFrame(files, columns=FILE_COLUMNS),
                          pd.DataFrame(findings, columns=FINDING_COLUMNS))
        if out is not None:
            results.save(out)
        return results

    def fingerprint(self) -> dict[str, Any]:
        """What stored units depend on besides their own target and component.

        Data set name, size, every record (keys and labels), the pixels of in-memory sets, the
        auxiliary data and split, and the seed. Resuming into a folder whose units were computed
        for a different fingerprint is refused, so stale results are never mixed in.
        """

        def digest(images: ImageSet | None) -> str | None:
            if images is None:
                return None
            h = hashlib.sha256()
            for i, r in enumerate(images.records):
                boxes = [[b.x, b.y, b.w, b.h, b.label] for b in r.boxes]
                h.update(
                    json.dumps([r.key, r.identity, r.text, boxes, r.attributes], sort_keys=True, default=str).encode()
                )
                if images.in_memory:
                    h.update(images.hash(i).encode())
            return h.hexdigest()

        return {
            "data": self.data.name, "n": len(self.data), "data_sha256": digest(self.data),
            "auxiliary_sha256": digest(self.auxiliary), "aux_fraction": self.aux_fraction, "aux_by": self.aux_by,
            "seed": self.seed,
        }

    def _claim_output(self, out: Path, resume: bool) -> None:
        """Record this audit's fingerprint in ``out``; refuse to resume another audit's units."""
        units = out / "units"
        path = units / "fingerprint.json"
        current = json.loads(json.dumps(self.fingerprint(), default=str))
        if path.is_file():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                stored = None
            if stored != current:
                if resume:
                    differ = sorted(k for k in current if not isinstance(stored, dict) or stored.get(k) != current[k])
                    raise AuditError(
                        f"{out} holds results of a different audit (differs in: {', '.join(differ)}); resuming "
                        "would mix stale results in. Choose another output folder, or rerun without resume "
                        "(--no-resume) to recompute and replace them"
                    )
                shutil.rmtree(units)  # another audit's units: replaced, never mixed with this one's
        write_json_atomic(path, current)
        claim_environment(units, environment(), resume, f"run {out}")  # resumed under another: warns

    def _unit_path(self, out: Path | None, unit: _Unit) -> Path | None:
        return None if out is None else out / "units" / unit.target_id / f"{unit.component_id}.json"

    def _run_target(
        self, target: Anonymizer, aux, evaluation: ImageSet, out, resume, show_progress, folder: Path
    ) -> _Outcome:
        label = target.label()
        target_id = component_id(target.name, target.get_params())
        base = {"target": target.name, "target_label": label, "params": json.dumps(target.get_params(), default=str),
                "target_id": target_id}
        units = [(c, "attack") for c in self.attacks] + [(c, "evaluator") for c in self.evaluators]
        order: list[_Unit] = []
        done: dict[str, list[dict]] = {}
        found: dict[str, list[dict]] = {}
        pending = []
        for comp, kind in units:
            unit = _Unit(target_id, f"{kind}-{component_id(comp.name, comp.get_params())}",
                         {**base, "component": comp.name, "component_label": comp.label()})
            order.append(unit)
            path = self._unit_path(out, unit)
            cached = _finished_rows(path) if resume else None
            cached_findings = _finished_findings(path, self.embed_examples) if cached is not None else None
            if cached is None or cached_findings is None:
                pending.append((comp, kind, unit))
            else:
                done[unit.component_id], found[unit.component_id] = cached, cached_findings
        reused(label, out, [u.base["component_label"] for u in order if u.component_id in done])

        def outcome(
            info: list[dict], files: list[dict]
        ) -> _Outcome:  # units in declaration order, however many were resumed
            return _Outcome(info + [r for u in order if u.component_id in done for r in done[u.component_id]], files,
                            [f for u in order if u.component_id in found for f in found[u.component_id]])

        info_path = None if out is None else out / "units" / target_id / "release.json"
        files_path = None if out is None else out / "units" / target_id / "records" / "files.json"
        cached_info = _read_rows(info_path) if not pending else None
        cached_files = _read_rows(files_path) if cached_info is not None else None
        if cached_info is not None and cached_files is not None:
            return outcome(cached_info, cached_files)

        seed_everything(self._unit_seed(target_id))
        t0 = time.time()
        target = clone(target)  # a fresh, unfitted copy: fitting never changes the caller's object
        try:
            if target.trainable:
                target.fit(aux)
            # A ready-made release also holds the auxiliary people's files: paired, not extra.
            anonymized, released_aux = self._anonymize(target, evaluation, aux, folder, show_progress)
            anonymized, bad, dropped = drop_unreadable(anonymized, self.on_error, show_progress)
            paths = {r.key: r.path for r in anonymized.records}
            if released_aux is not None:
                released_aux, bad_aux, dropped_aux = drop_unreadable(released_aux, self.on_error, show_progress)
                bad, dropped = bad + bad_aux, dropped + dropped_aux
            release = Release(evaluation, anonymized, name=target.name, params=target.get_params(), on_mismatch="drop",
                              degradation=target.degradation(), auxiliary=released_aux, anonymizer=target,
                              training_keys=getattr(target, "training_keys_", None),
                              sources=[s for s in (evaluation, aux) if s is not None])
            unpaired = getattr(target, "unpaired_", None)  # e.g. files of an external release without an original
            if isinstance(unpaired, dict):
                for side in ("missing", "extra"):
                    release.unpaired[side] = sorted({*release.unpaired[side], *unpaired.get(side, ())})
            release.files = released_files(
                release,
                dropped,
                {**paths, **(getattr(target, "released_files_", None) or {})},
                getattr(target, "other_files_", None) or {},
            )
        except ModelUnavailableError as exc:
            return outcome([status_row({**base, "component": target.name}, "target", "unavailable", str(exc))], [])
        except Exception as exc:  # recorded, or re-raised with on_error=raise
            if self.on_error == "raise":
                raise AuditError(f"target {label} failed: {exc}") from exc
            return outcome(
                [status_row({**base, "component": target.name}, "target", "failed", _describe(exc), time.time() - t0)],
                [],
            )
        info = self._release_rows(release, base, time.time() - t0) + [{**b, **base} for b in bad]
        files = [{"target_label": label, "target_id": target_id, "file": f.file, "key": f.key, "status": f.status,
                  "reason": f.reason} for f in release.files]
        if info_path is not None:
            write_json_atomic(files_path, files)
            write_json_atomic(info_path, info)
            record_release(out, target_id, release)
            self._save_examples(release, out / "examples" / target_id)
        for comp, kind, unit in pending:
            t_unit = time.time()
            rows, findings = self._run_unit(comp, kind, unit, release, aux, show_progress)
            finished(f"{label} / {unit.base['component_label']}", time.time() - t_unit,
                     next((r["status"] for r in rows if r.get("status") != "ok"), "ok"))
            path = self._unit_path(out, unit)
            if path is not None:  # findings first: a unit whose rows are stored has its findings stored too
                write_json_atomic(_findings_path(path), {"embed_examples": self.embed_examples, "findings": findings})
                write_json_atomic(path, rows)
            done[unit.component_id], found[unit.component_id] = rows, findings
        return outcome(info, files)

    def _anonymize(self, target: Anonymizer, evaluation: ImageSet, aux, folder: Path,
                   show_progress: bool) -> tuple[ImageSet, ImageSet | None]:
        """``target``'s release of ``evaluation`` (and of ``aux``, when it has its own), made by the executor.

        A set read from files, with a per-image target run in this process, is anonymized in batches
        into an :class:`ImageStore` in ``folder`` (removed by the caller after the target's units):
        the same images, read back when a component asks, so neither the originals nor the release
        are ever all in memory and memory stays flat however large the set.
        """
        if evaluation.in_memory or not per_image(target) or type(self.executor).anonymize is not Executor.anonymize:
            return self.executor.anonymize(target, evaluation, aux, show_progress=show_progress)
        store, records, n = ImageStore(folder), [], len(evaluation)
        starts = range(0, n, self.batch_size)
        for start in progress(starts, desc=f"anonymize {target.label()}", disable=not show_progress):
            part = target.anonymize(
                evaluation.subset(range(start, min(start + self.batch_size, n))), show_progress=False
            )
            for i in range(len(part)):
                store.put(part.records[i].key, part[i])
            records += part.records
        return ImageSet(records, name=f"{evaluation.name}:{target.label()}", store=store), None

    def _run_unit(
        self, comp, kind: str, unit: _Unit, release: Release, aux, show_progress: bool
    ) -> tuple[list[dict], list[dict]]:
        """The unit's results rows and its findings rows (:data:`~anonaudit.results.FINDING_COLUMNS`)."""
        seed_everything(self._unit_seed(unit.target_id + unit.component_id))
        t0 = time.time()
        comp = clone(comp)  # each unit fits its own copy: no state carries over between targets
        try:
            if kind == "attack":
                if reason := comp.not_applicable(release):
                    return [status_row(unit.base, kind, "not_applicable", reason, time.time() - t0)], []
                if unmet := unmet_needs(comp, release):
                    return [status_row(unit.base, kind, *unmet, time.time() - t0)], []
                comp.fit(aux)
                result = comp.run(release)
                rows = measurement_rows(result.metrics, unit.base, kind, time.time() - t0, notes=result.notes)
                return rows, self._finding_rows(result.findings, unit, release)
            return measurement_rows(
                self.executor.evaluate(comp, release, self.batch_size), unit.base, kind, time.time() - t0
            ), []
        except ModelUnavailableError as exc:
            return [status_row(unit.base, kind, "unavailable", str(exc), time.time() - t0)], []
        except Exception as exc:  # recorded, or re-raised with on_error=raise
            if self.on_error == "raise":
                raise AuditError(
                    f"{kind} {unit.base['component_label']} on {unit.base['target_label']} failed: {exc}"
                ) from exc
            return [status_row(unit.base, kind, "failed", _describe(exc), time.time() - t0)], []

    def _finding_rows(self, findings: Sequence[FileFinding], unit: _Unit, release: Release) -> list[dict]:
        """``findings`` as rows of ``findings.csv``; what the attack recovered only with ``embed_examples``."""
        files = {f.key: f.file for f in release.files}
        out = []
        for f in findings:
            recovered = self.embed_examples and bool(f.example)
            out.append(
                {
                    "file": f.file or files.get(f.key, ""),
                    "target": unit.base["target"],
                    "attack": unit.base["component"],
                    "finding": f.finding,
                    "detail": f.example if recovered else f.detail,
                    "target_label": unit.base["target_label"],
                    "target_id": unit.target_id,
                    "key": f.key,
                    "metric": ";".join(f.metrics),
                    "recovered": recovered,
                }
            )
        return out

    def _release_rows(self, release: Release, base: dict, seconds: float) -> list[dict]:
        heights = [r.boxes[0].h for r in release.originals.records if r.boxes]
        widths = (
            [release.originals[i].shape[1] for i in range(min(len(release), 50))] if release.originals.in_memory else []
        )
        rows = [
            row(
                **base,
                kind="target",
                component="release",
                metric="pairs",
                value=len(release),
                n=len(release),
                status="ok",
                seconds=seconds,
            ),
            row(
                **base,
                kind="target",
                component="release",
                metric="unpaired_originals",
                value=len(release.unpaired["missing"]),
                status="ok",
                message=", ".join(release.unpaired["missing"][:20]),
            ),
            row(
                **base,
                kind="target",
                component="release",
                metric="unpaired_release_files",
                value=len(release.unpaired["extra"]),
                status="ok",
                message=", ".join(release.unpaired["extra"][:20]),
            ),
        ]
        if heights:
            rows.append(
                row(
                    **base,
                    kind="target",
                    component="release",
                    metric="region_height_px",
                    value=float(np.median(heights)),
                    n=len(heights),
                    status="ok",
                    message="median height of the plate/face boxes in the originals",
                )
            )
        if widths:
            rows.append(
                row(
                    **base,
                    kind="target",
                    component="release",
                    metric="image_width_px",
                    value=float(np.median(widths)),
                    n=len(widths),
                    status="ok",
                    message="median width of the original images (first 50)",
                )
            )
        return rows

    def _save_examples(self, release: Release, folder: Path) -> None:
        from PIL import Image

        for i in range(min(self.examples, len(release))):
            img = Image.fromarray(release.anonymized[i])
            img.thumbnail((320, 320))
            write_image(folder / f"{i:02d}.png", np.asarray(img))

    def _unit_seed(self, unit: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{self.seed}:{unit}".encode()).digest()[:4], "little")

    def _manifest(self, started: float, aux, evaluation) -> dict[str, Any]:
        from importlib import metadata

        versions = {}
        for pkg in (
            "anonaudit",
            "numpy",
            "scipy",
            "scikit-image",
            "scikit-learn",
            "torch",
            "rapidocr",
            "onnxruntime",
            "pandas",
            "pillow",
        ):
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions[pkg] = metadata.version(pkg)
        return {
            "name": self.name,
            "seed": self.seed,
            "embed_examples": self.embed_examples,
            "started": datetime.fromtimestamp(started, UTC).isoformat(),
            "seconds": round(time.time() - started, 2),
            "data": {
                "name": self.data.name,
                "n": len(self.data),
                "evaluation": len(evaluation),
                "auxiliary": 0 if aux is None else len(aux),
            },
            "targets": [{"name": t.name, "label": t.label(), "params": t.get_params()} for t in self.targets],
            "attacks": [{"name": a.name, "params": a.get_params()} for a in self.attacks],
            "evaluators": [{"name": e.name, "params": e.get_params()} for e in self.evaluators],
            "config": self.config,
            "weights": weights_used(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": versions,
            "environment": environment(),  # what determinism depends on (anonaudit.environment)
            "packages": installed_packages(),  # every installed distribution
        }


def _read_rows(path: Path | None) -> list[dict] | None:
    """The rows stored in a unit file, or None when it is absent or unreadable."""
    if path is None or not path.is_file():
        return None
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    return rows


def _finished_rows(path: Path | None) -> list[dict] | None:
    """Rows of a unit an earlier run finished; None when it must run again.

    Failed and unavailable units are run again, so a rerun after the cause is fixed (a model
    fetched, a file replaced) completes the audit.
    """
    rows = _read_rows(path)
    if not rows or any(r.get("status") != "ok" for r in rows):
        return None
    return rows


def _findings_path(unit_path: Path) -> Path:
    """Where a unit's findings are stored (beside its rows, in the target's ``records`` folder)."""
    return unit_path.parent / "records" / f"{unit_path.stem}.findings.json"


def _finished_findings(unit_path: Path | None, embed_examples: bool) -> list[dict] | None:
    """The findings stored with a finished unit; None when absent or stored with the other
    ``embed_examples`` setting (the unit then runs again: model outputs come from the run cache)."""
    if unit_path is None:
        return None
    try:
        stored = json.loads(_findings_path(unit_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(stored, dict)
        or stored.get("embed_examples") != embed_examples
        or not isinstance(stored.get("findings"), list)
    ):
        return None
    return stored["findings"]


def unmet_needs(attack: Attack, release: Release) -> tuple[str, str] | None:
    """``(status, reason)`` when the release's target does not provide what ``attack.needs``
    (:data:`~anonaudit.attacks.base.NEEDS`), None when it does.

    A method that lacks a white-box capability (a critic, a reconstruction, ...) makes the attack
    ``not_applicable``: "not applicable: target X provides no critic (needs: critic)". A ready-made
    release (an unknown method, which may well have one) or a trained target that recorded no
    training keys leaves the attack ``unavailable``: not tested, never passed. ``anonymized_auxiliary``
    is the attack's own to check (it depends on the auxiliary images too).
    """
    needs = tuple(attack.needs)
    if unknown := unknown_needs(needs):
        return "failed", f"attack '{attack.name}' declares unknown needs {unknown} (known: {', '.join(NEEDS)})"
    target = release.anonymizer
    absent = (("anonymizer",) if "anonymizer" in needs and target is None else ()) + missing(target, needs)
    wanted = ", ".join(needs)
    if absent:
        what = " or ".join(absent)
        if target is None or not target.applies_to_new_images:
            return "unavailable", (f"not tested: {release.name or 'the release'} is a ready-made release of an unknown "
                                   f"method: it provides no {what} (needs: {wanted})")
        return "not_applicable", f"not applicable: target {target.label()} provides no {what} (needs: {wanted})"
    if "training_keys" in needs and not release.training_keys:
        return "unavailable", (f"not tested: target {target.label()} recorded no training keys (needs: {wanted}; a "
                               "checkpoint without its data keys: audit it with the checkpoint that lists them)")
    return None


def _describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    loc = f" (at {Path(where.filename).name}:{where.lineno})" if where and not isinstance(exc, AnonauditError) else ""
    return f"{type(exc).__name__}: {exc}{loc}"


def audit_from_config(config, show_progress: bool = True, executor: Executor | None = None) -> Audit:
    """Build an :class:`Audit` from an :class:`~anonaudit.config.AuditConfig`."""
    # Components first: a bad parameter value is reported before data is loaded or generated.
    targets = [ANONYMIZERS.create(s.name, **s.params) for s in config.targets]
    attacks = [ATTACKS.create(s.name, **s.params) for s in config.attacks]
    evaluators = [EVALUATORS.create(s.name, **s.params) for s in config.evaluators]
    data = DATASETS.create(config.data.name, **config.data.params)
    if not isinstance(data, ImageSet):
        raise DataError(f"data set '{config.data.name}' did not produce an ImageSet")
    aux = dict(config.auxiliary)
    return Audit(
        data=data,
        targets=targets,
        attacks=attacks,
        evaluators=evaluators,
        aux_fraction=float(aux.get("fraction", 0.2)),
        aux_by=aux.get("by"),
        seed=config.seed,
        on_error=config.on_error,
        batch_size=config.batch_size,
        name=config.name,
        config=config.raw,
        executor=executor,
    )
