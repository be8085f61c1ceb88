"""Typed registries of components (``name -> class``) with "did you mean" errors and plugins.

Like timm's model registry: ``ANONYMIZERS.create("gaussian_blur", sigma=2)``. Third-party
packages add components through the entry-point groups ``anonaudit.<kind>``
(e.g. ``[project.entry-points."anonaudit.attacks"] my_attack = "pkg.module:MyAttack"``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from .components import builtin_modules
from .errors import ConfigError, UnknownComponentError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of component classes of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type[T]] = {}
        self._plugins_loaded = False
        self._broken: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[type[T]], type[T]]:
        """Class decorator: register ``cls`` under ``name`` (default: ``cls.name``)."""

        def deco(cls: type[T]) -> type[T]:
            key = name or getattr(cls, "name", None)
            if not key:
                raise ConfigError(f"{cls.__qualname__} has no registry name")
            existing = self._items.get(key)
            if existing is not None and existing is not cls:
                raise ConfigError(
                    f"{self.kind} '{key}' is registered twice ({existing.__qualname__}, {cls.__qualname__})"
                )
            cls.name = key  # type: ignore[attr-defined]
            self._items[key] = cls
            return cls

        return deco

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        load_builtin_components()
        group = f"anonaudit.{self.kind}"
        for ep in metadata.entry_points(group=group):
            if ep.name in self._items:
                continue
            try:
                cls = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import-time failure of third-party code
                # One broken third-party package must not stop every audit: warn, keep it out, and
                # raise the same message when someone asks for it by name.
                message = (
                    f"{self.kind} plugin '{ep.name}' (entry point '{ep.value}' in group '{group}') "
                    f"could not be loaded: {type(exc).__name__}: {exc}; fix or uninstall the package that provides it"
                )
                self._broken[ep.name] = message
                warnings.warn(message, RuntimeWarning, stacklevel=3)
                continue
            self.register(ep.name)(cls)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; unknown names raise with close matches suggested."""
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            if name in self._broken:
                raise ConfigError(self._broken[name]) from None
            close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownComponentError(
                f"unknown {self.kind} '{name}'{hint} (known: {', '.join(sorted(self._items))})"
            ) from None

    def describe(self, name: str) -> str:
        """The first sentence of ``name``'s docstring (its whole first paragraph when that holds no
        sentence end), on one line, without reST markup: what ``anonaudit list`` prints."""
        paragraph = inspect.cleandoc(self.get(name).__doc__ or "").split("\n\n")[0]
        text = " ".join(paragraph.split())
        text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", text).replace("``", "")  # :func:`~a.b` -> b
        end = re.search(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)[.!?](?=\s+[A-Z]|$)", text)  # not "et al." nor "e.g."
        return text[: end.end()] if end else text

    def create(self, name: str, **params: Any) -> T:
        """Instantiate ``name`` with ``params``.

        Parameters that do not fit the constructor's signature (unknown or missing) raise
        :class:`ConfigError`; whatever the constructor itself raises (its own value checks, or a
        ``TypeError`` from a bug inside it) propagates unchanged."""
        cls = self.get(name)
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):  # no introspectable signature: the constructor will check
            signature = None
        if signature is not None:
            try:
                signature.bind(**params)
            except TypeError as exc:
                raise ConfigError(f"{self.kind} '{name}': {exc}") from exc
        return cls(**params)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


ANONYMIZERS: Registry = Registry("anonymizers")
ATTACKS: Registry = Registry("attacks")
EVALUATORS: Registry = Registry("evaluators")
EMBEDDERS: Registry = Registry("embedders")
OCR_ENGINES: Registry = Registry("ocr_engines")
DETECTORS: Registry = Registry("detectors")
DATASETS: Registry = Registry("datasets")
#: Trainable models that are not targets (the ArcFace embedder trainer). A trainable target is an
#: anonymizer (``trainable = True``) in ``ANONYMIZERS``; ``anonaudit train`` looks in both.
TRAINERS: Registry = Registry("trainers")

REGISTRIES: dict[str, Registry] = {
    r.kind: r for r in (ANONYMIZERS, ATTACKS, EVALUATORS, EMBEDDERS, OCR_ENGINES, DETECTORS, DATASETS)
}
# The registries' module-level names: a module that calls ``<NAME>.register`` registers components.
REGISTRY_NAMES: frozenset[str] = frozenset(k for k, v in list(globals().items()) if isinstance(v, Registry))

_builtins_loaded = False


def load_builtin_components() -> None:
    """Register the built-in anonymizers, attacks, evaluators, embedders, engines and data sets: import
    every module of the package that calls ``register`` on one of the registries above."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in builtin_modules(REGISTRY_NAMES):
        importlib.import_module(module)
    _builtins_loaded = True


def create_anonymizer(name: str, **params: Any):
    return ANONYMIZERS.create(name, **params)


def create_attack(name: str, **params: Any):
    return ATTACKS.create(name, **params)


def create_evaluator(name: str, **params: Any):
    return EVALUATORS.create(name, **params)
