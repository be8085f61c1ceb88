"""Find every built-in module that registers components, so the registries can import them.

No module list is kept by hand: the package's source files are scanned (without importing them) for
calls of a registry's ``register`` (``@ATTACKS.register("ocr")``, ``DATASETS.register(name)(fn)``);
:func:`anonaudit.registry.load_builtin_components` imports exactly those modules. This module knows
nothing of the registries themselves (their names are passed in), so it sits below
:mod:`anonaudit.registry`. Modules that only hold networks or helpers (which may import
optional heavy dependencies such as torch at module level) are never imported; registering
modules import such dependencies lazily, inside the methods that use them.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from functools import cache, lru_cache
from pathlib import Path

PACKAGE = __name__.rpartition(".")[0]


def registers_components(source: str, names: frozenset[str]) -> bool:
    """Whether Python ``source`` calls ``<REGISTRY>.register`` for one of the registries ``names``."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "register"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names
        ):
            return True
    return False


def _walk(folder: Path, prefix: str):
    """``(module name, file)`` of every module under ``folder``, recursively, importing nothing."""
    for info in pkgutil.iter_modules([str(folder)]):
        if info.ispkg:
            yield from _walk(folder / info.name, f"{prefix}{info.name}.")
            init = folder / info.name / "__init__.py"
            if init.is_file():
                yield f"{prefix}{info.name}", init
        else:
            yield f"{prefix}{info.name}", folder / f"{info.name}.py"


@lru_cache(maxsize=1)
def builtin_modules(names: frozenset[str]) -> tuple[str, ...]:
    """Names of the package's modules that call ``register`` on one of the registries ``names``, sorted."""
    root = Path(importlib.import_module(PACKAGE).__file__).parent
    found = []
    for module, path in _walk(root, f"{PACKAGE}."):
        if path.is_file() and registers_components(path.read_text(encoding="utf-8"), names):
            found.append(module)
    return tuple(sorted(found))


def _registered_class_names(source: str, registry: str) -> list[str]:
    """Names of the classes in ``source`` decorated with ``@<registry>.register(...)``."""
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "register"
            and isinstance(d.func.value, ast.Name) and d.func.value.id == registry
            for d in node.decorator_list
        ):
            out.append(node.name)
    return out


@cache
def registered_classes(package: str, registry: str) -> dict[str, str]:
    """``class name -> module`` of every class under ``package`` (e.g. ``anonaudit.attacks``) that
    registers itself on ``registry`` (e.g. ``"ATTACKS"``), found by reading the sources: a
    subpackage exports its components from this map lazily (:func:`lazy_export`), so its public
    names follow the registry and importing it imports no component module."""
    root = Path(importlib.import_module(package).__file__).parent
    found: dict[str, str] = {}
    for module, path in _walk(root, f"{package}."):
        if path.is_file():
            found.update(dict.fromkeys(_registered_class_names(path.read_text(encoding="utf-8"), registry), module))
    return dict(sorted(found.items()))


def lazy_export(package: str, exports: dict[str, str], name: str) -> type:
    """The module ``__getattr__`` of a subpackage: the class ``name`` of ``exports`` (class name ->
    module), imported on first use."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
