"""Per-user metrics: activity and sessions, features and milestones, scores, NPS, payments.

`build.build_profiles` is the entry; its tables go to `core.Project.profile`, the metric
conditions (`segments/kinds/product.py`), the profile runs (`stored.py`) and `api.py`."""

from segmently.profile.activity import activity, sessions
from segmently.profile.billing import billing
from segmently.profile.build import Profiles, build_profiles
from segmently.profile.config import (
    EngagementScore,
    Feature,
    HealthBand,
    HealthComponent,
    HealthScore,
    Milestone,
    Vocabulary,
)
from segmently.profile.feedback import nps, nps_category
from segmently.profile.matchers import EventMatcher, PropertyFilter

__all__ = [
    "EngagementScore", "EventMatcher", "Feature", "HealthBand", "HealthComponent",
    "HealthScore", "Milestone", "Profiles", "PropertyFilter", "Vocabulary", "activity",
    "billing", "build_profiles", "nps", "nps_category", "sessions",
]
