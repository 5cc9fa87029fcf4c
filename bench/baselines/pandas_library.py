"""The built-in segment library in plain pandas: load the tables, one groupby per condition.

Written from the documented semantics (ARCHITECTURE.md "Segment engine", segments/rules.py,
segments/windows.py), independently of the engine, the way an analyst with a notebook
would: read the project's events, identities and traits into DataFrames, keep what was
known at as_of, attribute events to people, and compute each condition as a per-person
Series. `library(con, project_id, as_of)` returns one row per person (user_id) and one
boolean column per segment, like bench/baselines/library.sql.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta

import duckdb
import pandas as pd

ACTIVITY_TYPES = ("track", "page", "screen")
CORE = ("report_viewed", "dashboard_viewed", "report_created")
SESSION = "$page"
NOT_PAID = ("trial", "cancelled", "trial_expired")
WHOLE = re.compile(r"\s*-?[0-9]+(\.0*)?\s*")


def load(con: duckdb.DuckDBPyConnection, project_id: str, table: str,
         columns: str) -> pd.DataFrame:
    return con.execute(f"SELECT {columns} FROM {table} WHERE project_id = ?",
                       [project_id]).df()


def links_at(identities: pd.DataFrame, as_of: datetime) -> pd.Series:
    """alias_id -> user_id, the latest link known at as_of."""
    known = identities[(identities.linked_at < as_of) & (identities.received_at <= as_of)]
    latest = known.sort_values(["linked_at", "received_at"]).drop_duplicates("alias_id",
                                                                             keep="last")
    return latest.set_index("alias_id").user_id


def resolve(ids: pd.Series, links: pd.Series) -> pd.Series:
    return ids.map(links).fillna(ids)


def events_at(events: pd.DataFrame, links: pd.Series, as_of: datetime) -> pd.DataFrame:
    e = events[(events.timestamp < as_of) & (events.received_at <= as_of)]
    return e.assign(person=resolve(e.user_id.fillna(e.anonymous_id), links))


def plan_at(traits: pd.DataFrame, links: pd.Series, as_of: datetime) -> pd.Series:
    """person -> latest `plan` trait text (a plain set beats set_once; latest set wins,
    the first set_once among set_once only)."""
    t = traits[(traits.kind == "user") & (traits.trait == "plan") & (traits.set_at < as_of)
               & (traits.received_at <= as_of)]
    t = t.assign(person=resolve(t.entity_id, links))
    sets = t[~t.once].sort_values(["set_at", "received_at"], ascending=[False, False])
    once = t[t.once].sort_values(["set_at", "received_at"], ascending=[True, False])
    t = pd.concat([sets, once])
    latest = t.drop_duplicates("person").set_index("person").value
    return latest.map(lambda v: None if v is None else json.loads(v)).map(
        lambda v: v if isinstance(v, str) or v is None else json.dumps(v))


def whole(value: object) -> float:
    """A whole number as the JSON text spells it ("8", " 8 ", 8.0 -> "8.0"); else NaN
    ("1e1", 8.5, booleans, null)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    text = value if isinstance(value, str) else json.dumps(value)
    return float(text) if WHOLE.fullmatch(text) else math.nan


class People:
    """Per-person aggregates over the resolved events, each reindexed to every person."""

    def __init__(self, e: pd.DataFrame, as_of: datetime) -> None:
        self.e, self.as_of = e, as_of
        by = e.groupby("person").timestamp
        self.first_seen, self.last_seen = by.min(), by.max()
        self.index = self.first_seen.index

    def since(self, days: int) -> pd.Series:
        return self.e.timestamp >= self.as_of - timedelta(days=days)

    def between(self, start_days: int, end_days: int) -> pd.Series:
        """[as_of - start_days, as_of - end_days)"""
        ts = self.e.timestamp
        return (ts >= self.as_of - timedelta(days=start_days)) & \
            (ts < self.as_of - timedelta(days=end_days))

    def named(self, event: str) -> pd.Series:
        return self.e.event == event

    def count(self, mask: pd.Series) -> pd.Series:
        return self.e[mask].groupby("person").size().reindex(self.index, fill_value=0)

    def first(self, mask: pd.Series) -> pd.Series:
        return self.e[mask].groupby("person").timestamp.min().reindex(self.index)

    def active_days(self, days: int) -> pd.Series:
        e = self.e[self.e.type.isin(ACTIVITY_TYPES) & self.since(days)]
        return e.timestamp.dt.floor("D").groupby(e.person).nunique().reindex(
            self.index, fill_value=0)

    def nps_latest(self) -> pd.Series:
        """The latest whole-number answer 0-10, for people who answered in 12 months."""
        e = self.e[self.named("nps_submitted")]
        score = e.properties.map(lambda p: whole(json.loads(p).get("score")))
        valid = e[score.between(0, 10)].assign(score=score).sort_values("timestamp")
        latest = valid.groupby("person").score.last().reindex(self.index)
        recent = e.timestamp >= pd.Timestamp(self.as_of) - pd.DateOffset(months=12)
        return latest.where(e[recent].groupby("person").size().reindex(self.index) > 0)


def library(con: duckdb.DuckDBPyConnection, project_id: str, as_of: datetime) -> pd.DataFrame:
    events = load(con, project_id, "events",
                  "user_id, anonymous_id, type, event, timestamp, received_at, properties")
    links = links_at(load(con, project_id, "identities", "*"), as_of)
    p = People(events_at(events, links, as_of), as_of)
    plan = plan_at(load(con, project_id, "traits", "*"), links, as_of).reindex(p.index)
    return segments(p, plan)


def segments(p: People, plan: pd.Series) -> pd.DataFrame:
    s: dict[str, pd.Series] = {}
    recent = {e: p.count(p.named(e) & p.since(14)) for e in CORE}
    s["power_users"] = (p.active_days(14) >= 7) & \
        pd.concat([recent[e] >= 40 for e in CORE], axis=1).any(axis=1)
    session = p.named(SESSION)
    weeks = sum((p.count(session & p.between(7 * (i + 1), 7 * i)) >= 2).astype(int)
                for i in range(3))
    s["regular"] = (weeks >= 2) & ~s["power_users"]
    s["occasional"] = (p.count(session & p.since(28)) > 0) & ~s["power_users"] & ~s["regular"]
    s["dormant"] = p.last_seen < p.as_of - timedelta(days=14)
    reached = {m: p.first(p.named(m)) for m in (
        "signed_up", "workspace_created", "data_source_connected", "first_report_created")}
    s["new_this_week"] = reached["signed_up"] >= p.as_of - timedelta(days=7)
    s["at_risk"] = pd.concat([(p.count(p.named(e) & p.between(42, 14)) > 0) & (recent[e] == 0)
                              for e in CORE], axis=1).any(axis=1)
    s["resurrected"] = (p.count(session & p.since(14)) > 0) & \
        (p.count(session & p.between(35, 14)) == 0) & \
        (p.first(session) < p.as_of - timedelta(days=35))
    steps = list(reached.values())
    s["stuck_in_onboarding"] = pd.concat(
        [(a < p.as_of - timedelta(days=7)) & b.isna()
         for a, b in zip(steps, steps[1:], strict=False)],
        axis=1).any(axis=1)
    s["activated"] = reached["first_report_created"] < p.first_seen + timedelta(days=14)
    nps = p.nps_latest()
    s["promoters"] = nps >= 9
    s["passives"] = (nps >= 7) & (nps < 9)
    s["detractors"] = nps < 7
    s["trial_likely_to_convert"] = (plan == "trial") & reached["first_report_created"].notna() \
        & (p.active_days(7) >= 3)
    s["missed_a_payment"] = p.count(p.named("payment_failed") & p.since(30)) > 0
    s["champions"] = (p.active_days(28) >= 8) & s["promoters"] & plan.notna() & \
        ~plan.isin(NOT_PAID) & ~s["missed_a_payment"]
    s["feature_discovery"] = (p.count(p.named("report_viewed") & p.since(28)) > 0) & \
        (p.count(p.named("dashboard_viewed") & p.since(28)) > 0) & \
        (p.count(p.named("alert_created")) == 0)
    out = pd.DataFrame(s).fillna(False).astype(bool)
    return out.rename_axis("user_id").reset_index()
