"""Accounts and users of one chunk: sizes, plans, trial outcomes, personas, journeys.

Everything is a numpy array over the chunk's accounts or users (no per-user Python), and
every random draw comes from the chunk's own generator, so a chunk is a pure function of
(seed, chunk number). Times are float seconds since the start of the window.

Causality is built in so segments find real structure: an owner who reaches
first_report_created converts far more often; a converted account may cancel, and then
its users fade out before the cancellation (churned); an unconverted trial expires and
its users go quiet (dormant); some users of live accounts vanish for weeks and come back
(resurrected). Read by the event generators (`journey.py`, `activity.py`, `billing.py`)
and `rows.py`; `generate.py` draws one per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmently.demo import vocabulary as v

DAY = 86_400.0
HOUR = 3_600.0
NAN = np.nan

# account outcomes at the end of the window
LIVE_TRIAL, PAID, CANCELLED, EXPIRED = 0, 1, 2, 3
POWER, REGULAR, OCCASIONAL, DORMANT, CHURNED, RESURRECTED = range(6)
# plan codes index vocabulary.PLANS: trial, starter, growth, enterprise, cancelled, expired
PLAN_TRIAL, PLAN_CANCELLED, PLAN_EXPIRED = 0, 4, 5

TIER_BY_SIZE = np.array([[0.75, 0.25, 0.0], [0.25, 0.60, 0.15], [0.0, 0.40, 0.60]])
PERSONA_LIVE = np.array([0.14, 0.41, 0.28, 0.0, 0.0, 0.17])  # accounts still alive
PERSONA_TRIAL = np.array([0.20, 0.45, 0.35, 0.0, 0.0, 0.0])  # trial still running
STAGE_ADVANCE = np.array([0.92, 0.78, 0.80, 0.35])  # P(next milestone | previous)
CANCEL_P = np.array([0.35, 0.25, 0.12])  # per paid tier
CURRENCY_P = np.array([0.7, 0.2, 0.1])
ROLE_P = np.array([0.0, 0.35, 0.25, 0.2, 0.2])  # invitees; owners are admins
FIRST_NAMES = ("ada", "alan", "grace", "linus", "margaret", "dennis", "barbara", "ken",
               "frances", "edsger", "hedy", "tim", "radia", "guido", "katherine", "john",
               "joan", "donald", "mary", "claude", "sophie", "bjarne", "anita", "niklaus",
               "lynn", "james", "karen", "brian", "adele", "vint", "shafi", "leslie",
               "ruth", "yukihiro", "fran", "rasmus", "jean", "larry", "annie", "seymour",
               "carol")  # 41 names: a prime, so first names differ within an account
LAST_NAMES = ("lovelace", "turing", "hopper", "torvalds", "hamilton", "ritchie", "liskov",
              "thompson", "allen", "dijkstra", "lamarr", "berners", "perlman", "rossum",
              "johnson", "mccarthy", "clarke", "knuth", "keller", "shannon", "wilson",
              "stroustrup", "borg", "wirth", "conway", "gosling", "jones", "kernighan",
              "goldberg", "cerf", "goldwasser", "lamport", "david", "matsumoto")
NAME_WORDS = ("north", "blue", "bright", "silver", "quantum", "green", "iron", "swift",
              "red", "cedar", "polar", "lumen", "atlas", "nova", "harbor", "summit")
NAME_SUFFIXES = ("labs", "analytics", "foods", "logistics", "health", "media", "systems",
                 "retail", "capital", "works")
MAX_ACCOUNT_SIZE = 40
# The planted feature effect: an owner who sets up an alert in the first week (a share of
# those who built a first report) converts the trial far more often and cancels less, so
# "created an alert in the first 7 days" drives retention at day 30 (docs/events.md).
EARLY_ALERT_P = 0.2
EARLY_ALERT_CONVERSION = 0.95
EARLY_ALERT_CANCEL_FACTOR = 0.3
EARLY_ALERT_KEEPS = 0.7  # of the occasional or resurrected users among them: regular


@dataclass
class Accounts:
    n: int
    first: int  # global number of the chunk's first account
    size: np.ndarray
    first_user: np.ndarray  # chunk-local index of the owner (users are grouped by account)
    created: np.ndarray
    tier: np.ndarray  # index into PAID_PLANS: the tier trialled, then bought
    industry: np.ndarray
    currency: np.ndarray
    name_word: np.ndarray
    name_suffix: np.ndarray
    mrr: np.ndarray  # price of the tier for size seats (0 is never stored for paid)
    outcome: np.ndarray
    trial_end: np.ndarray
    converted_at: np.ndarray  # nan unless PAID or CANCELLED
    cancelled_at: np.ndarray  # nan unless CANCELLED

    @property
    def final_plan(self) -> np.ndarray:
        plan = np.full(self.n, PLAN_TRIAL)
        plan[self.outcome == PAID] = self.tier[self.outcome == PAID] + 1
        plan[self.outcome == CANCELLED] = PLAN_CANCELLED
        plan[self.outcome == EXPIRED] = PLAN_EXPIRED
        return plan


@dataclass
class Users:
    n: int
    first: int  # global number of the chunk's first user
    account: np.ndarray  # chunk-local account index
    owner: np.ndarray
    persona: np.ndarray
    stage: np.ndarray  # index of the last milestone reached (0 = signed_up only)
    signup: np.ndarray
    milestone_at: np.ndarray  # (n, 5): when each milestone happened, nan if never
    phase_start: np.ndarray  # (n, 2): active periods; the second only for resurrected
    phase_end: np.ndarray
    role: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    device: np.ndarray  # index into the context templates
    adopted: np.ndarray  # (n, 4) bool: which advanced features the user ever uses
    early_alert: np.ndarray  # when the user creates an alert in their first week, else nan


@dataclass
class Population:
    accounts: Accounts
    users: Users
    window: float  # seconds from the window start to its end


def draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of probs (n, k): inverse CDF on one uniform each."""
    cum = np.cumsum(probs, axis=-1)
    u = rng.random(len(cum))[:, None]
    return np.minimum((u > cum).sum(axis=1), probs.shape[-1] - 1)


def account_sizes(rng: np.random.Generator, n_users: int) -> np.ndarray:
    """Sizes summing to n_users: many solo accounts, small teams, a few large ones."""
    kind = rng.random(n_users)
    size = np.where(kind < 0.42, 1,
                    np.where(kind < 0.92, 2 + rng.poisson(2.5, n_users),
                             8 + rng.geometric(1 / 10, n_users)))
    size = np.minimum(size, MAX_ACCOUNT_SIZE)
    cum = np.cumsum(size)
    n_acc = int(np.searchsorted(cum, n_users)) + 1
    size = size[:n_acc].copy()
    size[-1] -= cum[n_acc - 1] - n_users
    return size


def stages(rng: np.random.Generator, n: int) -> np.ndarray:
    """How far each user gets in the onboarding journey (0 = signed up only)."""
    advance = rng.random((n, len(STAGE_ADVANCE))) < STAGE_ADVANCE
    return np.cumprod(advance, axis=1).sum(axis=1)


def make_accounts(rng: np.random.Generator, n_users: int, first: int,
                  window: float) -> Accounts:
    size = account_sizes(rng, n_users)
    n = len(size)
    size_class = np.select([size <= 2, size <= 7], [0, 1], 2)
    tier = draw(rng, TIER_BY_SIZE[size_class])
    base = np.array([v.BASE_PRICE[p] for p in v.PAID_PLANS])
    seat = np.array([v.SEAT_PRICE[p] for p in v.PAID_PLANS])
    created = rng.random(n) ** 0.8 * (window - DAY)  # a growing product: more recent signups
    return Accounts(
        n=n, first=first, size=size, first_user=np.cumsum(size) - size, created=created,
        tier=tier, industry=rng.integers(0, len(v.INDUSTRIES), n),
        currency=draw(rng, np.broadcast_to(CURRENCY_P, (n, 3))),
        name_word=rng.integers(0, len(NAME_WORDS), n),
        name_suffix=rng.integers(0, len(NAME_SUFFIXES), n),
        mrr=base[tier] + seat[tier] * size, outcome=np.zeros(n, np.int64),
        trial_end=created + v.TRIAL_DAYS * DAY, converted_at=np.full(n, NAN),
        cancelled_at=np.full(n, NAN))


def decide_outcomes(rng: np.random.Generator, acc: Accounts, owner_stage: np.ndarray,
                    window: float, owner_alerted: np.ndarray | None = None) -> None:
    """Trial conversion (likelier once the owner built a report, likelier still when the
    owner set up an alert in their first week: the planted feature effect), then
    cancellation (rarer for those accounts too)."""
    p = np.where(owner_stage >= 3, np.where(acc.size > 1, 0.75, 0.45), 0.08)
    alerted = np.zeros(acc.n, bool) if owner_alerted is None else owner_alerted
    p = np.where(alerted, EARLY_ALERT_CONVERSION, p)
    converts = rng.random(acc.n) < p
    converted_at = acc.created + rng.uniform(2, v.TRIAL_DAYS, acc.n) * DAY
    paid = converts & (converted_at < window)
    acc.outcome = np.where(paid, PAID, np.where(~converts & (acc.trial_end < window),
                                                EXPIRED, LIVE_TRIAL))
    acc.converted_at = np.where(paid, converted_at, NAN)
    cancel_at = converted_at + rng.uniform(25, 75, acc.n) * DAY
    cancel_p = CANCEL_P[acc.tier] * np.where(alerted, EARLY_ALERT_CANCEL_FACTOR, 1.0)
    cancels = paid & (rng.random(acc.n) < cancel_p) & (cancel_at < window - DAY)
    acc.outcome[cancels] = CANCELLED
    acc.cancelled_at = np.where(cancels, cancel_at, NAN)


def personas(rng: np.random.Generator, outcome: np.ndarray, stage: np.ndarray) -> np.ndarray:
    """Persona from the account's fate; power users have at least built a report."""
    live = draw(rng, np.broadcast_to(PERSONA_LIVE, (len(outcome), 6)))
    trial = draw(rng, np.broadcast_to(PERSONA_TRIAL, (len(outcome), 6)))
    p = np.select([outcome == EXPIRED, outcome == CANCELLED, outcome == LIVE_TRIAL],
                  [DORMANT, CHURNED, trial], live)
    return np.where((p == POWER) & (stage < 3), OCCASIONAL, p)


def _kept(rng: np.random.Generator, persona: np.ndarray, alerts: np.ndarray) -> np.ndarray:
    """The planted effect on the user: an early alert keeps most would-be occasional or
    resurrected users of a live account coming back regularly."""
    fades = np.isin(persona, (OCCASIONAL, RESURRECTED)) & alerts
    return np.where(fades & (rng.random(len(persona)) < EARLY_ALERT_KEEPS), REGULAR, persona)


def milestone_times(rng: np.random.Generator, signup: np.ndarray, until: np.ndarray,
                    stage: np.ndarray) -> np.ndarray:
    """(n, 5) times of the journey's milestones, squeezed into the first half of the
    user's active time when it is short, so order and activity bounds always hold."""
    n = len(signup)
    natural = np.column_stack([
        np.zeros(n), rng.uniform(60, 360, n), rng.lognormal(np.log(2 * HOUR), 1.2, n),
        rng.lognormal(np.log(1800), 1.0, n), rng.lognormal(np.log(DAY), 1.0, n)])
    cum = np.cumsum(natural, axis=1)
    room = np.maximum(until - signup, 0) * 0.5
    scale = np.minimum(1.0, room / cum[:, -1])
    at = signup[:, None] + cum * scale[:, None]
    at[np.arange(5)[None, :] > stage[:, None]] = NAN
    return at


def active_periods(rng: np.random.Generator, persona: np.ndarray, signup: np.ndarray,
                   acc: Accounts, account: np.ndarray, window: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phase_start, phase_end) pairs and the persona, demoted to regular where a
    resurrection does not fit in the window."""
    n = len(signup)
    start = np.column_stack([signup, np.full(n, NAN)])
    end = np.column_stack([np.full(n, window), np.full(n, NAN)])
    dormant = persona == DORMANT
    end[dormant, 0] = (acc.trial_end[account[dormant]]
                       + rng.uniform(0, v.DORMANT_QUIET_DAYS, dormant.sum()) * DAY)
    churned = persona == CHURNED
    cancel = acc.cancelled_at[account[churned]]
    end[churned, 0] = signup[churned] + (cancel - signup[churned]) * rng.uniform(
        0.6, 0.97, churned.sum())
    first_end = signup + rng.uniform(5, 15, n) * DAY
    back = window - rng.uniform(2, v.RESURRECTED_RECENT_DAYS - 2, n) * DAY
    fits = back - first_end >= (v.RESURRECTION_GAP_DAYS + 1) * DAY
    persona = np.where((persona == RESURRECTED) & ~fits, REGULAR, persona)
    res = persona == RESURRECTED
    end[res, 0] = first_end[res]
    start[res, 1], end[res, 1] = back[res], window
    return start, end, persona


def _schedule(rng: np.random.Generator, users: Users, idx: np.ndarray, acc: Accounts,
              window: float) -> None:
    a = users.account[idx]
    start, end, persona = active_periods(rng, users.persona[idx], users.signup[idx], acc, a,
                                         window)
    users.phase_start[idx], users.phase_end[idx], users.persona[idx] = start, end, persona
    users.milestone_at[idx] = milestone_times(rng, users.signup[idx], end[:, 0],
                                              users.stage[idx])


def make_population(rng: np.random.Generator, n_users: int, first_user: int,
                    first_account: int, window: float,
                    planted: np.random.Generator | None = None) -> Population:
    """`planted`: the generator of the planted effects (its own stream, so the main one
    draws the same numbers with or without them)."""
    acc = make_accounts(rng, n_users, first_account, window)
    account = np.repeat(np.arange(acc.n), acc.size)
    rank = np.arange(n_users) - acc.first_user[account]
    owner = rank == 0
    stage = stages(rng, n_users)
    stage[owner & (acc.size[account] > 1)] = 4  # teams exist because the owner invited them
    plant = planted or np.random.default_rng(0)
    alerts = (stage >= 3) & (plant.random(n_users) < EARLY_ALERT_P)
    after_report = plant.uniform(60, 900, n_users)  # seconds after the first report
    decide_outcomes(rng, acc, stage[acc.first_user], window, alerts[acc.first_user])
    n = n_users
    users = Users(
        n=n, first=first_user, account=account, owner=owner,
        persona=_kept(plant, personas(rng, acc.outcome[account], stage), alerts),
        stage=stage,
        signup=acc.created[account].copy(), milestone_at=np.full((n, 5), NAN),
        phase_start=np.full((n, 2), NAN), phase_end=np.full((n, 2), NAN),
        role=np.where(owner, 0, draw(rng, np.broadcast_to(ROLE_P, (n, 5)))),
        first_name=(rng.integers(0, len(FIRST_NAMES), acc.n)[account] + rank * 7)
        % len(FIRST_NAMES),
        last_name=rng.integers(0, len(LAST_NAMES), n), device=rng.integers(0, 12, n),
        adopted=np.zeros((n, 4), bool), early_alert=np.full(n, NAN))
    owners = np.flatnonzero(owner)
    _schedule(rng, users, owners, acc, window)
    invitees = np.flatnonzero(~owner)
    a = account[invitees]
    invited_at = users.milestone_at[acc.first_user[a], 4]
    limit = np.where(acc.outcome == EXPIRED, acc.trial_end,
                     np.where(acc.outcome == CANCELLED, acc.cancelled_at, window))[a]
    delay = rng.exponential(1.5 * DAY, len(invitees)) * (1 + 0.3 * rank[invitees])
    users.signup[invitees] = invited_at + np.minimum(delay, 0.8 * (limit - invited_at))
    _schedule(rng, users, invitees, acc, window)
    users.adopted = adoption(rng, users.persona, users.stage)
    at = users.milestone_at[:, 3] + after_report  # in the session of the first report
    alerts &= (at < users.signup + 7 * DAY) & (at < users.phase_end[:, 0])
    users.early_alert = np.where(alerts, at, NAN)
    users.adopted[alerts, 0] = True
    return Population(acc, users, window)


ADOPTION_BASE = np.array([0.35, 0.5, 0.15, 0.25])  # alert, export, api, sql
ADOPTION_BY_PERSONA = np.array([1.9, 1.0, 0.4, 0.3, 0.6, 0.8])


def adoption(rng: np.random.Generator, persona: np.ndarray, stage: np.ndarray) -> np.ndarray:
    """Which advanced features each user ever uses: only after activation (first report)."""
    p = np.minimum(0.95, ADOPTION_BASE[None, :] * ADOPTION_BY_PERSONA[persona][:, None])
    return (rng.random(p.shape) < p) & (stage >= 3)[:, None]
