"""The product vocabulary: features, milestones, scores and sessions.

These are pydantic models so a workspace file is validated with messages naming the field
at fault; `segments/workspace.py` loads them from YAML together with the segments. Next
hop: `segmently apply` stores a `Vocabulary` in the database (`profile/vocabularies.py`),
from which every evaluation, profile and page reads it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from segmently.profile.matchers import EventMatcher

Name = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Feature(Strict):
    """A named capability of the product: using any of its events counts as using it."""

    name: str = Name
    description: str = ""
    core: bool = False  # a core action: stopping it is a churn signal
    events: list[EventMatcher] = Field(min_length=1)


class Milestone(Strict):
    """A journey stage, reached the first time any of its events happens."""

    name: str = Name
    description: str = ""
    events: list[EventMatcher] = Field(min_length=1)


class EngagementScore(Strict):
    """sum(weight x count of the event in the window), scaled to 0-100.

    `points_for_100` is the raw total that earns 100 (more is capped); when absent the most
    engaged user of the project defines 100, so the score is relative.
    """

    window_days: int = Field(default=30, ge=1, le=3650)
    weights: dict[str, Annotated[float, Field(ge=-1e9, le=1e9)]] = Field(default_factory=dict)
    points_for_100: float | None = Field(default=None, gt=0, le=1e12)


HealthComponentKind = Literal["engagement", "recency", "nps", "payments", "adoption"]


class HealthComponent(Strict):
    kind: HealthComponentKind
    weight: float = Field(gt=0, le=1e6)


class HealthBand(Strict):
    name: str = Name
    min: float = Field(ge=0, le=100)


class HealthScore(Strict):
    """A weighted mean of 0-100 components, and named bands by minimum score.

    Components: engagement (the engagement score); recency (100 when seen today, falling
    linearly to 0 at `recency_days`); nps (latest score x 10; `nps_missing` when none);
    payments (100 with no missed payment in the last 30 days, else 0); adoption (share of
    declared features used in the activity window).
    """

    components: list[HealthComponent] = Field(default_factory=lambda: [
        HealthComponent(kind="engagement", weight=0.4),
        HealthComponent(kind="recency", weight=0.2),
        HealthComponent(kind="nps", weight=0.15),
        HealthComponent(kind="payments", weight=0.15),
        HealthComponent(kind="adoption", weight=0.1),
    ])
    bands: list[HealthBand] = Field(default_factory=lambda: [
        HealthBand(name="good", min=70), HealthBand(name="at_risk", min=40),
        HealthBand(name="poor", min=0),
    ])
    recency_days: int = Field(default=30, ge=1, le=36_500)
    nps_missing: float = Field(default=50, ge=0, le=100)

    @field_validator("bands")
    @classmethod
    def _bands_cover_zero(cls, bands: list[HealthBand]) -> list[HealthBand]:
        if not bands or min(b.min for b in bands) != 0:
            raise ValueError("bands must include one with min 0, so every score has a band")
        return sorted(bands, key=lambda b: -b.min)


class Vocabulary(Strict):
    """Everything per-user metrics need to know about the product."""

    session_gap_minutes: int = Field(default=30, ge=1, le=24 * 60)
    activity_window_days: int = Field(default=30, ge=1, le=3650)
    features: list[Feature] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    engagement: EngagementScore = Field(default_factory=EngagementScore)
    health: HealthScore = Field(default_factory=HealthScore)

    @model_validator(mode="after")
    def _unique_names(self) -> Vocabulary:
        for kind in ("features", "milestones"):
            names = [item.name for item in getattr(self, kind)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(dupes)}")
        return self
