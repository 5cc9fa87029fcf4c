"""Condition kinds over the product vocabulary, profiles, payments, sequences and accounts.

They join the kinds of `rules.py` in the same `Rule` union (written by `kind`):

    {kind: metric, metric: engagement_score, op: ge, value: 50}
    {kind: metric, metric: engagement_score, percentile: {top: 10}}
    {kind: used_feature, feature: export_downloaded, window: {last: 30}}
    {kind: used_feature, features: [a, b, c], at_least: 2, window: ...}
    {kind: reached_milestone, milestone: first_report_created}
    {kind: journey_stage, stage: workspace_created, for_more_than_days: 7}
    {kind: nps, category: promoter}   (or score op value: {kind: nps, op: le, value: 6})
    {kind: survey_answer, question: onboarding_easy, op: eq, value: "yes"}
    {kind: plan, is: growth}   (or in: [growth, enterprise])
    {kind: on_trial}
    {kind: missed_payments, at_least: 1, window: {last: 30}}
    {kind: sequence, steps: [{event: a}, {event: b, within_hours: 1}], window: ...}
    {kind: account, match: any | all | none, rule: <rule over users>}

Each class docstring is the condition's semantics; ARCHITECTURE.md repeats them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from segmently.profile.matchers import MAX_TEXT, MAX_VALUES, Filters, Int64, PropertyFilter, Scalar, Text, Values
from segmently.segments.windows import Window

if TYPE_CHECKING:
    from segmently.segments.rules import Rule

NUMERIC_METRICS = (
    "days_since_last_seen", "events_total", "events_window", "active_days_window",
    "active_weeks_window", "sessions_window", "avg_session_seconds", "stickiness",
    "nps_score", "nps_responses", "payments_made", "payments_missed",
    "payments_missed_window", "revenue_to_date", "engagement_points", "engagement_score",
    "features_used", "adoption_share", "journey_step", "health_score",
)
TEXT_METRICS = ("lifecycle", "health_band", "nps_category", "plan", "journey_stage")
MILESTONE_METRICS = ("journey_step", "journey_stage")  # only with milestones declared
Count = Field(ge=0, le=1_000_000_000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Percentile(_Strict):
    """`{top: 10}`: the users whose value fewer than 10% of users exceed."""

    top: float | None = Field(default=None, gt=0, le=100)
    bottom: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> Percentile:
        if (self.top is None) == (self.bottom is None):
            raise ValueError("give exactly one of top, bottom (a percentage)")
        return self


class Metric(_Strict):
    """A per-user profile metric (`profile.build_profiles(...).users`, computed with the
    workspace vocabulary at as_of) compared with a value, or ranked.

    Numeric metrics take eq, ne, gt, ge, lt, le, between; text metrics (lifecycle,
    health_band, nps_category, plan, journey_stage) take eq, ne, in, not_in.
    `percentile: {top: P}` holds for a user when fewer than P% of the users that have the
    metric have a strictly greater value (`bottom`: strictly smaller). Ties are in or out
    together, so a tie at the cut may make the group larger than P%; a rank is a window
    function (rank()) over the exact values, so every engine agrees. A user without the
    metric (no activity events, no NPS answer...) is never a member.
    """

    kind: Literal["metric"]
    metric: str = Field(min_length=1, max_length=64)
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "between", "in", "not_in"] | None = None
    value: Scalar | Values | None = None
    percentile: Percentile | None = None

    @model_validator(mode="after")
    def _shape(self) -> Metric:
        known = NUMERIC_METRICS + TEXT_METRICS
        if self.metric not in known:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(known)}")
        if self.percentile is not None:
            if self.op is not None or self.value is not None:
                raise ValueError("give either percentile or op/value, not both")
            if self.metric in TEXT_METRICS:
                raise ValueError(f"metric {self.metric!r} is text: percentiles need a number")
            return self
        if self.op is None or self.value is None:
            raise ValueError("give op and value, or percentile")
        text = self.metric in TEXT_METRICS
        if text and self.op not in ("eq", "ne", "in", "not_in"):
            raise ValueError(f"metric {self.metric!r} is text: use eq, ne, in or not_in")
        if not text and self.op in ("in", "not_in"):
            raise ValueError(f"metric {self.metric!r} is a number: use eq, ne, gt, ge, lt, "
                             f"le or between")
        many = self.op in ("in", "not_in", "between")
        if many != isinstance(self.value, list) or (self.op == "between"
                                                    and len(self.value) != 2):  # type: ignore[arg-type]
            raise ValueError(f"op {self.op!r} needs " + ("[low, high]" if self.op == "between"
                             else "a list" if many else "a single value"))
        values = self.value if isinstance(self.value, list) else [self.value]
        if any(isinstance(v, str) for v in values) != text or \
                any(isinstance(v, bool) for v in values):
            raise ValueError(f"metric {self.metric!r} compares with "
                             + ("text" if text else "numbers"))
        return self


class UsedFeature(_Strict):
    """Used a declared feature (any of its events, track/page/screen) in the window; or,
    with `features` (distinct names), used at least `at_least` (default: all) of them, each
    at least once."""

    kind: Literal["used_feature"]
    feature: str | None = Field(default=None, min_length=1, max_length=128)
    features: list[str] | None = Field(default=None, min_length=1, max_length=100)
    at_least: int | None = Field(default=None, ge=1, le=100)
    window: Window | None = None

    @model_validator(mode="after")
    def _one(self) -> UsedFeature:
        if (self.feature is None) == (self.features is None):
            raise ValueError("give exactly one of feature, features")
        if self.features is not None and len(set(self.features)) < len(self.features):
            raise ValueError("features must be distinct")  # else "all of them" never holds
        if self.at_least is not None and (self.features is None
                                          or self.at_least > len(self.features)):
            raise ValueError("at_least goes with features and must not exceed their number")
        return self


class ReachedMilestone(_Strict):
    """Reached a declared milestone (its first matching event) in the window (no window:
    ever before as_of)."""

    kind: Literal["reached_milestone"]
    milestone: str = Field(min_length=1, max_length=128)
    window: Window | None = None


class JourneyStage(_Strict):
    """The user's journey stage is `stage` — the furthest milestone (in declared order)
    they have reached, as in profiles — and was reached more than `for_more_than_days`
    days before as_of (0: at that stage now). "Stuck": reached k, not k+1, for N days."""

    kind: Literal["journey_stage"]
    stage: str = Field(min_length=1, max_length=128)
    for_more_than_days: int = Field(default=0, ge=0, le=100_000)


class Nps(_Strict):
    """The latest valid NPS answer (event `nps_submitted`, property `score` an integer
    0-10, as in profiles): its category (promoter 9-10, passive 7-8, detractor 0-6) is
    `category`, or its score compares with `value`. No answer: false."""

    kind: Literal["nps"]
    category: Literal["promoter", "passive", "detractor"] | None = None
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "between"] | None = None
    value: Int64 | tuple[Int64, Int64] | None = None

    @model_validator(mode="after")
    def _one(self) -> Nps:
        if (self.category is None) == (self.op is None):
            raise ValueError("give either category, or op and value")
        if self.op is not None and (self.value is None
                                    or (self.op == "between") != isinstance(self.value, tuple)):
            raise ValueError("op 'between' needs [low, high]; other ops need one integer")
        return self


class SurveyAnswer(_Strict):
    """The user's latest answer to a survey question, compared like a property.

    An answer is any event whose `question` property equals `question`, its value in the
    `answer` property; an `nps_submitted` event answers the question named by its `survey`
    property (e.g. nps-2026-03), its value in `score`. An answer without a value (the
    property missing or JSON null: a skipped question) is no answer and is passed over: of
    the other answers to the question in the window, the latest one counts.
    """

    kind: Literal["survey_answer"]
    question: str = Field(min_length=1, max_length=1024)
    op: Literal["eq", "ne", "in", "not_in", "contains", "regex", "gt", "ge", "lt", "le",
                "between", "is_set"] = "is_set"
    value: Scalar | Values | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _value(self) -> SurveyAnswer:
        PropertyFilter(property="answer", op=self.op, value=self.value)  # same checks
        return self


class Plan(_Strict):
    """The user's latest `plan` trait is `is`, or one of `in` (text, exact)."""

    kind: Literal["plan"]
    is_: str | None = Field(default=None, alias="is", min_length=1, max_length=MAX_TEXT)
    in_: list[Text] | None = Field(default=None, alias="in", min_length=1, max_length=MAX_VALUES)

    @model_validator(mode="after")
    def _one(self) -> Plan:
        if (self.is_ is None) == (self.in_ is None):
            raise ValueError("give exactly one of is, in")
        return self

    def plans(self) -> list[str]:
        return [self.is_] if self.is_ is not None else list(self.in_ or [])


class OnTrial(_Strict):
    """Started a trial (`trial_started`) and neither converted (`trial_converted`) nor
    cancelled (`subscription_cancelled`) at or after its latest start, as in profiles."""

    kind: Literal["on_trial"]


class MissedPayments(_Strict):
    """At least `at_least` `payment_failed` events in the window."""

    kind: Literal["missed_payments"]
    at_least: int = Field(default=1, ge=1, le=1_000_000_000)
    window: Window | None = None


class Step(_Strict):
    """One step of a sequence: an event (with filters), at most `within_*` after the
    previous step (no limit: any time later in the window)."""

    event: str = Field(min_length=1, max_length=1024)
    where: Filters = Field(default_factory=list)
    within_minutes: int | None = Field(default=None, ge=1, le=144_000_000)
    within_hours: int | None = Field(default=None, ge=1, le=2_400_000)
    within_days: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_limit(self) -> Step:
        if sum(v is not None for v in (self.within_minutes, self.within_hours,
                                       self.within_days)) > 1:
            raise ValueError("give at most one of within_minutes, within_hours, within_days")
        return self

    def limit_seconds(self) -> int | None:
        for value, unit in ((self.within_minutes, 60), (self.within_hours, 3600),
                            (self.within_days, 86_400)):
            if value is not None:
                return value * unit
        return None


class Sequence(_Strict):
    """Performed the steps in order: an event of step k+1 strictly after (later timestamp)
    an event of step k, and at most the step's `within_*` after it; every event inside the
    window. Any such chain counts (not only the earliest first step). Other events in
    between do not matter."""

    kind: Literal["sequence"]
    steps: list[Step] = Field(min_length=2, max_length=10)
    window: Window | None = None

    @model_validator(mode="after")
    def _first_unbounded(self) -> Sequence:
        if self.steps[0].limit_seconds() is not None:
            raise ValueError("the first step has no previous step: within_* goes on later steps")
        return self


class Account(_Strict):
    """The user's account (profile.accounts.user_accounts at as_of) has `any` / `all` /
    `none` of its users matching `rule` (evaluated for every user of the project, at the
    same as_of). A user without an account is never a member, whatever `match` says."""

    kind: Literal["account"]
    match: Literal["any", "all", "none"] = "any"
    rule: Rule


EXTRA_CLASSES: dict[str, type[BaseModel]] = {
    "metric": Metric, "used_feature": UsedFeature, "reached_milestone": ReachedMilestone,
    "journey_stage": JourneyStage, "nps": Nps, "survey_answer": SurveyAnswer, "plan": Plan,
    "on_trial": OnTrial, "missed_payments": MissedPayments, "sequence": Sequence,
    "account": Account,
}
