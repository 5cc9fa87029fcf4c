"""Errors of the segment engine, under the one root (segmently/errors.py): each has a
message naming what is wrong, and its code, status and exit code, so the shells' one
handler shows it as is (a 4xx, never a stack trace). Rule errors are ValueErrors too,
unknown users LookupErrors."""

from __future__ import annotations

from segmently.errors import NotFoundError, SegmentlyError


class RuleError(SegmentlyError, ValueError):
    """A rule that does not validate; the message names the field at fault."""

    code = "invalid_segment"


class SegmentReferenceError(RuleError):
    """An `in_segment` reference to an unknown segment, or a cycle (`a -> b -> a`)."""


class UnknownUserError(NotFoundError):
    """Explain was asked about a user the store does not know at that instant."""

    code = "unknown_user"


class VocabularyError(SegmentReferenceError):
    """A rule names a feature, milestone or metric the workspace vocabulary does not declare."""
