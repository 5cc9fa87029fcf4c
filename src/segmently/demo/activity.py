"""Product usage: sessions of page and feature events, and NPS answers given in them.

Sessions are drawn per user and active period (Poisson in the period's length and the
persona's rate), placed on working hours of the user's day with quieter weekends; inside
a session events follow each other by seconds to minutes, so a 30-minute sessionisation
recovers them. All of it is array arithmetic over every session / event of the chunk.
Its `EventPart`s go to `generate.py`, which assembles a chunk's rows (`rows.py`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segmently.demo import parts as k
from segmently.demo import strings as s
from segmently.demo.parts import EventPart, by_kind
from segmently.demo.population import DAY, Population

# per persona: power, regular, occasional, dormant, churned, resurrected
SESSIONS_PER_DAY = np.array([1.8, 0.70, 0.15, 0.60, 0.45, 0.50])
EVENTS_PER_SESSION = np.array([9.0, 5.5, 2.5, 3.0, 3.5, 4.0])
# report_viewed, dashboard_viewed, report_created, alert, export, api, sql
FEATURE_MIX = np.array([
    [0.30, 0.22, 0.12, 0.08, 0.10, 0.08, 0.10],
    [0.38, 0.30, 0.10, 0.05, 0.09, 0.03, 0.05],
    [0.45, 0.40, 0.05, 0.02, 0.06, 0.01, 0.01],
    [0.45, 0.40, 0.08, 0.02, 0.03, 0.01, 0.01],
    [0.42, 0.33, 0.08, 0.04, 0.08, 0.02, 0.03],
    [0.38, 0.30, 0.10, 0.05, 0.09, 0.03, 0.05],
])
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 12, 15, 17, 16, 13, 9, 6, 5,
                         4, 3, 2, 1], float)
TZ_HOURS = np.array([-8, -5, 0, 1, 2, 5.5, 8, 9, -3, 10, -6, 3])  # by device, as context
WEEKEND_DROP = 0.7
NPS_ANSWER_P = np.array([0.45, 0.35, 0.15, 0.10, 0.40, 0.30])
NPS_CATEGORY_P = np.array([[0.70, 0.22, 0.08], [0.45, 0.35, 0.20], [0.20, 0.40, 0.40],
                           [0.10, 0.30, 0.60], [0.08, 0.22, 0.70], [0.30, 0.40, 0.30]])
COMMENTS = (("love the dashboards", "alerts save me hours", "best BI tool we used"),
            ("good but slow exports", "would like more chart types", "solid product"),
            ("too expensive for us", "hard to connect our data", "missing SQL features"))
PAGES = ('{"path":"/app","title":"Home"}', '{"path":"/app/reports","title":"Reports"}',
         '{"path":"/app/dashboards","title":"Dashboards"}',
         '{"path":"/app/settings","title":"Settings"}', '{"path":"/app/data","title":"Data"}')


def sessions(rng: np.random.Generator, pop: Population, start_day: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, start, end of the active period) per session. The first session of each
    active period starts when it starts (signing up, coming back)."""
    u = pop.users
    rate = SESSIONS_PER_DAY[u.persona] * np.where(u.stage < 2, 0.4, 1.0)
    p_start, p_end = u.phase_start.ravel(), u.phase_end.ravel()  # user-major: (u0p0, u0p1...)
    exists = ~np.isnan(p_start)
    length = np.where(exists, p_end - p_start, 0.0)
    n = np.where(exists, 1 + rng.poisson(np.repeat(rate, 2) * length / DAY), 0)
    period = np.repeat(np.arange(len(n)), n)
    first = np.zeros(len(period), bool)
    first[np.cumsum(n)[n > 0] - n[n > 0]] = True
    start = p_start[period] + rng.random(len(period)) * length[period]
    user = period // 2
    tz = TZ_HOURS[u.device[user]] * 3600
    day = np.floor((start + tz) / DAY)
    hour = rng.choice(24, len(period), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    start = day * DAY + (hour + rng.random(len(period))) * 3600 - tz
    weekend = (start_day + day.astype(np.int64) + 3) % 7 >= 5
    keep = ((start >= p_start[period]) & (start < p_end[period])
            & ~(weekend & (rng.random(len(period)) < WEEKEND_DROP)))
    start = np.where(first, p_start[period] + 5, start)
    keep |= first
    return user[keep], start[keep], p_end[period][keep]


def usage(rng: np.random.Generator, pop: Population, start_day: int) -> EventPart:
    """Every session: a page view, then feature events seconds to minutes apart."""
    u = pop.users
    s_user, s_start, s_end = sessions(rng, pop, start_day)
    per = 2 + rng.poisson(EVENTS_PER_SESSION[u.persona[s_user]])  # the page view + features
    sess = np.repeat(np.arange(len(per)), per)
    pos = np.arange(len(sess)) - np.repeat(np.cumsum(per) - per, per)
    gap = np.where(pos == 0, 0.0, np.clip(rng.exponential(75, len(sess)), 2, 900))
    cum = np.cumsum(gap)
    ts = s_start[sess] + cum - cum[np.cumsum(per) - per][sess]
    user = s_user[sess]
    kind = k.FEATURE_KINDS[0] + draw_rows(rng, FEATURE_MIX[u.persona[user]])
    first_report = np.nan_to_num(u.milestone_at[user, 3], nan=np.inf)
    advanced = kind >= k.ADVANCED_KINDS[0]
    adopted = u.adopted[user, np.clip(kind - k.ADVANCED_KINDS[0], 0, 3)]
    kind = np.where(advanced & (~adopted | (ts < first_report)), k.DASHBOARD_VIEWED, kind)
    kind = np.where((kind == k.REPORT_CREATED) & (ts < first_report), k.REPORT_VIEWED, kind)
    kind = np.where(pos == 0, k.PAGE, kind)
    keep = ts < s_end[sess]
    user, ts, kind = user[keep], ts[keep], kind[keep]
    order, groups = by_kind(kind)
    user, ts, kind = user[order], ts[order], kind[order]
    account = pop.accounts.first + u.account[user]
    props = [feature_properties(rng, kk, account[sl]) for kk, sl in groups]
    empty = pa.array([], pa.string())
    return EventPart(user, ts, kind, pa.concat_arrays(props) if props else empty)


def draw_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cum = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def feature_properties(rng: np.random.Generator, kind: int, account: np.ndarray) -> pa.Array:
    n = len(account)
    acc = s.num(account)

    def obj_id(prefix: str, count: int) -> pa.Array:
        return s.quoted(s.concat(prefix, acc, "_", s.num(rng.integers(0, count, n))))

    def choice(options: tuple[str, ...]) -> pa.Array:
        return s.quoted(s.pick(options, rng.integers(0, len(options), n)))

    def lognum(median: float, sigma: float) -> pa.Array:
        return s.num(np.round(rng.lognormal(np.log(median), sigma, n)))

    match kind:
        case k.PAGE:
            return s.pick(PAGES, rng.choice(len(PAGES), n, p=[0.4, 0.25, 0.2, 0.05, 0.1]))
        case k.REPORT_VIEWED:
            return s.json_object([("report_id", obj_id("rpt_", 12)),
                                  ("source", choice(("list", "search", "link", "email")))])
        case k.DASHBOARD_VIEWED:
            return s.json_object([("dashboard_id", obj_id("dsh_", 6))])
        case k.REPORT_CREATED:
            return s.json_object([("report_id", obj_id("rpt_", 40)),
                                  ("chart", choice(("line", "bar", "table", "pie")))])
        case k.ALERT:
            return s.json_object([("alert_id", obj_id("alr_", 10)),
                                  ("channel", choice(("email", "slack", "webhook")))])
        case k.EXPORT:
            return s.json_object([("format", choice(("csv", "xlsx", "pdf"))),
                                  ("rows", lognum(800, 1.5))])
        case k.API:
            status = s.pick(("200", "200", "200", "200", "200", "200", "201", "429", "500"),
                            rng.integers(0, 9, n))
            return s.json_object([("endpoint", choice(("/v1/reports", "/v1/query",
                                                       "/v1/dashboards", "/v1/exports"))),
                                  ("status", status)])
        case k.SQL:
            return s.json_object([("duration_ms", lognum(400, 1.2)),
                                  ("rows", lognum(200, 2.0))])
    raise AssertionError(kind)


def nps_answers(rng: np.random.Generator, pop: Population, used: EventPart,
                window_start_us: int) -> EventPart:
    """At most one answer per user, given during a late session, 7+ days after signup."""
    u = pop.users
    order = np.lexsort((used.ts, used.user))
    user, ts = used.user[order], used.ts[order]
    count = np.bincount(user, minlength=u.n)
    first = np.cumsum(count) - count
    wants = (rng.random(u.n) < NPS_ANSWER_P[u.persona]) & (count > 0)
    who = np.flatnonzero(wants)
    at = first[who] + np.floor((0.5 + 0.5 * rng.random(len(who))) * count[who]).astype(int)
    at_ts = ts[at] + 1.5
    ok = at_ts >= u.signup[who] + 7 * DAY
    who, at_ts = who[ok], at_ts[ok]
    n = len(who)
    category = draw_rows(rng, NPS_CATEGORY_P[u.persona[who]])  # promoter, passive, detractor
    score = np.select([category == 0, category == 1],
                      [9 + rng.integers(0, 2, n), 7 + rng.integers(0, 2, n)],
                      rng.choice(7, n, p=[0.04, 0.04, 0.08, 0.12, 0.18, 0.24, 0.30]))
    month = (window_start_us + (at_ts * 1e6).astype(np.int64)).astype("datetime64[us]")
    survey = s.concat("nps-", pa.array(month.astype("datetime64[M]").astype(str)))
    comment_idx = category * 3 + rng.integers(0, 3, n)
    comment = s.quoted(s.pick([c for group in COMMENTS for c in group], comment_idx))
    props = s.concat('{"score":', s.num(score), ',"survey":', s.quoted(survey),
                     s.optional_field("comment", comment, rng.random(n) < 0.35), "}")
    return EventPart(who, at_ts, np.full(n, k.NPS), props, arg=score)
