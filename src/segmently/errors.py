"""The one error root: every error a user can cause, with what the shells need to say it.

Each stage raises its own subclass (collect: `InputError`, segments: `RuleError`,
`UnknownSegmentError`..., store: `DatabaseUnavailableError`...), declaring once its
machine-readable `code`, its HTTP `status` and its CLI `exit_code`. The web app has one
handler for the root (`web/app.py`: `{"code", "message"}` with the status) and the CLI one
(`cli.app.entry`: `error: message` on stderr, or `{"error": ...}` with --json, and the exit
code). So no user error is ever a 500 or a traceback, and a new error is one class.

Exit codes (documented in README, "Errors"):
    1  the request cannot be done as asked (bad input, unknown name, invalid rule...)
    2  the command line itself is wrong (typer's usage errors)
    3  a resource is busy or unavailable (the database, a DuckDB file held elsewhere)
    4  the database and a workspace file differ (`segmently apply --check`, or drift)
Each subclass keeps its traditional base too (ValueError, LookupError, RuntimeError), so
code that catches those still does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # only annotated: pydantic is a third of the CLI's start
    from pydantic import ValidationError

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class SegmentlyError(Exception):
    """Base of every error a user can cause; `message` is what to show them."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    exit_code: ClassVar[int] = EXIT_INVALID

    def __init__(self, message: str = "", *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]

    def __str__(self) -> str:
        return self.message


class NotFoundError(SegmentlyError, LookupError):
    """A project, segment, user or file the caller named does not exist."""

    code = "not_found"
    status = 404


class ConflictError(SegmentlyError, RuntimeError):
    """The request collides with what is stored (a name taken, a concurrent change)."""

    code = "conflict"
    status = 409


class UnavailableError(SegmentlyError, RuntimeError):
    """A resource cannot be used right now; retrying later is the remedy."""

    code = "unavailable"
    status = 503
    exit_code = EXIT_UNAVAILABLE


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """The first problem of a pydantic ValidationError as one line for people: the field
    path (after `prefix`, e.g. "content."), then what is wrong ("name: String should
    match pattern ..."). Every definition parser says its errors this way."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    message = str(first["msg"]).removeprefix("Value error, ")
    where = prefix + where if where else prefix.rstrip(" .:")
    return f"{where}: {message}" if where else message
