"""Per-user metrics: activity, sessions, and (next) features, scores, NPS and payments."""

from segmently.profile.activity import activity, sessions

__all__ = ["activity", "sessions"]
