"""YAML audit configurations: parsing, validation, parameter sweeps and path confinement.

```yaml
data: {name: synthetic_plates, n: 200}
targets:
  - {name: gaussian_blur, sweep: {sigma: [1, 2, 4, 8]}}
  - mask
attacks: [{name: ocr, engine: rapidocr}, deblur_ocr]
evaluators: [ssim, psnr]
auxiliary: {fraction: 0.2}       # the intruder's own data, split off the data set by seed
seed: 0
on_error: skip                   # or raise
output: runs/plates-quick
kind: plates                     # faces | plates: which policy criteria apply (anonaudit certify)
```

Relative paths are resolved against the working directory. Every path a config names (data roots,
external releases, the output folder) must lie inside an allowed root: the working directory,
the config file's folder, and any root the *user* adds (``--root`` on the command line or
``ANONAUDIT_ROOTS``); a config cannot widen its own reach.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .params import check_range
from .registry import ANONYMIZERS, ATTACKS, DATASETS, EVALUATORS

TOP_LEVEL_KEYS = {
    "data",
    "targets",
    "attacks",
    "evaluators",
    "seed",
    "output",
    "auxiliary",
    "on_error",
    "batch_size",
    "report",
    "name",
    "kind",
}
PATH_PARAMS = {"root", "path", "labels", "pairs", "folder", "checkpoint", "weights", "model_storage_directory"}
#: Path parameters whose value may also be a bare name: a labels file inside the data root, or a
#: registered model-cache entry (``weights: facenet-vggface2``).
BARE_NAME_PARAMS = {"labels", "weights"}


@dataclass
class ComponentSpec:
    """One component: registry name and its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditConfig:
    data: ComponentSpec
    targets: list[ComponentSpec]
    attacks: list[ComponentSpec]
    evaluators: list[ComponentSpec]
    seed: int = 0
    output: Path | None = None
    auxiliary: dict[str, Any] = field(default_factory=lambda: {"fraction": 0.2})
    on_error: str = "skip"
    batch_size: int = 32
    report: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def _spec(item: Any, where: str) -> dict[str, Any]:
    if isinstance(item, str):
        return {"name": item}
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return dict(item)
    raise ConfigError(f"{where}: expected a name or a mapping with 'name', got {item!r}")


def expand_sweep(item: dict[str, Any], where: str) -> list[ComponentSpec]:
    """``{name, sweep: {p: [a, b]}, q: 1}`` -> one spec per point of the cartesian product."""
    item = dict(item)
    name = item.pop("name")
    sweep = item.pop("sweep", None) or {}
    if not isinstance(sweep, dict):
        raise ConfigError(f"{where}: 'sweep' must map parameter names to lists of values")
    for k, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: sweep over '{k}' needs a non-empty list, got {values!r}")
        if k in item:
            raise ConfigError(f"{where}: '{k}' is both fixed and swept")
    keys = list(sweep)
    return [
        ComponentSpec(name, {**item, **dict(zip(keys, combo))})
        for combo in itertools.product(*(sweep[k] for k in keys))
    ]


def _check_known(registry, spec: ComponentSpec, where: str) -> None:
    """Unknown names and parameters are errors with a "did you mean" hint, before anything runs."""
    import difflib
    import inspect

    cls = registry.get(spec.name)  # raises UnknownComponentError with "did you mean"
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # no introspectable signature: the constructor will check
        return
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in spec.params:
        if key not in known:
            close = difflib.get_close_matches(key, known, 1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{where}: {registry.kind.removesuffix('s')} '{spec.name}' has no "
                f"parameter '{key}'{hint}; its parameters: {', '.join(known) or 'none'}"
            )


def _check_values(registry, spec: ComponentSpec, where: str) -> None:
    """Build the component once so bad parameter values (a negative sigma, an unknown OCR engine)
    fail while the config is read, not after an hour of auditing. Constructors only store and
    check their parameters; models load lazily on first use. A ``TypeError`` from inside a
    constructor is a bug in that component, not a config mistake, and propagates unchanged
    (:meth:`Registry.create` reports parameters that do not fit the signature as :class:`ConfigError`)."""
    try:
        registry.create(spec.name, **spec.params)
    except ConfigError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: {registry.kind.removesuffix('s')} '{spec.name}': {exc}") from None


def allowed_roots(config_path: Path | None, extra: list[str | Path] | None = None) -> list[Path]:
    roots = [Path.cwd()]
    if config_path is not None:
        roots.append(config_path.resolve().parent)
    env = os.environ.get("ANONAUDIT_ROOTS", "")
    roots += [Path(p) for p in env.split(os.pathsep) if p]
    roots += [Path(p) for p in (extra or [])]
    return [r.resolve() for r in roots]


def confine(path: str | Path, roots: list[Path], what: str) -> Path:
    """Resolve ``path`` (symlinks too) and refuse it unless it lies inside one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    raise ConfigError(
        f"{what} '{path}' resolves to {resolved}, outside the allowed roots {[str(r) for r in roots]}; "
        "add its folder with --root (or ANONAUDIT_ROOTS) if you trust it"
    )


def _confine_params(params: dict[str, Any], roots: list[Path], where: str) -> dict[str, Any]:
    """Confine every path parameter, also inside nested parameters (e.g. an attack's embedder)."""
    out = dict(params)
    for k, v in params.items():
        if isinstance(v, dict):
            out[k] = _confine_params(v, roots, f"{where}.{k}")
        elif isinstance(v, list):
            out[k] = [
                _confine_params(x, roots, f"{where}.{k}[{j}]") if isinstance(x, dict) else x for j, x in enumerate(v)
            ]
        elif k in PATH_PARAMS and isinstance(v, str) and v:
            if k in BARE_NAME_PARAMS and not ("/" in v or os.sep in v):
                continue  # a file inside the data root, or a model-cache name
            out[k] = str(confine(v, roots, f"{where}.{k}"))
    return out


def _auxiliary(aux: Any) -> dict[str, Any]:
    """Validate ``auxiliary: {fraction: 0.2, by: identity}`` (the intruder's share of the data)."""
    if not isinstance(aux, dict):
        raise ConfigError("'auxiliary' must be a mapping like {fraction: 0.2, by: identity}")
    unknown = set(aux) - {"fraction", "by"}
    if unknown:
        raise ConfigError(f"auxiliary: unknown key(s) {sorted(unknown)} (known: fraction, by)")
    fraction = aux.get("fraction", 0.2)
    check_range("auxiliary", "fraction", fraction, ge=0, lt=1)
    by = aux.get("by")
    if by is not None and not isinstance(by, str):
        raise ConfigError(f"auxiliary.by must be a label name such as 'identity', got {by!r}")
    return dict(aux)


def parse_config(
    raw: dict[str, Any], config_path: Path | None = None, roots: list[str | Path] | None = None
) -> AuditConfig:
    """Validate a config mapping (as loaded from YAML) into an :class:`AuditConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path or 'config'}: top level must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        import difflib

        hints = [
            f"'{u}' (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(u, TOP_LEVEL_KEYS, 1)) else f"'{u}'"
            for u in sorted(unknown)
        ]
        raise ConfigError(f"{config_path or 'config'}: unknown key(s) {', '.join(hints)}")
    for key in ("data", "targets"):
        if key not in raw:
            raise ConfigError(f"{config_path or 'config'}: missing required key '{key}'")
    allowed = allowed_roots(config_path, roots)

    data = _spec(raw["data"], "data")
    data_spec = ComponentSpec(data.pop("name"), _confine_params(data, allowed, "data"))
    _check_known(DATASETS, data_spec, "data")

    def specs(key: str, registry, sweeps: bool) -> list[ComponentSpec]:
        items = raw.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"'{key}' must be a list")
        out: list[ComponentSpec] = []
        for i, item in enumerate(items):
            d = _spec(item, f"{key}[{i}]")
            if sweeps:
                expanded = expand_sweep(d, f"{key}[{i}]")
            else:
                if "sweep" in d:
                    raise ConfigError(f"{key}[{i}]: only targets can be swept")
                expanded = [ComponentSpec(d.pop("name"), d)]
            for s in expanded:
                s.params = _confine_params(s.params, allowed, f"{key}[{i}]")
                _check_known(registry, s, f"{key}[{i}]")
                _check_values(registry, s, f"{key}[{i}]")
            out.extend(expanded)
        return out

    targets = specs("targets", ANONYMIZERS, True)
    if not targets:
        raise ConfigError("'targets' is empty: nothing to audit")
    on_error = raw.get("on_error", "skip")
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    seed = raw.get("seed", 0)
    check_range("config", "seed", seed, integer=True)
    aux = _auxiliary(raw.get("auxiliary", {"fraction": 0.2}))
    output = raw.get("output")
    if output is not None and (not isinstance(output, str) or not output.strip()):
        raise ConfigError(f"output must be a folder path, got {output!r}")
    batch_size = raw.get("batch_size", 32)
    check_range("config", "batch_size", batch_size, ge=1, integer=True)
    report = raw.get("report") or {}
    if not isinstance(report, dict):
        raise ConfigError(f"'report' must be a mapping, got {report!r}")
    if raw.get("kind") not in (None, "faces", "plates"):  # which policy criteria apply (anonaudit certify)
        raise ConfigError(f"kind must be 'faces' or 'plates', got {raw['kind']!r}")
    name = raw.get("name", config_path.stem if config_path else "audit")
    if not isinstance(name, str) or not name.strip() or name.strip() in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(f"name must be a plain name (it names the default output folder runs/<name>), got {name!r}")
    return AuditConfig(
        data=data_spec,
        targets=targets,
        attacks=specs("attacks", ATTACKS, False),
        evaluators=specs("evaluators", EVALUATORS, False),
        seed=seed,
        output=confine(output, allowed, "output") if output else None,
        auxiliary=aux,
        on_error=on_error,
        batch_size=batch_size,
        report=dict(report),
        name=name,
        raw=raw,
    )


def apply_overrides(raw: Any, overrides: Sequence[str]) -> Any:
    """A copy of a config mapping with ``dotted.key=value`` assignments applied, values read as YAML.

    ``data.limit=null`` (the whole data set), ``seed=3``, ``targets.0.sweep.sigma=[1, 2]`` (list
    items by index). Missing mapping keys are created; anything else that does not fit is an error.
    """
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"override {item!r}: expected dotted.key=value (e.g. data.limit=100)")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        node = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {item!r}: '{where}' is not an index of a list of {len(node)}")
                part = int(part)
            elif isinstance(node, dict):
                if not last and part not in node:
                    node[part] = {}
            else:
                raise ConfigError(f"override {item!r}: '{'.'.join(parts[:depth])}' is {node!r}, not a mapping or list")
            if last:
                node[part] = value
            else:
                if isinstance(node[part], str) and isinstance(node, list):  # a bare component name: give it a mapping
                    node[part] = {"name": node[part]}
                node = node[part]
    return raw


def load_config(path: str | Path, roots: list[str | Path] | None = None, overrides: Sequence[str] = ()) -> AuditConfig:
    """Read a YAML config safely (``yaml.safe_load``: no arbitrary objects), apply command-line
    ``overrides`` (see :func:`apply_overrides`) and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_config(apply_overrides(raw, overrides) if overrides else raw, path, roots)
