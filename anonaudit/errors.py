"""Exception hierarchy. Every error anonaudit raises on purpose is an :class:`AnonauditError`."""

from __future__ import annotations

from pathlib import Path


class AnonauditError(Exception):
    """Base class of every error raised deliberately by anonaudit."""


class ConfigError(AnonauditError, ValueError):
    """An audit configuration or a component parameter is invalid."""


class UnknownComponentError(ConfigError, KeyError):
    """A registry was asked for a name it does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(AnonauditError):
    """Input data (images, labels, pairings) is unusable."""


class FileProblemError(AnonauditError):
    """An error about one file: ``path`` and ``problem``, read as ``"<path>: <problem>"``. Mixed in
    before the error's kind (``class ImageReadError(FileProblemError, DataError)``)."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # rebuilt from the constructor's arguments (e.g. raised on a Ray worker)
        return type(self), (self.path, self.problem)


class ImageReadError(FileProblemError, DataError):
    """One image file could not be read safely; the message names the file and the problem."""


class MismatchError(DataError):
    """Originals and anonymized images do not pair up (names, counts or sizes)."""


class ModelUnavailableError(AnonauditError):
    """A model's weights or runtime are missing; ``fix`` says how to get them."""

    def __init__(self, model: str, reason: str, fix: str | None = None):
        self.model = model
        self.reason = reason
        self.fix = fix
        text = f"{model} unavailable: {reason}"
        if fix:
            text += f" (run `{fix}`)" if fix.startswith("anonaudit ") else f" ({fix})"
        super().__init__(text)

    def __reduce__(self):  # rebuilt from the constructor's arguments (e.g. raised on a Ray worker)
        return type(self), (self.model, self.reason, self.fix)


class WeightIntegrityError(AnonauditError):
    """A weight file's checksum does not match the registered one; it is never loaded."""


class AuditError(AnonauditError):
    """A component failed while an audit ran (recorded in results with ``on_error: skip``)."""
