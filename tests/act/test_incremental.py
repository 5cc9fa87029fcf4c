"""The incremental refresh (`core.Project.refresh_users`) on DuckDB and PostgreSQL: only
the users named are re-evaluated, only in segments that depend on the user alone; their
entries and exits are transitions that the membership readers and the next full refresh
count from (never written twice), with outbox rows for subscribed destinations.

Expectations by hand: `buyers` = bought in the day before as_of (receivers.BUYERS).
"""

from __future__ import annotations

from receivers import DAY, HOUR, T, buy, queued, shop

from segmently.act.destinations import new_secret
from segmently.runtime.memberships import load_memberships
from segmently.segments import snapshots as snap
from segmently.segments.refreshing import per_user
from segmently.segments.rules import parse_rule
from segmently.store import Store


def transitions(store: Store, project_id: str) -> list[tuple[str, str, str]]:
    t = snap.transitions(store, project_id)
    return sorted((r["segment"], r["user_id"], r["kind"])
                  for r in t.to_pyarrow().to_pylist())


def test_only_the_named_users_change_and_a_full_refresh_does_not_repeat_them(
        store: Store) -> None:
    project = shop(store)
    project.save_destination({"name": "hook", "kind": "webhook",
                              "url": "http://127.0.0.1:9/hook", "secret": new_secret(),
                              "subscriptions": [{"segments": ["buyers"]}]})
    buy(store, project.id, ["a", "b"], T - 2 * HOUR)
    project.refresh(T - HOUR)  # a, b are buyers
    buy(store, project.id, ["c", "d"], T)  # new events; d is not named below
    changes = project.refresh_users(("c",), T + HOUR)
    assert {n: (e.to_pylist(), x.to_pylist()) for n, (e, x) in changes.items()} == {
        "buyers": (["c"], [])}
    assert transitions(store, project.id) == [
        ("buyers", "a", "entered"), ("buyers", "b", "entered"), ("buyers", "c", "entered")]
    assert [(r["kind"], r["user_ids"]) for r in queued(store, project.id)][-1] == \
        ("entered", '["c"]')
    assert load_memberships(store, project.id).of("c") == ("buyers",)
    assert project.refresh_users(("c",), T + 2 * HOUR) == {}  # nothing new: nothing written
    # the full refresh a day later: a, b, c out (no purchase within a day), d in and out
    # never (it bought at T, as_of T + 1 day + 1 hour is past its day)
    done = {r.segment: r for r in project.refresh(T + DAY + HOUR)}
    assert (done["buyers"].size, done["buyers"].entered, done["buyers"].exited) == (0, 0, 3)
    assert transitions(store, project.id).count(("buyers", "c", "entered")) == 1
    assert sorted(r["kind"] for r in queued(store, project.id)) == \
        ["entered", "entered", "exited"]


def test_a_full_refresh_counts_incremental_entries(store: Store) -> None:
    project = shop(store)
    buy(store, project.id, ["a"], T)
    project.refresh_users(("a",), T + HOUR)
    [result] = project.refresh(T + 2 * HOUR)
    assert (result.size, result.entered, result.exited) == (1, 0, 0)  # a entered already
    assert snap.members_at(store, project.id, "buyers", T + 2 * HOUR) \
        .to_pyarrow()["user_id"].to_pylist() == ["a"]


def test_population_segments_are_left_to_the_full_refresh(store: Store) -> None:
    project = shop(store)
    project.save("top", "", {"kind": "metric", "metric": "nps_score",
                             "percentile": {"top": 50}})
    project.save("buyers_at_top", "", {"all": [{"kind": "in_segment", "segment": "buyers"},
                                                {"kind": "in_segment", "segment": "top"}]})
    rules = {n: d.rule for n, d in project.definitions().items()}
    assert sorted(per_user(rules)) == ["buyers"]
    buy(store, project.id, ["a"], T)
    changes = project.refresh_users(("a",), T + HOUR)
    assert sorted(changes) == ["buyers"]
    account = parse_rule({"kind": "account", "match": "any",
                          "rule": {"kind": "performed", "event": "buy"}})
    assert per_user({"buyers": rules["buyers"], "teams": account}).keys() == {"buyers"}
