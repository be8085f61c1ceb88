"""Discover and import every built-in module that registers components, so the registries are filled.

No module list is kept by hand: the package's source files are scanned (without importing them) for
calls of a registry's ``register`` (``@ATTACKS.register("ocr")``, ``DATASETS.register(name)(fn)``),
and exactly those modules are imported. Modules that only hold networks or helpers (which may import
optional heavy dependencies such as torch at module level) are never imported here; registering
modules import such dependencies lazily, inside the methods that use them.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from . import registry

PACKAGE = __name__.rpartition(".")[0]


def _registry_names() -> frozenset[str]:
    """Module-level names of the registries in :mod:`anonaudit.registry` (``ANONYMIZERS``, ...)."""
    return frozenset(k for k, v in vars(registry).items() if isinstance(v, registry.Registry))


def registers_components(source: str, names: frozenset[str] = frozenset()) -> bool:
    """Whether Python ``source`` calls ``<REGISTRY>.register`` for one of the registries ``names``."""
    names = names or _registry_names()
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
def builtin_modules() -> tuple[str, ...]:
    """Names of the package's modules that register components, sorted."""
    root = Path(importlib.import_module(PACKAGE).__file__).parent
    names = _registry_names()
    found = []
    for module, path in _walk(root, f"{PACKAGE}."):
        if module == registry.__name__ or not path.is_file():
            continue
        if registers_components(path.read_text(encoding="utf-8"), names):
            found.append(module)
    return tuple(sorted(found))


_loaded = False


def load_builtin_components() -> None:
    """Register the built-in anonymizers, attacks, evaluators, embedders, engines and data sets."""
    global _loaded
    if _loaded:
        return
    for module in builtin_modules():
        importlib.import_module(module)
    _loaded = True
