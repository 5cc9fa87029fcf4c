"""The demo run: generate chunk after chunk of users and write each in one transaction.

Memory stays bounded by the chunk size (10k users, about 1M events); every chunk is a
pure function of (seed, chunk number, options), so the same options store identical rows.
Time is anchored on `end` (exclusive, midnight UTC): the window is [end - days, end).
The default end is today's midnight UTC, which is only deterministic within a day; pass
`end` for rows identical across days. Called by `cli/demo.py` (`run_demo`); each chunk
goes to `Store.append_new_rows` (no dedup lookup: its ids are new by construction).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmently.act import assignments, campaigns
from segmently.demo import activity, billing, journey, planted, rows
from segmently.demo import parts as k
from segmently.demo import population as P
from segmently.demo import vocabulary as v
from segmently.demo.parts import KINDS, EventPart
from segmently.errors import SegmentlyError
from segmently.store import RowBatch, Store
from segmently.store.projects import create_project, get_project_by_name

EPOCH = datetime(1970, 1, 1)
CHUNK_USERS = 10_000


class DemoError(SegmentlyError, ValueError):
    """The demo cannot run with these options or into this project."""

    code = "invalid_demo"


def default_end(now: datetime | None = None) -> datetime:
    """Today at 00:00 UTC (naive), the default exclusive end of the window."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return datetime(now.year, now.month, now.day)


@dataclass(frozen=True)
class DemoOptions:
    users: int = 2000
    days: int = 90
    seed: int = 42
    end: datetime | None = None  # exclusive; midnight UTC; None = today's (set on creation)
    chunk_users: int = CHUNK_USERS

    def __post_init__(self) -> None:
        if not 1 <= self.users <= 100_000_000:
            raise DemoError("users must be between 1 and 100,000,000")
        if not 30 <= self.days <= 3650:
            raise DemoError("days must be between 30 and 3650 (trials, billing periods and"
                            " resurrections need a month at least)")
        if self.seed < 0:
            raise DemoError("seed must be a non-negative integer")
        end = self.end
        if end is None:  # resolved once: a run crossing midnight keeps one window
            object.__setattr__(self, "end", default_end())
        elif end.tzinfo is not None or end != default_end(end):
            raise DemoError("end must be a naive UTC datetime at midnight")

    @property
    def window_end(self) -> datetime:
        assert self.end is not None
        return self.end

    @property
    def window_start(self) -> datetime:
        return self.window_end - timedelta(days=self.days)


@dataclass
class Chunk:
    population: P.Population
    kind: np.ndarray  # kind code per stored event
    arg: np.ndarray
    rows: RowBatch
    assigned: pa.Table  # the planted campaign's assignments: user_id, held_out, at_us


def generate_chunk(options: DemoOptions, number: int, first_user: int, first_account: int,
                   project_id: str, holdout_percent: float = 20.0) -> Chunk:
    rng = np.random.default_rng([options.seed, number])
    plant = np.random.default_rng([options.seed, number, 1])  # demo/planted.py's own
    start = options.window_start
    start_us = int((start - EPOCH).total_seconds()) * 1_000_000
    n = min(options.chunk_users, options.users - first_user)
    pop = P.make_population(rng, n, first_user, first_account, options.days * P.DAY, plant)
    used = activity.usage(rng, pop, (start - EPOCH).days)
    paid, changes = billing.billing(rng, pop)
    early = planted.early_alerts(plant, pop)
    user_ids = rows.Ids(pop).user
    campaign, arms = planted.show_alerts(plant, pop, EventPart.concat([used, early]),
                                         user_ids, options.days, holdout_percent)
    part = EventPart.concat([
        journey.milestones(rng, pop), journey.signup_calls(pop), used,
        activity.nps_answers(rng, pop, used, start_us), paid, billing.plan_calls(pop, changes),
        early, campaign])
    batch = rows.assemble(project_id, pop, part, options.seed, start_us, rng)
    assigned = pa.table({"user_id": user_ids.take(pa.array(arms.user, pa.int64())),
                         "held_out": pa.array(arms.holdout, pa.bool_()),
                         "at_us": pa.array(start_us + np.round(arms.at * 1e6).astype(np.int64),
                                           pa.int64())})
    return Chunk(pop, part.kind, part.arg, batch, assigned)


def generate(options: DemoOptions, project_id: str, holdout_percent: float = 20.0
             ) -> Iterator[Chunk]:
    """Chunks in order; the next one is generated in a thread while the caller writes
    the current one (numpy, Arrow and DuckDB release the GIL for most of their work)."""
    starts = list(range(0, options.users, options.chunk_users))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(generate_chunk, options, 0, 0, 0, project_id, holdout_percent)
        for number in range(len(starts)):
            chunk = pending.result()
            if number + 1 < len(starts):
                first_account = chunk.population.accounts.first + chunk.population.accounts.n
                pending = pool.submit(generate_chunk, options, number + 1, starts[number + 1],
                                      first_account, project_id, holdout_percent)
            yield chunk


@dataclass
class Summary:
    """What a demo run built, counted from the generator's own arrays."""

    users: int = 0
    accounts: int = 0
    events: int = 0
    traits: int = 0
    events_by_name: Counter[str] = field(default_factory=Counter)
    personas: Counter[str] = field(default_factory=Counter)
    plans: Counter[str] = field(default_factory=Counter)  # accounts by plan at the end
    trials_converted: int = 0
    trials_expired: int = 0
    nps: Counter[str] = field(default_factory=Counter)
    payments_failed: int = 0
    assigned: int = 0  # to the planted campaign (demo/planted.py)
    held_out: int = 0

    def add(self, chunk: Chunk) -> None:
        pop = chunk.population
        self.users += pop.users.n
        self.accounts += pop.accounts.n
        self.events += chunk.rows.events.num_rows
        self.traits += chunk.rows.traits.num_rows
        names = np.array([name for _, name in KINDS])
        for code, count in zip(*np.unique(chunk.kind, return_counts=True), strict=True):
            self.events_by_name[str(names[code])] += int(count)
        self.personas.update(_names(v.PERSONAS, pop.users.persona))
        self.plans.update(_names(v.PLANS, pop.accounts.final_plan))
        self.trials_converted += int((~np.isnan(pop.accounts.converted_at)).sum())
        self.trials_expired += int((pop.accounts.outcome == P.EXPIRED).sum())
        scores = chunk.arg[chunk.kind == k.NPS]
        self.nps.update({"promoters": int((scores >= 9).sum()),
                         "passives": int(((scores >= 7) & (scores <= 8)).sum()),
                         "detractors": int((scores <= 6).sum())})
        self.payments_failed += int((chunk.kind == k.PAYMENT_FAILED).sum())
        self.assigned += chunk.assigned.num_rows
        self.held_out += int(pc.sum(chunk.assigned["held_out"].cast(pa.int64()))
                             .as_py() or 0)


def _names(names: tuple[str, ...], codes: np.ndarray) -> Counter[str]:
    values, counts = np.unique(codes, return_counts=True)
    return Counter({names[c]: int(n) for c, n in zip(values, counts, strict=True)})


@dataclass
class DemoReport:
    project_id: str
    project: str
    write_key: str
    secret_key: str | None  # None when the project already existed (only its hash is kept)
    start: datetime
    end: datetime
    summary: Summary
    seconds: float = 0.0
    truth: list[tuple[pa.Table, pa.Table]] = field(default_factory=list)


def open_project(store: Store, name: str) -> tuple[str, str, str | None]:
    """(project id, write key, secret key or None): an empty project to fill."""
    existing = get_project_by_name(store, name)
    if existing is None:
        new = create_project(store, name)
        return new.project.project_id, new.project.write_key, new.secret_key
    events = store.events(existing.project_id)
    if events.count().to_pyarrow().as_py():
        raise DemoError(f"project {name!r} already has events; pass another --project name"
                        " (the demo only fills an empty project)")
    return existing.project_id, existing.write_key, None


def run_demo(store: Store, options: DemoOptions, project: str = "demo", *,
             keep_truth: bool = False,
             progress: Callable[[int, int], None] | None = None) -> DemoReport:
    """Generate the demo into `project` (created when absent, refused when not empty)."""
    import time

    began = time.monotonic()
    project_id, write_key, secret = open_project(store, project)
    report = DemoReport(project_id, project, write_key, secret, options.window_start,
                        options.window_end, Summary())
    holdout, version = _planted_campaign(store, project_id)
    for chunk in generate(options, project_id, holdout):
        store.append_new_rows(project_id, chunk.rows)
        assignments.record(store, project_id, _assignments(chunk.assigned, version))
        report.summary.add(chunk)
        if keep_truth:
            report.truth.append(truth_tables(chunk.population, options.window_start))
        if progress:
            progress(report.summary.users, report.summary.events)
    store.compact_rollups()  # a finished past: its days merged, their activity days kept
    report.seconds = time.monotonic() - began
    return report


def _planted_campaign(store: Store, project_id: str) -> tuple[float, int]:
    """The planted campaign's holdout share (the demo workspace's) and the version its
    assignments are recorded under: the project's, when it already has the campaign, else
    1, the version `segmently demo`'s apply of the workspace then writes."""
    from segmently.demo.workspace import demo_campaigns

    [declared] = [c for c in demo_campaigns() if c["name"] == planted.CAMPAIGN]
    existing = campaigns.current(store, project_id).get(planted.CAMPAIGN)
    return float(declared["holdout_percent"]), existing.version if existing else 1


def _assignments(table: pa.Table, version: int) -> list[assignments.Assignment]:
    at = table["at_us"].cast(pa.timestamp("us")).to_pylist()
    return [assignments.Assignment(planted.CAMPAIGN, user, "holdout" if held else "treatment",
                                   version, when)
            for user, held, when in zip(table["user_id"].to_pylist(),
                                        table["held_out"].to_pylist(), at, strict=True)]


def truth_tables(pop: P.Population, start: datetime) -> tuple[pa.Table, pa.Table]:
    """The generator's ground truth (never stored): users and accounts with persona,
    journey stage and trial outcome, for tests and for judging discovered segments."""
    u, a = pop.users, pop.accounts
    ids = rows.Ids(pop)

    def when(seconds: np.ndarray) -> pa.Array:
        us = np.where(np.isnan(seconds), 0, np.round(seconds * 1e6)).astype(np.int64)
        start_us = int((start - EPOCH).total_seconds()) * 1_000_000
        return pa.array(start_us + us, pa.int64(), mask=np.isnan(seconds)).cast(
            pa.timestamp("us"))

    users = pa.table({
        "user_id": ids.user, "account_id": ids.user_account,
        "persona": [v.PERSONAS[p] for p in u.persona], "owner": u.owner,
        "stage": [v.MILESTONES[x] for x in u.stage], "signup": when(u.signup)})
    accounts = pa.table({
        "account_id": ids.account, "tier": [v.PAID_PLANS[t] for t in a.tier],
        "plan": [v.PLANS[p] for p in a.final_plan], "seats": a.size,
        "trial_end": when(a.trial_end), "converted_at": when(a.converted_at),
        "cancelled_at": when(a.cancelled_at)})
    return users, accounts
