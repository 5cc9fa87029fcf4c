"""The store on every engine: appends, dedup, transactions, projects, read-time views."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from segmently.settings import Settings
from segmently.store import Message, Store, views
from segmently.store.projects import (
    ProjectError,
    create_project,
    project_for_secret_key,
    project_for_write_key,
)

T0 = datetime(2026, 3, 1, 12, 0, 0)


def track(mid: str, user: str | None = "u1", at: datetime = T0, **kw) -> Message:  # type: ignore[no-untyped-def]
    return Message(message_id=mid, type="track", event=kw.pop("event", "clicked"),
                   timestamp=at, source="native", user_id=user, **kw)


def count(store: Store, project: str = "p1") -> int:
    return store.events(project).count().to_pyarrow().as_py()


def test_append_stores_every_field(store: Store) -> None:
    msg = track("m1", account_id="acme", anonymous_id="anon-1",
                properties={"plan": "pro", "n": 3, "nested": {"a": [1, 2]}},
                context={"ip": "1.2.3.4"})
    result = store.append("p1", [msg], received_at=T0 + timedelta(seconds=5))
    assert (result.received, result.stored) == (1, 1)
    row = store.events("p1").to_pyarrow().to_pylist()[0]
    import json

    assert row["message_id"] == "m1" and row["event"] == "clicked" and row["type"] == "track"
    assert (row["user_id"], row["anonymous_id"], row["account_id"]) == ("u1", "anon-1", "acme")
    assert row["timestamp"] == T0 and row["received_at"] == T0 + timedelta(seconds=5)
    assert json.loads(row["properties"]) == {"plan": "pro", "n": 3, "nested": {"a": [1, 2]}}
    assert json.loads(row["context"]) == {"ip": "1.2.3.4"} and row["source"] == "native"


def test_retries_are_stored_once_within_and_across_batches(store: Store) -> None:
    batch = [track("a"), track("b"), track("a", event="other")]
    assert store.append("p1", batch).stored == 2
    assert store.append("p1", batch).stored == 0
    assert store.append("p1", [track("c"), track("b")]).stored == 1
    names = dict(store.events("p1").select("message_id", "event").to_pyarrow().to_pylist()
                 and [(r["message_id"], r["event"]) for r in
                      store.events("p1").to_pyarrow().to_pylist()])
    assert names == {"a": "clicked", "b": "clicked", "c": "clicked"}  # the first "a" won


def test_message_ids_are_scoped_to_a_project(store: Store) -> None:
    store.append("p1", [track("same")])
    assert store.append("p2", [track("same")]).stored == 1
    assert count(store, "p1") == 1 and count(store, "p2") == 1


def test_dedup_survives_reopening(store_url: str) -> None:
    with Store(store_url) as s:
        s.append("p1", [track("x")])
    with Store(store_url) as s:
        assert s.append("p1", [track("x"), track("y")]).stored == 1
        assert count(s) == 2


def test_duplicate_derived_rows_are_not_written_twice(store: Store) -> None:
    identify = Message(message_id="i1", type="identify", event="$identify", timestamp=T0,
                       source="native", user_id="u1", anonymous_id="anon",
                       traits={"plan": "pro"}, alias_id="anon")
    store.append("p1", [identify])
    store.append("p1", [identify])
    assert store.table("traits").count().to_pyarrow().as_py() == 1
    assert store.table("identities").count().to_pyarrow().as_py() == 1


def test_latest_traits_and_set_once(store: Store) -> None:
    def ident(mid: str, at: datetime, traits=None, once=None):  # type: ignore[no-untyped-def]
        return Message(message_id=mid, type="identify", event="$identify", timestamp=at,
                       source="native", user_id="u1", traits=traits, traits_once=once)

    store.append("p1", [
        ident("1", T0, {"plan": "free", "name": "Ann"}, {"signup": "web"}),
        ident("2", T0 + timedelta(days=2), {"plan": "pro"}, {"signup": "mobile"}),
        ident("3", T0 + timedelta(days=1), {"plan": "team"}),  # arrives late, is older
    ])
    got = {r["trait"]: r["value"] for r in
           views.latest_traits(store, "p1").to_pyarrow().to_pylist()}
    assert got == {"plan": '"pro"', "name": '"Ann"', "signup": '"web"'}
    as_of = {r["trait"]: r["value"] for r in
             views.latest_traits(store, "p1", as_of=T0 + timedelta(days=1, hours=1),
                                 known_at=T0 + timedelta(days=1, hours=1))
             .to_pyarrow().to_pylist()}
    # received_at is "now", so nothing was known at a past instant
    assert as_of == {}


def test_identity_merge_resolves_anonymous_history(store: Store) -> None:
    store.append("p1", [
        track("1", user=None, anonymous_id="anon-9", at=T0),
        track("2", user=None, anonymous_id="anon-9", at=T0 + timedelta(minutes=1)),
        Message(message_id="3", type="identify", event="$identify",
                timestamp=T0 + timedelta(minutes=2), source="native", user_id="u9",
                anonymous_id="anon-9", alias_id="anon-9"),
        track("4", user="u9", at=T0 + timedelta(minutes=3)),
    ])
    people = views.resolved_events(store, "p1").select("message_id", "person_id")
    assert {r["message_id"]: r["person_id"] for r in people.to_pyarrow().to_pylist()} == {
        "1": "u9", "2": "u9", "3": "u9", "4": "u9"}
    users = views.users(store, "p1").to_pyarrow().to_pylist()
    assert [(u["user_id"], u["events"], u["first_seen"]) for u in users] == [("u9", 4, T0)]


def test_failed_transaction_leaves_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append("p1", [track("keep")])
    bad = [Message(message_id="t", type="identify", event="$identify", timestamp=T0,
                   source="native", user_id="u1", traits={"k": "v"})]
    import segmently.store.store as store_module

    insert_events = store_module.insert_new_events
    calls = []

    def events_then_record(con, project_id, events, oldest):  # type: ignore[no-untyped-def]
        calls.append("events")
        return insert_events(con, project_id, events, oldest)

    def fail_derived(con, name, table):  # type: ignore[no-untyped-def]
        calls.append(name)
        raise RuntimeError("disk full")

    if store.engine == "duckdb":  # one SQL append (store/fastpath.py): fail after it, in
        append = store_module.append_new_events  # the transaction, before COMMIT

        def append_then_fail(con, project_id, events, derived, oldest):  # type: ignore[no-untyped-def]
            calls.extend(["events", *derived])
            append(con, project_id, events, derived, oldest)
            raise RuntimeError("disk full")

        monkeypatch.setattr(store_module, "append_new_events", append_then_fail)
    else:
        monkeypatch.setattr(store_module, "insert_new_events", events_then_record)
        monkeypatch.setattr(store_module, "insert_arrow", fail_derived)
    with pytest.raises(RuntimeError, match="disk full"):
        store.append("p1", bad)
    monkeypatch.undo()
    assert calls == ["events", "traits"]
    assert [r["message_id"] for r in store.events("p1").to_pyarrow().to_pylist()] == ["keep"]
    assert store.table("traits").count().to_pyarrow().as_py() == 0


def test_projects_keys_and_isolation(store: Store) -> None:
    a = create_project(store, "alpha")
    b = create_project(store, "beta")
    assert project_for_write_key(store, a.project.write_key).project_id == a.project.project_id
    assert project_for_secret_key(store, b.secret_key).project_id == b.project.project_id
    assert project_for_secret_key(store, a.project.write_key) is None
    assert project_for_write_key(store, a.secret_key) is None
    with pytest.raises(ProjectError, match="already exists"):
        create_project(store, "alpha")
    with pytest.raises(ProjectError, match="project name"):
        create_project(store, "x'; drop table events; --")
    assert "events" in store.con.list_tables()


def memory_limit(store: Store) -> str:
    return store.con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]


def test_duckdb_memory_limit_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with Store("duckdb://", settings=Settings(duckdb_memory_limit="128MiB")) as s:
        assert memory_limit(s) == "128.0 MiB"
    monkeypatch.setenv("SEGMENTLY_DUCKDB_MEMORY_LIMIT", "256MB")  # no settings: the env's
    with Store("duckdb://") as s:  # DuckDB reports MiB: 256 MB = 244.1 MiB
        assert memory_limit(s) == "244.1 MiB"
    monkeypatch.setenv("SEGMENTLY_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="SEGMENTLY_DUCKDB_MEMORY_LIMIT: 'lots' is not a memory"):
        Store("duckdb://")
    with pytest.raises(ValueError,  # what only DuckDB refuses is named too
                       match="SEGMENTLY_DUCKDB_MEMORY_LIMIT: 'NONE': .*Memory must have a number"):
        Store("duckdb://", settings=Settings(duckdb_memory_limit="NONE"))
