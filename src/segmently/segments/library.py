"""The built-in segment library: the segments most product teams start with, as rules.

They are written over the documented event vocabulary (docs/events.md): sessions start
with a `$page` event, core actions and journey milestones come from the `Vocabulary` it
is given (features flagged `core`, milestones in journey order), feedback and billing
from `segmently.profile.vocabulary`. Thresholds are module constants, named and stated in
each description, so a team can copy a definition into its segmently.yaml and tune it.

`builtin_segments(vocabulary)` returns `SegmentDefinition`s (name, description, rule as
JSON data), in an order where a segment only references segments listed before it.
Next hop: `demo/workspace.py` puts them in the demo's workspace file, which `segmently
demo` applies.
"""

from __future__ import annotations

from typing import Any

from segmently.profile import vocabulary as pv
from segmently.profile.config import Milestone, Vocabulary
from segmently.profile.matchers import EventMatcher
from segmently.segments.workspace import SegmentDefinition

SESSION_EVENT = "$page"  # every session starts with one (docs/events.md, Sessions)

# -- thresholds (each is stated in the description of the segment that uses it) ---------
ACTIVITY_DAYS = 28  # the "recent usage" window: four whole weeks
POWER_DAYS = 14  # power users: active on at least 7 of the last 14 days ...
POWER_ACTIVE_DAYS = 7
POWER_CORE_ACTIONS = 40  # ... and one core action at least 40 times in them
REGULAR_SESSIONS_A_WEEK = 2  # regular: 2+ sessions a week in 2 of the last 3 weeks
REGULAR_WEEKS, REGULAR_OF_WEEKS = 2, 3
DORMANT_DAYS = 14  # dormant: not seen for more than 14 days
NEW_DAYS = 7  # new this week: signed up in the last 7 days
AT_RISK_RECENT, AT_RISK_EARLIER = 14, 28  # a core action in days 15-42 ago, none in 0-14
RESURRECTED_RECENT, RESURRECTED_GAP = 14, 21  # back in the last 14 days after 21+ silent
STUCK_DAYS = 7  # stuck: reached milestone k more than 7 days ago, not k+1
ACTIVATION_DAYS = 14  # activated: reached the activation milestone in the first 14 days
NPS_MONTHS = 12  # NPS answers of the last 12 months
TRIAL_ACTIVE_DAYS, TRIAL_WINDOW = 3, 7  # likely to convert: active 3+ of the last 7 days
PAYMENT_DAYS = 30  # missed a payment: a failed payment in the last 30 days
CHAMPION_ACTIVE_DAYS = 8  # champions: active 8+ of the last 28 days, promoter, paying


def _last(days: int, unit: str = "days") -> dict[str, Any]:
    return {"last": days} if unit == "days" else {"last": days, "unit": unit}


def _events(matchers: list[EventMatcher], kind: str, **extra: Any) -> list[dict[str, Any]]:
    """One condition per matcher (a feature or milestone is any of its events)."""
    return [{"kind": kind, **m.model_dump(mode="json", exclude_defaults=True), **extra}
            for m in matchers]


def _one_or(group: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return rules[0] if len(rules) == 1 else {group: rules}


def _any_of(matchers: list[EventMatcher], kind: str, **extra: Any) -> dict[str, Any]:
    return _one_or("any", _events(matchers, kind, **extra))


def _none_of(matchers: list[EventMatcher], **extra: Any) -> dict[str, Any]:
    return _one_or("all", _events(matchers, "not_performed", **extra))


def _first_before(matchers: list[EventMatcher], days: int) -> dict[str, Any]:
    """Reached (any of the events) more than `days` days ago."""
    return {"all": [_any_of(matchers, "performed"),
                    {"not": _any_of(matchers, "first_performed", window=_last(days))}]}


def _core(vocab: Vocabulary) -> list[EventMatcher]:
    return [m for f in vocab.features if f.core for m in f.events]


def _nps(category: str) -> dict[str, Any]:
    """The latest valid answer (as in profiles, so a user's page and segments agree) is
    of `category`, and the user answered in the last NPS_MONTHS months (an answer with no
    valid score counts as answering: the explanation stays plain)."""
    return {"all": [{"kind": "performed", "event": pv.NPS_EVENT,
                     "window": _last(NPS_MONTHS, "months")},
                    {"kind": "nps", "category": category}]}


def _activity(vocab: Vocabulary) -> list[SegmentDefinition]:
    core = _core(vocab)
    core_count = _any_of(core, "performed", at_least=POWER_CORE_ACTIONS,
                         window=_last(POWER_DAYS))
    return [
        SegmentDefinition(
            name="power_users",
            description=f"Active on at least {POWER_ACTIVE_DAYS} of the last {POWER_DAYS} "
                        f"days and performed one core action at least {POWER_CORE_ACTIONS} "
                        f"times in them.",
            rule={"all": [{"kind": "active", "unit": "day", "at_least": POWER_ACTIVE_DAYS,
                           "window": _last(POWER_DAYS)}, core_count]}),
        SegmentDefinition(
            name="regular",
            description=f"At least {REGULAR_SESSIONS_A_WEEK} sessions a week in "
                        f"{REGULAR_WEEKS} of the last {REGULAR_OF_WEEKS} weeks; not a "
                        f"power user.",
            rule={"all": [{"kind": "regularly", "event": SESSION_EVENT,
                           "at_least": REGULAR_SESSIONS_A_WEEK, "period": "week",
                           "in_at_least": REGULAR_WEEKS, "of_last": REGULAR_OF_WEEKS},
                          {"kind": "not_in_segment", "segment": "power_users"}]}),
        SegmentDefinition(
            name="occasional",
            description=f"Had a session in the last {ACTIVITY_DAYS} days, but neither a "
                        f"power user nor regular.",
            rule={"all": [{"kind": "performed", "event": SESSION_EVENT,
                           "window": _last(ACTIVITY_DAYS)},
                          {"kind": "not_in_segment", "segment": "power_users"},
                          {"kind": "not_in_segment", "segment": "regular"}]}),
        SegmentDefinition(
            name="dormant",
            description=f"No event at all (usage, billing or traits) for more than "
                        f"{DORMANT_DAYS} days.",
            rule={"kind": "last_seen", "more_than_days_ago": DORMANT_DAYS}),
        SegmentDefinition(
            name="new_this_week",
            description=f"Signed up (first milestone) in the last {NEW_DAYS} days.",
            rule=_any_of(vocab.milestones[0].events, "first_performed", window=_last(NEW_DAYS))
            if vocab.milestones else {"any": []}),
        SegmentDefinition(
            name="at_risk",
            description=f"Stopped a core action: did it in the {AT_RISK_EARLIER} days before "
                        f"the last {AT_RISK_RECENT}, and not in the last {AT_RISK_RECENT}.",
            rule=_any_of(core, "stopped", recent_days=AT_RISK_RECENT,
                         earlier_days=AT_RISK_EARLIER)),
        SegmentDefinition(
            name="resurrected",
            description=f"Back: a session in the last {RESURRECTED_RECENT} days after none in "
                        f"the {RESURRECTED_GAP} days before, and first seen earlier than that.",
            rule={"all": [{"kind": "started", "event": SESSION_EVENT,
                           "recent_days": RESURRECTED_RECENT,
                           "earlier_days": RESURRECTED_GAP},
                          {"not": {"kind": "first_performed", "event": SESSION_EVENT,
                                   "window": _last(RESURRECTED_RECENT + RESURRECTED_GAP)}}]}),
    ]


def _journey(vocab: Vocabulary) -> list[SegmentDefinition]:
    ms = vocab.milestones
    activation = _activation(vocab)
    if activation is None or len(ms) < 2:
        return []
    steps = ms[: ms.index(activation) + 1]
    stuck = [{"all": [_first_before(a.events, STUCK_DAYS), _none_of(b.events)]}
             for a, b in zip(steps, steps[1:], strict=False)]
    return [
        SegmentDefinition(
            name="stuck_in_onboarding",
            description=f"Reached a milestone before {activation.name} more than "
                        f"{STUCK_DAYS} days ago and never reached the next one.",
            rule={"any": stuck}),
        SegmentDefinition(
            name="activated",
            description=f"Reached {activation.name} within {ACTIVATION_DAYS} days of first "
                        f"being seen.",
            rule=_any_of(activation.events, "first_performed",
                         window={"within_days_of_first_seen": ACTIVATION_DAYS})),
    ]


def _feedback_billing(vocab: Vocabulary) -> list[SegmentDefinition]:
    answered = f"Latest NPS answer, given in the last {NPS_MONTHS} months,"
    return [
        SegmentDefinition(name="promoters", description=f"{answered} 9 or 10.",
                          rule=_nps("promoter")),
        SegmentDefinition(name="passives", description=f"{answered} 7 or 8.",
                          rule=_nps("passive")),
        SegmentDefinition(name="detractors", description=f"{answered} 0 to 6.",
                          rule=_nps("detractor")),
        SegmentDefinition(
            name="trial_likely_to_convert",
            description=f"On trial (plan trait), has reached "
                        f"{_activation_name(vocab)} and was active on at least "
                        f"{TRIAL_ACTIVE_DAYS} of the last {TRIAL_WINDOW} days.",
            rule={"all": [{"kind": "property", "property": pv.PLAN_TRAIT, "op": "eq",
                           "value": "trial"},
                          _reached_activation(vocab),
                          {"kind": "active", "unit": "day", "at_least": TRIAL_ACTIVE_DAYS,
                           "window": _last(TRIAL_WINDOW)}]}),
        SegmentDefinition(
            name="missed_a_payment",
            description=f"A failed payment in the last {PAYMENT_DAYS} days (even if a retry "
                        f"succeeded later).",
            rule={"kind": "performed", "event": pv.PAYMENT_FAILED,
                  "window": _last(PAYMENT_DAYS)}),
        SegmentDefinition(
            name="champions",
            description=f"Healthy and vocal: active on at least {CHAMPION_ACTIVE_DAYS} of the "
                        f"last {ACTIVITY_DAYS} days, a promoter, on a paid plan and no missed "
                        f"payment.",
            rule={"all": [{"kind": "active", "unit": "day", "at_least": CHAMPION_ACTIVE_DAYS,
                           "window": _last(ACTIVITY_DAYS)},
                          {"kind": "in_segment", "segment": "promoters"},
                          {"kind": "property", "property": pv.PLAN_TRAIT, "op": "not_in",
                           "value": ["trial", "cancelled", "trial_expired"]},
                          {"kind": "not_in_segment", "segment": "missed_a_payment"}]}),
    ]


def _activation(vocab: Vocabulary) -> Milestone | None:
    """The activation ("aha") milestone: the one before the last, since the last step of a
    journey is usually a growth one (the demo's: first_report_created, then
    teammate_invited); the only one for a one-step journey."""
    ms = vocab.milestones
    return ms[max(len(ms) - 2, 0)] if ms else None


def _activation_name(vocab: Vocabulary) -> str:
    m = _activation(vocab)
    return m.name if m else "activation"


def _reached_activation(vocab: Vocabulary) -> dict[str, Any]:
    m = _activation(vocab)
    return _any_of(m.events, "performed") if m else {"all": []}


def _discovery(vocab: Vocabulary) -> list[SegmentDefinition]:
    core = [f for f in vocab.features if f.core]
    other = [f for f in vocab.features if not f.core]
    if len(core) < 2 or not other:
        return []
    x, y, z = core[0], core[1], other[0]
    return [SegmentDefinition(
        name="feature_discovery",
        description=f"Uses {x.name} and {y.name} (in the last {ACTIVITY_DAYS} days) but has "
                    f"never used {z.name}: the audience to introduce it to.",
        rule={"all": [_any_of(x.events, "performed", window=_last(ACTIVITY_DAYS)),
                      _any_of(y.events, "performed", window=_last(ACTIVITY_DAYS)),
                      _none_of(z.events)]})]


def builtin_segments(vocabulary: Vocabulary) -> list[SegmentDefinition]:
    """The library over a product's vocabulary (the demo's: `demo.workspace`)."""
    return [*_activity(vocabulary), *_journey(vocabulary), *_feedback_billing(vocabulary),
            *_discovery(vocabulary)]


def library_rules(vocabulary: Vocabulary) -> dict[str, dict[str, Any]]:
    """name -> rule data, ready for `evaluate`."""
    return {s.name: s.rule for s in builtin_segments(vocabulary)}
