"""The errors of ingestion: a precise, client-facing message, a code and an HTTP status
(under the one root, segmently/errors.py)."""

from __future__ import annotations

from segmently.errors import SegmentlyError


class InputError(SegmentlyError, ValueError):
    """Bad input. `code` is machine-readable, `message` names the field at fault."""

    code = "invalid_payload"

    def __init__(self, message: str, *, code: str = "invalid_payload", status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


class AuthError(InputError):
    code = "unauthorized"
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unauthorized", status=401)
