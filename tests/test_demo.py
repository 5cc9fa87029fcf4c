"""`segmently demo`: determinism, vocabulary coverage, and the story the data tells, checked
with hand-written DuckDB queries against what was stored (and the generator's ground truth
labels: personas and account outcomes, which the store never holds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from segmently.cli import app
from segmently.demo import DemoError, DemoOptions, run_demo
from segmently.demo import vocabulary as v
from segmently.store import RowBatch, Store, schema
from segmently.store.rows import to_rows

END = datetime(2026, 11, 1)
DAYS = 90
OPTIONS = DemoOptions(users=700, days=DAYS, seed=7, end=END, chunk_users=300)


class Demo:
    def __init__(self, store: Store, truth_users: pa.Table, truth_accounts: pa.Table) -> None:
        self.store = store
        self.db = store.con.con
        self.db.register("truth_users", truth_users)
        self.db.register("truth_accounts", truth_accounts)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, list(params)).fetchall()

    def one(self, sql: str, *params: Any) -> Any:
        return self.rows(sql, *params)[0][0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(f"duckdb://{path}") as store:
        report = run_demo(store, OPTIONS, "demo", keep_truth=True)
        users = pa.concat_tables([u for u, _ in report.truth])
        accounts = pa.concat_tables([a for _, a in report.truth])
        yield Demo(store, users, accounts)


ACTIVITY = "type IN ('track', 'page')"
# what users did in the product: billing events are sent by the billing system
USAGE = ("type IN ('track', 'page') AND event NOT IN ('trial_started', 'trial_converted',"
         " 'payment_succeeded', 'payment_failed', 'subscription_cancelled')")


def stored(path: Path, options: DemoOptions) -> dict[str, list[dict[str, Any]]]:
    """Every stored row of every table, without project_id (project ids are random)."""
    with Store(f"duckdb://{path}") as store:
        run_demo(store, options, "demo")
        out = {}
        for name in (schema.EVENTS, schema.TRAITS, schema.ACCOUNT_LINKS):
            rows = store.table(name).drop("project_id").to_pyarrow().to_pylist()
            out[name] = sorted(rows, key=lambda r: (r["message_id"], json.dumps(r, default=str)))
        return out


@pytest.mark.slow
def test_same_seed_same_rows_different_seed_different_rows(tmp_path: Path) -> None:
    small = DemoOptions(users=120, days=60, seed=3, end=END, chunk_users=50)
    first = stored(tmp_path / "a.duckdb", small)
    again = stored(tmp_path / "b.duckdb", small)
    assert first == again  # message ids, timestamps, properties, traits: all identical
    assert len(first["events"]) > 120 * 10
    other = stored(tmp_path / "c.duckdb", DemoOptions(users=120, days=60, seed=4, end=END,
                                                      chunk_users=50))
    strip = lambda rows: {(r["user_id"], r["event"], r["timestamp"]) for r in rows}  # noqa: E731
    assert strip(other["events"]) != strip(first["events"])


def test_every_user_and_account_exists_with_ids_unique(demo: Demo) -> None:
    assert demo.one("SELECT count(DISTINCT user_id) FROM events") == OPTIONS.users
    assert demo.one("SELECT count(*) = count(DISTINCT message_id) FROM events")
    assert demo.one("SELECT count(*) FROM events WHERE user_id IS NULL OR account_id IS NULL"
                    " OR source <> 'demo'") == 0
    accounts = demo.one("SELECT count(DISTINCT account_id) FROM events")
    assert accounts == demo.one("SELECT count(*) FROM truth_accounts") > OPTIONS.users / 10
    # received_at: shortly after the event happened
    low, high = demo.rows("SELECT min(epoch(received_at) - epoch(timestamp)),"
                          " max(epoch(received_at) - epoch(timestamp)) FROM events")[0]
    assert 0 < low and high <= 30
    start = END - timedelta(days=DAYS)
    assert demo.rows("SELECT min(timestamp) >= ?, max(timestamp) < ? FROM events",
                     start, END)[0] == (True, True)


def test_vocabulary_is_all_present(demo: Demo) -> None:
    names = {r[0] for r in demo.rows("SELECT DISTINCT event FROM events")}
    expected = {*v.MILESTONES, *v.FEATURES, *v.BILLING, v.NPS_SUBMITTED, v.PAGE, v.IDENTIFY,
                v.GROUP, v.CAMPAIGN_SHOWN}  # the planted campaign's exposures
    assert names == expected
    assert {r[0] for r in demo.rows("SELECT DISTINCT persona FROM truth_users")} == set(
        v.PERSONAS)
    plans = {json.loads(r[0]) for r in demo.rows(
        "SELECT DISTINCT value FROM traits WHERE trait = 'plan'")}
    assert plans == set(v.PLANS)
    reasons = {r[0] for r in demo.rows(
        "SELECT DISTINCT json_extract_string(properties, '$.reason') FROM events"
        " WHERE event = 'subscription_cancelled'")}
    assert v.TRIAL_EXPIRED_REASON in reasons and reasons & set(v.CANCEL_REASONS)
    categories = demo.rows(
        "SELECT count(*) FILTER (s >= 9), count(*) FILTER (s BETWEEN 7 AND 8),"
        " count(*) FILTER (s <= 6) FROM (SELECT json_extract_string(properties, '$.score')::INT"
        " AS s"
        " FROM events WHERE event = 'nps_submitted')")[0]
    assert all(n > 0 for n in categories)


def test_signed_up_is_every_users_first_event_and_identify_follows(demo: Demo) -> None:
    firsts = demo.rows("SELECT arg_min(event, timestamp), count(*) FILTER (event = 'signed_up')"
                       " FROM events GROUP BY user_id")
    assert len(firsts) == OPTIONS.users
    assert all(first == "signed_up" and n == 1 for first, n in firsts)
    missing = demo.one(
        "SELECT count(*) FROM (SELECT entity_id, count(DISTINCT trait) AS n FROM traits"
        " WHERE kind = 'user' GROUP BY entity_id) WHERE n <> ?", len(v.USER_TRAITS))
    assert missing == 0
    # the signup identify says which account the user belongs to, like the events do
    assert demo.one(
        "SELECT count(*) FROM (SELECT entity_id, json_extract_string(value, '$') AS account"
        " FROM traits WHERE kind = 'user' AND trait = 'account_id') t"
        " JOIN (SELECT DISTINCT user_id, account_id FROM events) e"
        " ON t.entity_id = e.user_id WHERE t.account <> e.account_id") == 0


def test_milestones_happen_in_journey_order_without_gaps(demo: Demo) -> None:
    rows = demo.rows("SELECT user_id, list(event ORDER BY timestamp) FROM events"
                     " WHERE event IN ? GROUP BY user_id", list(v.MILESTONES))
    assert len(rows) == OPTIONS.users
    reached = [0] * 5
    for _, events in rows:
        assert events == list(v.MILESTONES[: len(events)])
        reached[len(events) - 1] += 1
    assert all(n > 0 for n in reached)  # some users get stuck at every stage
    # no user creates a report before their first one, and advanced features need it
    early = demo.one(
        "SELECT count(*) FROM events e LEFT JOIN (SELECT user_id, timestamp AS first_at FROM"
        " events WHERE event = 'first_report_created') f USING (user_id)"
        " WHERE e.event IN ? AND (f.first_at IS NULL OR e.timestamp < f.first_at)",
        [v.REPORT_CREATED, *v.ADVANCED_FEATURES])
    assert early == 0


def test_trials_conversions_and_payments(demo: Demo) -> None:
    unpaid = demo.one(
        "SELECT count(*) FROM events c WHERE c.event = 'trial_converted' AND NOT EXISTS ("
        " SELECT 1 FROM events p WHERE p.event = 'payment_succeeded'"
        " AND p.account_id = c.account_id AND p.timestamp > c.timestamp)")
    assert unpaid == 0
    assert demo.one("SELECT count(*) FROM events WHERE event = 'trial_converted'") > 0
    # one trial per account, started when its first user signed up
    assert demo.one(
        "SELECT count(*) FROM (SELECT account_id, count(*) FILTER (event = 'trial_started') AS"
        " t, min(timestamp) FILTER (event = 'signed_up') AS s, min(timestamp) FILTER (event ="
        " 'trial_started') AS ts FROM events GROUP BY account_id) WHERE t <> 1 OR ts < s"
        " OR ts > s + INTERVAL 1 MINUTE") == 0
    bad = demo.rows(
        "SELECT properties FROM events WHERE event IN ('payment_succeeded', 'payment_failed')"
        " AND NOT (json_extract_string(properties, '$.currency') IN ?"
        " AND json_extract_string(properties, '$.plan') IN ?"
        " AND (json_extract_string(properties, '$.amount'))::DOUBLE > 0"
        " AND (event = 'payment_succeeded' OR json_extract_string(properties, '$.reason') IN ?))",
        list(v.CURRENCIES), list(v.PAID_PLANS), list(v.FAILURE_REASONS))
    assert bad == []
    assert demo.one("SELECT count(*) FROM events WHERE event = 'payment_failed'") > 0
    # the amount charged is the account's mrr trait at the time
    assert demo.one(
        "SELECT count(*) FROM events p JOIN traits t ON t.kind = 'account'"
        " AND t.entity_id = p.account_id AND t.trait = 'mrr' AND t.value <> '0'"
        " WHERE p.event = 'payment_succeeded'"
        " AND (json_extract_string(p.properties, '$.amount'))::INT <> t.value::INT") == 0


def test_nps_answers_are_valid(demo: Demo) -> None:
    rows = demo.rows("SELECT user_id, properties, timestamp FROM events"
                     " WHERE event = 'nps_submitted'")
    assert len(rows) > 20
    assert len({r[0] for r in rows}) == len(rows)  # at most one answer per user
    for _, props, ts in rows:
        p = json.loads(props)
        assert isinstance(p["score"], int) and 0 <= p["score"] <= 10
        assert p["survey"] == f"nps-{ts:%Y-%m}"
        assert set(p) <= {"score", "survey", "comment"}
    assert any("comment" in json.loads(r[1]) for r in rows)


def test_dormant_users_went_quiet_after_their_trial_expired(demo: Demo) -> None:
    rows = demo.rows(
        "SELECT u.user_id, a.trial_end, max(e.timestamp) FROM truth_users u"
        " JOIN truth_accounts a USING (account_id) JOIN events e USING (user_id)"
        f" WHERE u.persona = 'dormant' AND e.{ACTIVITY} GROUP BY ALL")
    assert rows
    for _, trial_end, last in rows:
        assert last <= trial_end + timedelta(days=v.DORMANT_QUIET_DAYS)
    quiet_since = END - timedelta(days=7)
    long_ago = [r for r in rows if r[1] + timedelta(days=9) <= END]
    assert long_ago and all(last < quiet_since for _, _, last in long_ago)
    # their account's trial was ended by a subscription_cancelled with reason trial_expired
    assert demo.one(
        "SELECT count(*) FROM truth_accounts a WHERE a.plan = 'trial_expired' AND NOT EXISTS ("
        " SELECT 1 FROM events e WHERE e.account_id = a.account_id"
        " AND e.event = 'subscription_cancelled' AND e.timestamp = a.trial_end"
        " AND json_extract_string(e.properties, '$.reason') = 'trial_expired')") == 0


def test_churned_users_stop_before_their_account_cancels(demo: Demo) -> None:
    rows = demo.rows(
        "SELECT u.user_id, u.owner, c.timestamp,"
        f" max(e.timestamp) FILTER (e.{ACTIVITY} AND e.event <> 'subscription_cancelled'),"
        f" arg_max(e.event, e.timestamp) FILTER (e.{ACTIVITY})"
        " FROM truth_users u JOIN events e USING (user_id) JOIN events c"
        " ON c.account_id = u.account_id AND c.event = 'subscription_cancelled'"
        " WHERE u.persona = 'churned' GROUP BY ALL")
    assert len(rows) == demo.one("SELECT count(*) FROM truth_users WHERE persona = 'churned'")
    for _, owner, cancelled, last_used, last_event in rows:
        assert last_used < cancelled
        if owner:
            assert last_event == "subscription_cancelled"
    latest_plan = demo.rows(
        "SELECT entity_id, arg_max(value, set_at) FROM traits WHERE kind = 'account'"
        " AND trait = 'plan' GROUP BY entity_id")
    plans = dict(latest_plan)
    for account, plan in demo.rows("SELECT account_id, plan FROM truth_accounts"):
        assert json.loads(plans[account]) == plan


def test_resurrected_users_came_back_after_a_long_gap(demo: Demo) -> None:
    rows = demo.rows(
        "SELECT user_id, max(gap), max(timestamp) FROM (SELECT user_id, timestamp,"
        " epoch(timestamp) - epoch(lag(timestamp) OVER (PARTITION BY user_id ORDER BY"
        f" timestamp)) AS gap FROM events WHERE {USAGE}) JOIN truth_users USING (user_id)"
        " WHERE persona = 'resurrected' GROUP BY user_id")
    assert rows
    for _, gap, last in rows:
        assert gap >= v.RESURRECTION_GAP_DAYS * 86_400
        assert last >= END - timedelta(days=v.RESURRECTED_RECENT_DAYS)
    others = demo.one(
        "SELECT quantile_cont(g, 0.9) FROM (SELECT max(gap) AS g FROM (SELECT user_id,"
        " epoch(timestamp) - epoch(lag(timestamp) OVER (PARTITION BY user_id ORDER BY"
        f" timestamp)) AS gap FROM events WHERE {USAGE}) JOIN truth_users USING (user_id)"
        " WHERE persona IN ('power', 'regular') GROUP BY user_id)")
    assert others < v.RESURRECTION_GAP_DAYS * 86_400  # the long gap is theirs, not everyone's


def test_thirty_minute_sessions_are_plausible_and_personas_differ(demo: Demo) -> None:
    per_persona = dict((p, (s, e, d)) for p, s, e, d in demo.rows(
        "WITH marked AS (SELECT user_id, timestamp, CASE WHEN epoch(timestamp) - epoch(lag("
        " timestamp) OVER w) <= 1800 THEN 0 ELSE 1 END AS new FROM events"
        f" WHERE {ACTIVITY} WINDOW w AS (PARTITION BY user_id ORDER BY timestamp)),"
        " numbered AS (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY timestamp"
        " ROWS UNBOUNDED PRECEDING) AS s FROM marked),"
        " sessions AS (SELECT user_id, s, count(*) AS n,"
        " epoch(max(timestamp)) - epoch(min(timestamp)) AS secs FROM numbered GROUP BY ALL)"
        " SELECT persona, count(*) / count(DISTINCT user_id), median(n), median(secs)"
        " FROM sessions JOIN truth_users USING (user_id) GROUP BY persona"))
    for persona, (sessions, events, seconds) in per_persona.items():
        assert 1 <= sessions, persona
        assert 2 <= events <= 20, persona
        assert 30 <= seconds <= 3600, persona
    assert per_persona["power"][0] > 3 * per_persona["occasional"][0]
    assert per_persona["power"][1] > per_persona["occasional"][1]


def test_account_traits_and_links(demo: Demo) -> None:
    rows = demo.rows(
        "SELECT a.account_id, a.seats, count(DISTINCT l.user_id),"
        " count(DISTINCT t.trait) FROM truth_accounts a"
        " JOIN account_links l USING (account_id)"
        " JOIN traits t ON t.kind = 'account' AND t.entity_id = a.account_id GROUP BY ALL")
    assert len(rows) == demo.one("SELECT count(*) FROM truth_accounts")
    for _, seats, members, traits in rows:
        assert seats == members and traits == len(v.ACCOUNT_TRAITS)
    industries = {json.loads(r[0]) for r in demo.rows(
        "SELECT DISTINCT value FROM traits WHERE kind = 'account' AND trait = 'industry'")}
    assert industries <= set(v.INDUSTRIES) and len(industries) > 3


@pytest.mark.slow
def test_cli_creates_the_project_prints_keys_and_refuses_a_filled_one(tmp_path: Path) -> None:
    db = f"duckdb://{tmp_path / 'cli.duckdb'}"
    runner = CliRunner()
    args = ["--db", db, "--json", "demo", "--users", "40", "--days", "60", "--end",
            "2026-10-01", "--project", "acme-demo"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    overview = {r["what"]: r["value"] for r in json.loads(result.output)["demo"]}
    assert overview["users"] == "40" and overview["secret key"].startswith("sk_")
    with Store(db) as store:
        from segmently.store.projects import project_for_secret_key

        project = project_for_secret_key(store, overview["secret key"])
        assert project is not None and project.write_key == overview["write key"]
        assert store.events(project.project_id).count().to_pyarrow().as_py() == int(
            overview["events"].replace(",", ""))
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and "already has events" in again.output
    bad = runner.invoke(app, ["--db", db, "demo", "--days", "5"])
    assert bad.exit_code != 0 and "days must be between 30" in bad.output


def test_options_are_checked() -> None:
    with pytest.raises(DemoError, match="midnight"):
        DemoOptions(end=datetime(2026, 1, 1, 12))
    with pytest.raises(DemoError, match="users"):
        DemoOptions(users=0)


T0 = datetime(2026, 3, 1)


def _batch(project_id: str, ids: list[str]) -> RowBatch:
    from segmently.store import Message

    msgs = [Message(message_id=i, type="group", event="$group", timestamp=T0, source="demo",
                    user_id="u1", account_id="a1", account_traits={"plan": "growth"})
            for i in ids]
    return to_rows(project_id, msgs, T0)


def test_append_new_rows_writes_every_table_without_a_dedup_lookup(store: Store) -> None:
    result = store.append_new_rows("p1", _batch("p1", ["m1", "m2"]))
    assert (result.received, result.stored) == (2, 2)
    counts = {name: store.table(name).count().to_pyarrow().as_py()
              for name in (schema.EVENTS, schema.TRAITS, schema.ACCOUNT_LINKS)}
    assert counts == {schema.EVENTS: 2, schema.TRAITS: 2, schema.ACCOUNT_LINKS: 2}
    # the caller promises new ids: a repeated one is stored again on DuckDB (append_rows
    # would skip it); PostgreSQL's unique key refuses the whole commit instead
    if store.engine == "postgres":
        import psycopg

        with pytest.raises(psycopg.errors.UniqueViolation):
            store.append_new_rows("p1", _batch("p1", ["m1"]))
        assert store.events("p1").count().to_pyarrow().as_py() == 2
    else:
        store.append_new_rows("p1", _batch("p1", ["m1"]))
        assert store.events("p1").count().to_pyarrow().as_py() == 3
    with pytest.raises(ValueError, match="another project"):
        store.append_new_rows("p2", _batch("p1", ["m9"]))
    assert store.events("p2").count().to_pyarrow().as_py() == 0


@pytest.mark.slow
def test_the_profile_stage_reads_the_demo_with_its_vocabulary(demo: Demo) -> None:
    """End to end: features and milestones as the demo declares them; the journey stage
    the profile computes is the one the generator gave each user."""
    from segmently.demo.workspace import demo_vocabulary
    from segmently.profile import build_profiles
    from segmently.store.projects import get_project_by_name

    vocab = demo_vocabulary()
    assert [f.name for f in vocab.features] == list(v.FEATURES)
    assert [m.name for m in vocab.milestones] == list(v.MILESTONES)
    project = get_project_by_name(demo.store, "demo")
    assert project is not None
    profiles = build_profiles(demo.store, project.project_id, vocab, END)
    got = {r["user_id"]: r["journey_stage"] for r in
           profiles.users.select("user_id", "journey_stage").to_pyarrow().to_pylist()}
    truth = dict(demo.rows("SELECT user_id, stage FROM truth_users"))
    assert got == truth


def test_default_end_is_todays_midnight_utc_fixed_at_creation() -> None:
    options = DemoOptions(users=10)
    today = datetime.utcnow()  # noqa: DTZ003
    assert options.window_end in {datetime(today.year, today.month, today.day),
                                  datetime(today.year, today.month, today.day) - timedelta(days=1)}
    assert options.window_start == options.window_end - timedelta(days=options.days)


def test_planted_effects_an_early_alert_keeps_users_and_the_campaign_lifts_alerts(
        demo: Demo) -> None:
    """demo/planted.py: users with an alert in their first 7 days are retained at day 30
    (any activity in days 30-36 after signing up) far more often; the show_alerts campaign
    holds out about 20%, shows only the treatment, and its treatment creates alerts within
    14 days more often."""
    rows = dict((early, (n, rate)) for early, n, rate in demo.rows(
        "WITH s AS (SELECT user_id, min(timestamp) AS signup FROM events"
        " WHERE event = 'signed_up' GROUP BY 1),"
        " f AS (SELECT s.user_id, bool_or(e.event = 'alert_created'"
        " AND e.timestamp < s.signup + INTERVAL 7 DAY) AS early,"
        f" bool_or(e.{ACTIVITY} AND e.timestamp >= s.signup + INTERVAL 30 DAY"
        " AND e.timestamp < s.signup + INTERVAL 37 DAY) AS kept"
        " FROM s JOIN events e USING (user_id) WHERE s.signup < ? - INTERVAL 37 DAY"
        " GROUP BY 1) SELECT early, count(*), avg(kept::INT) FROM f GROUP BY 1", END))
    assert rows[True][0] > 30  # seed 7: 70 users, 69% kept against 36% of 246
    assert rows[True][1] > rows[False][1] + 0.2 and rows[True][1] > 1.5 * rows[False][1]
    arms = dict((arm, (n, shown, converted)) for arm, n, shown, converted in demo.rows(
        "SELECT a.arm, count(*), count(*) FILTER (EXISTS (SELECT 1 FROM events e"
        " WHERE e.user_id = a.user_id AND e.event = 'campaign_shown'"
        " AND json_extract_string(e.properties, '$.campaign') = 'show_alerts')),"
        " count(*) FILTER (EXISTS (SELECT 1 FROM events e WHERE e.user_id = a.user_id"
        " AND e.event = 'alert_created' AND e.timestamp > a.assigned_at"
        " AND e.timestamp <= a.assigned_at + INTERVAL 14 DAY))"
        " FROM campaign_assignments a WHERE a.campaign = 'show_alerts' GROUP BY 1"))
    n_t, shown_t, conv_t = arms["treatment"]
    n_h, shown_h, conv_h = arms["holdout"]
    assert 0.12 < n_h / (n_t + n_h) < 0.28 and n_h > 20
    assert shown_h == 0 and 0.8 < shown_t / n_t < 0.97
    assert conv_t / n_t > conv_h / n_h + 0.08
