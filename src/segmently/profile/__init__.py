"""Per-user metrics: activity and sessions, NPS, payments and trials."""

from segmently.profile.activity import activity, sessions
from segmently.profile.billing import billing
from segmently.profile.feedback import nps, nps_category

__all__ = ["activity", "billing", "nps", "nps_category", "sessions"]
