"""The demo's planted effects, so the insights pages show something true on first run and
the tests can check that the analyses recover it:

- a feature that drives retention: an owner who creates an alert in the first week
  (`population.EARLY_ALERT_*`: a share of those who built a first report) converts the
  trial far more often and cancels less, so "created an alert in the first 7 days" goes
  with being retained at day 30; `early_alerts` emits those alerts;
- a campaign with a real lift: `show_alerts` (demo/workspace.py: a tour for
  feature_discovery, 20% holdout, goal alert_created within 14 days) has run for the last
  `campaign_days(days)` days. A user qualifies at their first session in that time after
  their first report and before any alert of theirs; the arm is the server's own draw
  (`act/assignments.draw`); most of the treatment is shown the tour (a `campaign_shown`
  event, as the SDK sends it) and a share of those shown create an alert in the next days
  (`LIFT`), which the holdout never gets. The assignments are recorded by `run_demo`
  (`act/assignments.record`).

Every draw comes from the chunk's planting generator (its own stream), so the rest of
the generated data draws the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from segmently.act import assignments
from segmently.demo import parts as k
from segmently.demo import strings as s
from segmently.demo.activity import feature_properties
from segmently.demo.parts import EventPart
from segmently.demo.population import DAY, Population

CAMPAIGN = "show_alerts"
SHOWN_P = 0.9  # of the treatment: the others never reached the tour's page again
LIFT = 0.4  # of those shown: create an alert because of it
IMMEDIATE_P = 0.5  # of those: right after the tour, the others days later (mean 2)


def campaign_days(days: int) -> int:
    """How long the campaign has run by the end of the window."""
    return min(45, days // 2)


def early_alerts(rng: np.random.Generator, pop: Population) -> EventPart:
    """The first-week alerts of the planted retention effect."""
    u = pop.users
    who = np.flatnonzero(~np.isnan(u.early_alert))
    account = pop.accounts.first + u.account[who]
    return EventPart(who, u.early_alert[who], np.full(len(who), k.ALERT),
                     feature_properties(rng, k.ALERT, account))


@dataclass
class Arms:
    """The chunk's assignments: chunk-local user, seconds since the window start, held
    out or not."""

    user: np.ndarray
    at: np.ndarray
    holdout: np.ndarray

    @classmethod
    def empty(cls) -> Arms:
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool))


def show_alerts(rng: np.random.Generator, pop: Population, used: EventPart,
                user_ids: pa.Array, days: int, holdout_percent: float
                ) -> tuple[EventPart, Arms]:
    """The campaign's exposures and the alerts it caused, and who was assigned when."""
    u = pop.users
    start = pop.window - campaign_days(days) * DAY
    alert = (used.kind == k.ALERT)
    first_alert = np.full(u.n, np.inf)
    np.minimum.at(first_alert, used.user[alert], used.ts[alert])
    early = ~np.isnan(u.early_alert)
    first_alert[early] = np.minimum(first_alert[early], u.early_alert[early])
    first_report = np.nan_to_num(u.milestone_at[:, 3], nan=np.inf)
    page = used.kind == k.PAGE  # each session's first event
    user, ts = used.user[page], used.ts[page]
    ok = ((ts >= start) & (ts > first_report[user]) & (ts < first_alert[user])
          & (ts < pop.window - 3600))
    user, ts = user[ok], ts[ok]
    order = np.lexsort((ts, user))
    user, ts = user[order], ts[order]
    first = np.ones(len(user), bool)
    first[1:] = user[1:] != user[:-1]
    who, at = user[first], ts[first] + 3.0  # the tour's trigger, a moment after the page
    ids = user_ids.take(pa.array(who)).to_pylist()
    held = np.array([assignments.draw(CAMPAIGN, i, holdout_percent) == "holdout"
                     for i in ids], bool)
    n = len(who)
    shown = ~held & (rng.random(n) < SHOWN_P)
    # the phase the assignment falls in ends the user's activity: no alert after it
    phase_end = np.where(at < u.phase_end[who, 0], u.phase_end[who, 0],
                         np.nan_to_num(u.phase_end[who, 1], nan=pop.window))
    later = rng.random(n) >= IMMEDIATE_P
    delay = np.where(later, rng.exponential(2 * DAY, n) + 600, rng.uniform(20, 600, n))
    converted = shown & (rng.random(n) < LIFT) & (delay < 14 * DAY) & \
        (at + delay < np.minimum(phase_end, pop.window))
    account = pop.accounts.first + u.account
    c = np.flatnonzero(converted)
    made = EventPart(who[c], at[c] + delay[c], np.full(len(c), k.ALERT),
                     feature_properties(rng, k.ALERT, account[who[c]]))
    sh = np.flatnonzero(shown)
    props = s.const(f'{{"campaign":"{CAMPAIGN}","campaign_version":1,"kind":"tour"}}',
                    len(sh))
    exposures = EventPart(who[sh], at[sh] + 1.0, np.full(len(sh), k.CAMPAIGN_SHOWN), props)
    return EventPart.concat([exposures, made]), Arms(who, at, held)
