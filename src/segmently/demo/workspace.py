"""The demo product declared as a profile vocabulary: its features and journey milestones.

A workspace file (segmently.yaml) for the demo project would declare exactly this; tests
and examples of the profile and segment stages can start from it instead of restating it.
"""

from __future__ import annotations

from segmently.demo import vocabulary as v
from segmently.profile.config import EngagementScore, Feature, Milestone, Vocabulary
from segmently.profile.matchers import EventMatcher

ENGAGEMENT_WEIGHTS = {v.REPORT_VIEWED: 1.0, v.DASHBOARD_VIEWED: 1.0, v.REPORT_CREATED: 3.0,
                      v.ALERT_CREATED: 3.0, v.EXPORT_DOWNLOADED: 2.0, v.API_CALLED: 2.0,
                      v.SQL_QUERY_RUN: 2.0}


def demo_vocabulary() -> Vocabulary:
    """Features (core ones flagged), milestones in journey order, engagement weights."""
    features = [Feature(name=name, core=name in v.CORE_FEATURES,
                        events=[EventMatcher(event=name)]) for name in v.FEATURES]
    milestones = [Milestone(name=name, events=[EventMatcher(event=name)])
                  for name in v.MILESTONES]
    return Vocabulary(features=features, milestones=milestones,
                      engagement=EngagementScore(weights=ENGAGEMENT_WEIGHTS))
