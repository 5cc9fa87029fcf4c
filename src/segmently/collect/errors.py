"""The one error type of ingestion: a precise, client-facing message and an HTTP status."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input. `code` is machine-readable, `message` names the field at fault."""

    def __init__(self, message: str, *, code: str = "invalid_payload", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class AuthError(InputError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="unauthorized", status=401)
