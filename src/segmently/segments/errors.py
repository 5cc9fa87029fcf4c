"""Errors of the segment engine. Each is a ValueError with a message naming what is wrong,
so the CLI and the web app can show it as is (a 4xx, never a stack trace)."""

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
