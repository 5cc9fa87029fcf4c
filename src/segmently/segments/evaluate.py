"""Evaluating many segments at one instant, in one pass over the events.

    ev = evaluate(store, project_id, {"power": rule, "dormant": rule2}, as_of)
    ev.table                 # Ibis: user_id + one boolean column per segment (ev.columns)
    ev.membership()          # Arrow: (user_id, segment, member), long form
    ev.members("power")      # Ibis: user_id of the members

Time semantics: only events with timestamp < as_of that were received at or before
known_at count (store.views.resolved_events; both default to one reading of now), so
re-evaluating a past instant with `known_at = as_of` gives the answer given then, however
much late data arrived since. Windows end at as_of.

Called by `core.Project.evaluation` (every shell), `refreshing.py`, `drafts.py` and
`examples.py`; the lowering is `lower.py`'s, the per-user table `aggregates.py`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from segmently.profile.config import Vocabulary
from segmently.segments.aggregates import Aggregates
from segmently.segments.errors import SegmentReferenceError
from segmently.segments.lower import Lowerer
from segmently.segments.rules import Rule, parse_rule
from segmently.segments.windows import instants
from segmently.store import Store


def as_rules(segments: Mapping[str, Rule | dict[str, Any]]) -> dict[str, Rule]:
    """Accept parsed rules or raw JSON/YAML data (validated, errors naming the segment)."""
    return {name: rule if not isinstance(rule, dict) else parse_rule(rule, f"{name}.rule")
            for name, rule in segments.items()}


@dataclass
class Evaluation:
    """Membership of several segments at one instant, as a lazy Ibis table."""

    as_of: datetime
    table: ir.Table
    columns: dict[str, str]  # segment name -> boolean column of `table`
    known_at: datetime | None = None  # what had been received (None: everything)

    def members(self, segment: str) -> ir.Table:
        if segment not in self.columns:
            raise SegmentReferenceError(f"segment {segment!r} was not evaluated")
        t = self.table
        return t.filter(t[self.columns[segment]]).select("user_id").order_by("user_id")

    def membership(self) -> pa.Table:
        """(user_id, segment, member) for every known user and segment."""
        wide = self.table.to_pyarrow()
        parts = [pa.table({"user_id": wide["user_id"],
                           "segment": pa.array([name] * wide.num_rows, pa.string()),
                           "member": wide[col]})
                 for name, col in self.columns.items()]
        if not parts:
            return pa.table({"user_id": pa.array([], pa.string()),
                             "segment": pa.array([], pa.string()),
                             "member": pa.array([], pa.bool_())})
        return pa.concat_tables(parts)

    def member_ids(self) -> dict[str, pa.Array]:
        """Each segment's member ids, from one query (what a refresh records)."""
        wide = self.table.to_pyarrow()
        users = wide["user_id"]
        return {name: pc.filter(users, pc.fill_null(wide[col], False)).combine_chunks()
                for name, col in self.columns.items()}

    def sizes(self) -> dict[str, int]:
        t = self.table
        counts = t.aggregate(**{c: ibis.cases((t[c], 1), else_=0).sum()
                                 for c in self.columns.values()}).to_pyarrow()
        return {name: int(counts[col][0].as_py() or 0) for name, col in self.columns.items()}


def evaluate(
    store: Store,
    project_id: str,
    segments: Mapping[str, Rule | dict[str, Any]],
    as_of: datetime | None = None,
    only: Iterable[str] | None = None,
    vocabulary: Vocabulary | None = None,
    rollups: bool = True,
    known_at: datetime | None = None,
    persons: tuple[str, ...] | None = None,
) -> Evaluation:
    """Evaluate `only` (default: all) of `segments`; references resolve within `segments`.

    Two instants (docs/rules.md, Time): what had happened by `as_of`, as received by
    `known_at`; both default to now. `known_at=as_of` reproduces the answer given at as_of.

    `vocabulary` (the workspace's features, milestones and scores) is what used_feature,
    reached_milestone, journey_stage and metric conditions read; the profile table is
    joined in only when a rule has a metric condition. `rollups=False` computes every
    aggregate from raw events (the same answer, slower: for tests and benchmarks).
    `persons`: only these users' rows are read and answered (an incremental refresh;
    exact for rules that depend on the user alone, `refreshing.per_user`)."""
    rules = as_rules(segments)
    as_of, known_at = instants(as_of, known_at)
    aggs = Aggregates(as_of, vocabulary=vocabulary or Vocabulary(),
                      use_rollups=rollups, known_at=known_at)
    lowerer = Lowerer(aggs, rules)
    names = list(only) if only is not None else list(rules)
    for name in rules:  # every definition is checked, even those not asked for
        lowerer.segment(name)
    nodes = {name: lowerer.segment(name) for name in names}
    t = lowerer.aggs.table(store, project_id, persons)
    columns = {name: f"_s{i}" for i, name in enumerate(names)}
    wide = t.select(user_id=t.person_id,
                    **{columns[name]: node.truth(t) for name, node in nodes.items()})
    return Evaluation(as_of, wide, columns, known_at)


def members(store: Store, project_id: str, segments: Mapping[str, Rule | dict[str, Any]],
            name: str, as_of: datetime | None = None,
            vocabulary: Vocabulary | None = None,
            known_at: datetime | None = None) -> list[str]:
    """The sorted user ids of one segment at as_of (as known at known_at)."""
    ev = evaluate(store, project_id, segments, as_of, only=[name], vocabulary=vocabulary,
                  known_at=known_at)
    return ev.members(name).to_pyarrow()["user_id"].to_pylist()
