"""A reference evaluator in plain Python: slow, obviously right, written from the rule
language's documented semantics (not from the engine's code), for the property tests.

Events are dicts: user, event, type, ts, received (naive UTC datetimes), props (dict).
It covers the condition kinds the property test generates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

ACTIVITY = {"track", "page", "screen"}


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


def _matching(evs: list[dict[str, Any]], c: dict[str, Any],
              start: datetime | None) -> list[dict[str, Any]]:
    return [e for e in evs if e["event"] == c["event"] and _passes(e, c.get("where", []))
            and (start is None or e["ts"] >= start)]


def holds(rule: dict[str, Any], evs: list[dict[str, Any]], as_of: datetime) -> bool:
    """Is `rule` true for the user whose known events are `evs`?"""
    if "all" in rule:
        return all(holds(r, evs, as_of) for r in rule["all"])
    if "any" in rule:
        return any(holds(r, evs, as_of) for r in rule["any"])
    if "not" in rule:
        return not holds(rule["not"], evs, as_of)
    kind = rule["kind"]
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
             as_of: datetime) -> dict[str, set[str]]:
    evs = known(events, as_of)
    users = {e["user"] for e in evs}
    by_user = {u: [e for e in evs if e["user"] == u] for u in users}
    return {name: {u for u in users if holds(rule, by_user[u], as_of)}
            for name, rule in rules.items()}
