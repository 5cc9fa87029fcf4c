"""Signing up: the onboarding milestones, the identify call and the group call.

Every user's first event is signed_up; the identify (user traits) and group (account link,
and the account's traits when the owner creates it) follow within a second. Later
milestones happen in journey order, each user stopping at their own stage.
Its `EventPart`s go to `generate.py`, which assembles a chunk's rows (`rows.py`).
"""

from __future__ import annotations

import numpy as np

from segmently.demo import parts as k
from segmently.demo import strings as s
from segmently.demo import vocabulary as v
from segmently.demo.parts import EventPart
from segmently.demo.population import Population

SOURCE_TYPES = ("postgres", "snowflake", "bigquery", "mysql", "csv_upload", "google_sheets")
SIGNUP_METHODS = ("email", "google", "sso")


def milestones(rng: np.random.Generator, pop: Population) -> EventPart:
    u = pop.users
    parts = []
    account = pop.accounts.first + u.account
    for stage in range(5):
        who = np.flatnonzero(~np.isnan(u.milestone_at[:, stage]))
        n = len(who)
        acc = s.num(account[who])
        match stage:
            case 0:
                props = s.json_object([
                    ("method", s.quoted(s.pick(SIGNUP_METHODS, rng.choice(3, n, p=[.6, .3, .1])))),
                    ("invited", s.pick(("false", "true"), (~u.owner[who]).astype(int)))])
            case 1:
                props = s.json_object([("workspace_id", s.quoted(s.concat("ws_", acc)))])
            case 2:
                props = s.json_object([("source_type", s.quoted(
                    s.pick(SOURCE_TYPES, rng.integers(0, len(SOURCE_TYPES), n))))])
            case 3:
                props = s.json_object([("report_id", s.quoted(s.concat("rpt_", acc, "_0")))])
            case _:
                props = s.json_object([("invitee_role", s.quoted(
                    s.pick(v.ROLES[1:], rng.integers(0, len(v.ROLES) - 1, n))))])
        parts.append(EventPart(who, u.milestone_at[who, stage], np.full(n, stage), props))
    return EventPart.concat(parts)


def signup_calls(pop: Population) -> EventPart:
    """identify with every user trait, then group: the owner's creates the account."""
    u = pop.users
    n = u.n
    everyone = np.arange(n)
    empty = s.const("{}", n)
    identify = EventPart(everyone, u.signup + 0.2, np.full(n, k.IDENTIFY_SIGNUP), empty)
    group = EventPart(everyone, u.signup + 0.4,
                      np.where(u.owner, k.GROUP_CREATE, k.GROUP_JOIN), empty)
    return EventPart.concat([identify, group])
