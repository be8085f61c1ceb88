"""Every exception class anonaudit defines survives pickling with its message and attributes.

Errors raised on a Ray worker travel to the driver pickled; one that cannot be rebuilt there turns
an "unavailable" model into an unexplained failure. The classes are found by reading the package's
source, so a new exception class is covered without editing this test.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pickle
from pathlib import Path

import pytest

import anonaudit

PACKAGE = Path(anonaudit.__file__).parent


def _exception_classes() -> list[type[BaseException]]:
    """Classes defined in the package that derive from ``BaseException``: every class with a base
    named like an exception (``...Error``, ``...Exception``, ``...Interrupt``, ``...Warning``), imported."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [
            n.name for n in tree.body if isinstance(n, ast.ClassDef) and any(_looks_exceptional(b) for b in n.bases)
        ]
        if not names:
            continue
        module = importlib.import_module(
            ".".join(("anonaudit", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        )
        found += [
            getattr(module, n)
            for n in names
            if isinstance(getattr(module, n), type) and issubclass(getattr(module, n), BaseException)
        ]
    return found


def _looks_exceptional(base: ast.expr) -> bool:
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    return name.endswith(("Error", "Exception", "Interrupt", "Warning"))


def _example_arguments(cls: type[BaseException]) -> list:
    """One made-up value per constructor argument (a list where the annotation asks for one)."""
    if cls.__init__ is BaseException.__init__ or cls.__init__ is Exception.__init__:
        return ["what went wrong"]
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [["first problem", "second problem"] if "list" in str(p.annotation) else f"{p.name} value" for p in params]


EXCEPTIONS = _exception_classes()


def test_the_known_exceptions_are_found():
    names = {c.__name__ for c in EXCEPTIONS}
    assert {
        "ModelUnavailableError",
        "ImageReadError",
        "ConfigError",
        "CheckpointError",
        "Refused",
        "Terminated",
    } <= names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_exception_pickles_to_an_equal_message(cls):
    error = cls(*_example_arguments(cls))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error) and copy.args == error.args
    assert vars(copy) == vars(error)  # e.g. ModelUnavailableError's model, reason and fix


def test_model_unavailable_error_keeps_its_fix():
    from anonaudit.errors import ModelUnavailableError

    error = pickle.loads(
        pickle.dumps(
            ModelUnavailableError("inception-fid", "weights not cached", "anonaudit models fetch inception-fid")
        )
    )
    assert (error.model, error.fix) == ("inception-fid", "anonaudit models fetch inception-fid")
    assert str(error) == "inception-fid unavailable: weights not cached (run `anonaudit models fetch inception-fid`)"
