"""The project's own exception types.

Every error a user can cause or meet carries a message that says what is wrong, where, and what to
do next. The CLI maps :class:`InputError` to exit code 2 and any other :class:`S2SError` to 1.
"""
from __future__ import annotations

__all__ = [
    "S2SError",
    "InputError",
    "FormatError",
    "HyperparameterError",
    "AWSOperationError",
    "TrainingJobFailed",
    "EndpointFailed",
    "TransformJobFailed",
    "WaitTimeout",
]


class S2SError(Exception):
    """Base class of every error raised on purpose by s2s-aws."""

    exit_code = 1


class InputError(S2SError, ValueError):
    """Bad input from the user: a file, a flag, a value. CLI exit code 2."""

    exit_code = 2


class FormatError(InputError):
    """A data file (RecordIO, Record protobuf, vocabulary JSON, text corpus) is malformed.

    ``path`` and ``offset`` (a byte offset, when known) say where.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if offset is not None:
                where += f" at byte offset {offset}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset
        self.detail = message


class HyperparameterError(InputError):
    """An unknown hyperparameter name, a bad value, or a broken cross-field rule."""

    def __init__(self, message: str, *, name: str | None = None, value: object = None, allowed: str | None = None):
        super().__init__(message)
        self.name = name
        self.value = value
        self.allowed = allowed


class AWSOperationError(S2SError):
    """An AWS call or a resource reached a state that stops the journey."""


class TrainingJobFailed(AWSOperationError):
    """A training job ended Failed (or Stopped, unless stopping was asked for)."""

    def __init__(self, message: str, *, job_name: str, status: str, reason: str | None = None,
                 log_url: str | None = None):
        super().__init__(message)
        self.job_name = job_name
        self.status = status
        self.reason = reason
        self.log_url = log_url


class EndpointFailed(AWSOperationError):
    """An endpoint ended Failed (or an update rolled back)."""

    def __init__(self, message: str, *, endpoint_name: str, status: str, reason: str | None = None):
        super().__init__(message)
        self.endpoint_name = endpoint_name
        self.status = status
        self.reason = reason


class TransformJobFailed(AWSOperationError):
    """A batch transform job ended Failed or Stopped."""

    def __init__(self, message: str, *, job_name: str, status: str, reason: str | None = None):
        super().__init__(message)
        self.job_name = job_name
        self.status = status
        self.reason = reason


class WaitTimeout(AWSOperationError):
    """A wait ran past its timeout; the resource keeps going on AWS."""
