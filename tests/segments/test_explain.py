"""Explain (truth and observed value of every node) and hostile names, on both engines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from segmently.segments import UnknownUserError, evaluate, explain
from segmently.store import Message, Store, schema

pytestmark = pytest.mark.slow  # each test evaluates and explains over a filled store

AS_OF = datetime(2026, 3, 31)
DAY = timedelta(days=1)
EVIL = "'; DROP TABLE events; --"


def track(mid: str, user: str, event: str, at: datetime, **props: Any) -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user, properties=props)


@pytest.fixture
def loaded(store: Store) -> Store:
    store.append("p", [
        track("1", "ann", "report_viewed", AS_OF - 2 * DAY),
        track("2", "ann", "report_viewed", AS_OF - 3 * DAY),
        track("3", "ann", "report_viewed", AS_OF - 4 * DAY),
        track("4", "ann", "report_viewed", AS_OF - 40 * DAY),
        track("5", "bob", EVIL, AS_OF - DAY, **{EVIL: "x", 'q"uote': 3, "a.b": 1, "$os": "mac"}),
        track("6", "bob", EVIL, AS_OF - 2 * DAY, **{EVIL: "y"}),
        Message(message_id="7", type="identify", event="$identify", timestamp=AS_OF - DAY,
                source="native", user_id="bob", traits={EVIL: "z", "plan": "pro"}),
    ], received_at=datetime(2026, 1, 1))
    return store


VIEWED = {"kind": "performed", "event": "report_viewed", "at_least": 5,
          "window": {"last": 30}}


def test_explain_says_what_it_saw(loaded: Store) -> None:
    rule = {"any": [VIEWED, {"kind": "property", "property": "plan", "op": "eq",
                             "value": "pro"}]}
    out = explain(loaded, "p", rule, "ann", AS_OF)
    assert (out.kind, out.truth) == ("any", False)
    viewed, plan = out.children
    assert viewed.truth is False and viewed.observed == {"count": 3}
    assert viewed.sentence == "report_viewed 3 times in the last 30 days; needs at least 5"
    assert plan.truth is False and plan.observed == {"value": None}
    assert plan.sentence == 'plan is not set; needs eq "pro"'
    assert out.to_dict()["children"][0]["truth"] is False
    assert "[no ] report_viewed 3 times" in out.text()


def test_explain_follows_segment_references(loaded: Store) -> None:
    segs = {"pro": {"kind": "property", "property": "plan", "op": "eq", "value": "pro"},
            "dormant": {"kind": "last_seen", "more_than_days_ago": 7}}
    rule = {"all": [{"kind": "in_segment", "segment": "pro"},
                    {"kind": "not_in_segment", "segment": "dormant"}]}
    out = explain(loaded, "p", rule, "bob", AS_OF, segments=segs)
    assert out.truth is True
    pro, not_dormant = out.children
    assert pro.truth and pro.children[0].sentence == 'plan is "pro"; needs eq "pro"'
    assert not_dormant.truth and not_dormant.children[0].truth is False
    assert not_dormant.children[0].sentence.startswith("last seen 1 day ago (2026-03-30")


def test_explain_unknown_user(loaded: Store) -> None:
    with pytest.raises(UnknownUserError, match="no user 'nobody'"):
        explain(loaded, "p", VIEWED, "nobody", AS_OF)


def test_hostile_names_are_literals(loaded: Store) -> None:
    segs = {
        EVIL: {"kind": "performed", "event": EVIL, "at_least": 2,
               "where": [{"property": EVIL, "op": "in", "value": ["x", "y"]}]},
        'seg "quoted"': {"kind": "property", "property": EVIL, "op": "eq", "value": "z"},
        "quote key": {"kind": "aggregate", "event": EVIL, "property": 'q"uote', "agg": "sum",
                      "op": "eq", "value": 3},
        "dotted key is one key": {"kind": "performed", "event": EVIL,
                                  "where": [{"property": "a.b", "op": "eq", "value": 1}]},
        "dollar key": {"kind": "performed", "event": EVIL,
                       "where": [{"property": "$os", "op": "eq", "value": "mac"}]},
        "ref": {"kind": "in_segment", "segment": EVIL},
    }
    ev = evaluate(loaded, "p", segs, AS_OF)
    got = {name: set(ev.members(name).to_pyarrow()["user_id"].to_pylist()) for name in segs}
    assert got == {name: {"bob"} for name in segs}
    assert evaluate(loaded, "p", {"s": {"all": []}}, AS_OF).sizes() == {"s": 2}
    assert loaded.events("p").count().to_pyarrow().as_py() == 7  # events table intact
    assert schema.EVENTS in loaded.con.list_tables()
    out = explain(loaded, "p", segs[EVIL], "bob", AS_OF)
    assert out.sentence.startswith(f"{EVIL} (where {EVIL} in")


def test_explain_reads_the_persons_aliases(store: Store) -> None:
    """Explain narrows the events to one person's ids before resolving them: events under
    an anonymous id count for the user it was merged into, and an alias merged into one
    user then moved to another counts only for the second (its latest link)."""
    def page(mid: str, anon: str, at: datetime) -> Message:
        return Message(message_id=mid, type="page", event="$page", timestamp=at,
                       source="native", anonymous_id=anon)

    def merge(mid: str, user: str, anon: str, at: datetime) -> Message:
        return Message(message_id=mid, type="identify", event="$identify", timestamp=at,
                       source="native", user_id=user, alias_id=anon)

    store.append("p", [
        page("1", "anon-1", AS_OF - 5 * DAY), page("2", "anon-1", AS_OF - 4 * DAY),
        page("3", "anon-2", AS_OF - 3 * DAY), page("4", "anon-2", AS_OF - 3 * DAY),
        page("5", "anon-2", AS_OF - 3 * DAY),
        merge("6", "cat", "anon-1", AS_OF - 4 * DAY), merge("7", "cat", "anon-2", AS_OF - 3 * DAY),
        merge("8", "dan", "anon-2", AS_OF - 2 * DAY),
    ], received_at=datetime(2026, 1, 1))
    rule = {"kind": "performed", "event": "$page", "window": {"last": 30}}
    assert explain(store, "p", rule, "cat", AS_OF).observed == {"count": 2}
    assert explain(store, "p", rule, "dan", AS_OF).observed == {"count": 3}
    with pytest.raises(UnknownUserError):
        explain(store, "p", rule, "anon-2", AS_OF)


def test_first_time_reads_to_the_second(store: Store) -> None:
    first = AS_OF - 4 * DAY + timedelta(hours=9, minutes=5, seconds=7, microseconds=456_895)
    store.append("p", [track("f1", "cy", "report_viewed", first),
                       track("f2", "cy", "report_viewed", AS_OF - DAY)],
                 received_at=datetime(2026, 1, 1))
    rule = {"kind": "first_performed", "event": "report_viewed", "window": {"last": 7}}
    out = explain(store, "p", rule, "cy", AS_OF)
    assert out.truth is True
    assert out.sentence == ("first report_viewed: 2026-03-27 09:05:07; "
                            "needs it in the last 7 days")


def test_labels_read_as_sentences(loaded: Store) -> None:
    rule = {"any": [{"all": []}, {"kind": "last_seen", "within_last_days": 1},
                    {"kind": "sequence", "steps": [
                        {"event": "report_viewed"},
                        {"event": "report_viewed", "within_hours": 1}]},
                    {"kind": "performed", "event": "report_viewed",
                     "window": {"within_days_of_first_seen": 1}}]}
    out = explain(loaded, "p", rule, "ann", AS_OF)
    empty, seen, sequence, first_day = out.children
    assert (empty.label, empty.truth) == ("all of none (always true)", True)
    assert seen.label == "last seen within the last 1 day"
    assert "report_viewed within 1 hour" in sequence.label
    assert first_day.label.endswith("within 1 day of first seen")
    assert explain(loaded, "p", {"any": []}, "ann", AS_OF).label == "any of none (never true)"
