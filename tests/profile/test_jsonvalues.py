"""JSON property reading agrees on DuckDB, PostgreSQL and Spark (expected values by hand)."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from segmently.profile.jsonvalues import bool_at, int_at, is_set, number_at, string_at
from segmently.store import Message, Store


@pytest.fixture
def store(engine_store: Store) -> Store:
    """Profile metrics are engine work: DuckDB, PostgreSQL and Spark over Parquet."""
    return engine_store


CASES = [  # properties, (string, number, int, bool, is_set) of key "k"
    ({"k": 9}, ("9", 9.0, 9, None, True)),
    ({"k": "9"}, ("9", 9.0, 9, None, True)),
    ({"k": "abc"}, ("abc", None, None, None, True)),
    ({"k": True}, ("true", None, None, True, True)),
    ({"k": "false"}, ("false", None, None, False, True)),
    ({"k": None}, (None, None, None, None, False)),
    ({"k": 2.5}, ("2.5", 2.5, None, None, True)),
    ({"k": {"a": 1}}, ('{"a":1}', None, None, None, True)),
    ({}, (None, None, None, None, False)),
    ({"k": "it's \"quoted\""}, ("it's \"quoted\"", None, None, None, True)),
]


def test_values_read_the_same_everywhere(store: Store) -> None:
    store.append("p", [
        Message(message_id=f"{i:02d}", type="track", event="e", timestamp=datetime(2026, 1, 1),
                source="native", user_id="u", properties=props)
        for i, (props, _) in enumerate(CASES)
    ], received_at=datetime(2026, 1, 1))
    e = store.events("p").order_by("message_id")
    p = e.properties
    got = e.select(s=string_at(p, "k"), n=number_at(p, "k"), i=int_at(p, "k"),
                   b=bool_at(p, "k"), z=is_set(p, "k")).to_pyarrow().to_pylist()
    for (props, expected), row in zip(CASES, got, strict=True):
        assert (row["s"], row["n"], row["i"], row["b"], row["z"]) == expected, orjson.dumps(props)


HOSTILE_KEYS = ["a.b", "a b", "$browser", "utm-source", "x[0]", "é", "a'b", 'a"b', "a\\b", "*",
                "a/b", "~0", "'; DROP TABLE events; --"]


def test_hostile_keys_are_matched_literally(store: Store) -> None:
    props = {k: f"v{i}" for i, k in enumerate(HOSTILE_KEYS)}
    props["a"] = {"b": "nested"}  # "a.b" must not reach into this
    store.append("p", [Message(message_id="1", type="track", event="e",
                               timestamp=datetime(2026, 1, 1), source="native", user_id="u",
                               properties=props)], received_at=datetime(2026, 1, 1))
    e = store.events("p")
    got = e.select(**{f"c{i}": string_at(e.properties, k) for i, k in enumerate(HOSTILE_KEYS)})
    row = got.to_pyarrow().to_pylist()[0]
    assert [row[f"c{i}"] for i in range(len(HOSTILE_KEYS))] == [
        f"v{i}" for i in range(len(HOSTILE_KEYS))]
    assert "events" in store.backends.get().list_tables()
