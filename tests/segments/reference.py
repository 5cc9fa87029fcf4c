"""A reference evaluator in plain Python: slow, obviously right, written from the rule
language's documented semantics (not from the engine's code), for the property tests.

Events are dicts: user, event, type, ts, received (naive UTC datetimes), props (dict),
and optionally traits (dict: user traits an identify sets) and account (str: the account of
a group call). Features are {name: [(event, where), ...]}. It covers the condition kinds
the property tests generate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

ACTIVITY = {"track", "page", "screen"}
Features = dict[str, list[tuple[str, list[dict[str, Any]]]]]
PRODUCT_KINDS = {"used_feature", "missed_payments", "sequence", "plan", "account"}


@dataclass
class World:
    """Everything known at as_of: each user's events, the declared features."""

    as_of: datetime
    by_user: dict[str, list[dict[str, Any]]]
    features: Features = field(default_factory=dict)

    def account(self, user: str) -> str | None:
        """The account of the user's latest group call (the only events carrying one)."""
        calls = [e for e in self.by_user[user] if e.get("account")]
        return max(calls, key=lambda e: e["ts"])["account"] if calls else None

    def plan(self, user: str) -> str | None:
        """The latest value of the user's `plan` trait."""
        sets = [e for e in self.by_user[user] if "plan" in (e.get("traits") or {})]
        return max(sets, key=lambda e: e["ts"])["traits"]["plan"] if sets else None


def known(events: list[dict[str, Any]], as_of: datetime) -> list[dict[str, Any]]:
    """What had happened (ts < as_of) and was known (received <= as_of) at as_of."""
    return [e for e in events if e["ts"] < as_of and e["received"] <= as_of]


def _start(window: dict[str, Any] | None, as_of: datetime) -> datetime | None:
    if window is None:
        return None
    assert window.get("unit", "days") == "days", "the reference knows day windows only"
    return as_of - timedelta(days=window["last"])


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _passes(e: dict[str, Any], where: list[dict[str, Any]]) -> bool:
    for f in where:
        v = _number(e["props"].get(f["property"]))
        target = f["value"]
        ok = v is not None and {"eq": v == target, "ge": v >= target, "lt": v < target}[f["op"]]
        if not ok:
            return False
    return True


def _matching(evs: list[dict[str, Any]], c: dict[str, Any] | None,
              start: datetime | None) -> list[dict[str, Any]]:
    """The events of `c` (an event name and where filters; None: any event) from `start`."""
    return [e for e in evs if (c is None or e["event"] == c["event"]
                               and _passes(e, c.get("where", [])))
            and (start is None or e["ts"] >= start)]


def _sequence(evs: list[dict[str, Any]], steps: list[dict[str, Any]],
              start: datetime | None) -> bool:
    """A chain of events, one per step, each strictly later than the previous one and at
    most its step's within_hours after it, all inside the window."""
    inside = _matching(evs, None, start)
    ends = {e["ts"] for e in _matching(inside, steps[0], None)}
    for step in steps[1:]:
        limit = timedelta(hours=step["within_hours"]) if "within_hours" in step else None
        ends = {e["ts"] for e in _matching(inside, step, None)
                if any(t < e["ts"] and (limit is None or e["ts"] - t <= limit) for t in ends)}
    return bool(ends)


def _used(evs: list[dict[str, Any]], matchers: list[tuple[str, list[dict[str, Any]]]],
          start: datetime | None) -> bool:
    """Any activity event (track/page/screen) of the feature's matchers from `start`."""
    activity = [e for e in evs if e["type"] in ACTIVITY]
    return any(_matching(activity, {"event": name, "where": where}, start)
               for name, where in matchers)


def _product(rule: dict[str, Any], user: str, world: World) -> bool:
    """The kinds of conditions.py the property tests generate."""
    kind, evs = rule["kind"], world.by_user[user]
    start = _start(rule.get("window"), world.as_of)
    if kind == "used_feature":
        names = rule["features"] if "features" in rule else [rule["feature"]]
        used = sum(_used(evs, world.features[n], start) for n in names)
        return used >= rule.get("at_least", len(names))
    if kind == "missed_payments":
        failed = _matching(evs, {"event": "payment_failed"}, start)
        return len(failed) >= rule.get("at_least", 1)
    if kind == "sequence":
        return _sequence(evs, rule["steps"], start)
    if kind == "plan":
        return world.plan(user) in (rule["in"] if "in" in rule else [rule["is"]])
    if kind == "account":
        account = world.account(user)
        if account is None:
            return False
        mates = [u for u in world.by_user if world.account(u) == account]
        matching = sum(holds(rule["rule"], u, world) for u in mates)
        match = rule.get("match", "any")
        return {"any": matching > 0, "all": matching == len(mates),
                "none": matching == 0}[match]
    raise AssertionError(kind)


def holds(rule: dict[str, Any], user: str, world: World) -> bool:
    """Is `rule` true for `user` in the world known at as_of?"""
    if "all" in rule:
        return all(holds(r, user, world) for r in rule["all"])
    if "any" in rule:
        return any(holds(r, user, world) for r in rule["any"])
    if "not" in rule:
        return not holds(rule["not"], user, world)
    kind, evs, as_of = rule["kind"], world.by_user[user], world.as_of
    if kind in PRODUCT_KINDS:
        return _product(rule, user, world)
    if kind == "restarted":  # an event in the window >= gap_days after the one before it
        times = sorted(e["ts"] for e in _matching(evs, rule, None))
        since = _start(rule.get("window", {"last": 30}), as_of)
        gap = timedelta(days=rule["gap_days"])
        return any(later >= since and later - earlier >= gap  # type: ignore[operator]
                   for earlier, later in zip(times, times[1:], strict=False))
    start = _start(rule.get("window"), as_of)
    if kind == "performed":
        n = len(_matching(evs, rule, start))
        if "exactly" in rule:
            return n == rule["exactly"]
        low = rule.get("at_least", 0 if "at_most" in rule else 1)
        return n >= low and ("at_most" not in rule or n <= rule["at_most"])
    if kind == "not_performed":
        return not _matching(evs, rule, start)
    if kind == "active":
        days = {(e["ts"] - datetime(1970, 1, 1)).days for e in evs
                if e["type"] in ACTIVITY and (start is None or e["ts"] >= start)}
        return len(days) >= rule["at_least"]
    if kind == "aggregate":
        values = [v for e in _matching(evs, rule, start)
                  if (v := _number(e["props"].get(rule["property"]))) is not None]
        if rule["agg"] == "sum":
            got: float | None = sum(values)
        elif rule["agg"] == "distinct_count":
            got = len(set(values))
        else:
            got = max(values) if values else None
        if got is None:
            return False
        return {"ge": got >= rule["value"], "lt": got < rule["value"],
                "eq": got == rule["value"]}[rule["op"]]
    if kind == "first_performed":
        firsts = sorted(e["ts"] for e in _matching(evs, rule, None))
        return bool(firsts) and (start is None or firsts[0] >= start)
    if kind == "last_seen":
        last = max(e["ts"] for e in evs)
        bound = as_of - timedelta(days=rule.get("more_than_days_ago",
                                                rule.get("within_last_days", 0)))
        return last < bound if "more_than_days_ago" in rule else last >= bound
    raise AssertionError(kind)


def evaluate(events: list[dict[str, Any]], rules: dict[str, dict[str, Any]],
             as_of: datetime, features: Features | None = None) -> dict[str, set[str]]:
    evs = known(events, as_of)
    users = {e["user"] for e in evs}
    world = World(as_of, {u: [e for e in evs if e["user"] == u] for u in users},
                  features or {})
    return {name: {u for u in users if holds(rule, u, world)} for name, rule in rules.items()}
