"""Lowering: every condition becomes aggregate columns plus a boolean over them.

`Lowerer.lower(rule)` walks a rule tree: groups (all, any, not) here, each condition by
its kind's lowering function, looked up in the registry (registry.py; the kinds live in
segments/kinds/). A lowering registers the aggregates its condition needs with the shared
`Aggregates` (identical ones across segments are one column) and returns a `Node`. Once
the per-user table is built (aggregates.py), `node.truth(t)` is the rule as a boolean
column and `node.observed(t)` the values behind it, which is what explain shows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from segmently.profile.matchers import EventMatcher
from segmently.segments import registry
from segmently.segments import rules as r
from segmently.segments.aggregates import Agg, Aggregates, matcher_key
from segmently.segments.conditions import EventCondition
from segmently.segments.errors import SegmentReferenceError
from segmently.segments.nodes import Node, _and
from segmently.segments.windows import Span

T = TypeVar("T")


class Lowerer:
    """Lowers rules against one evaluation instant, sharing aggregates between them.

    What kinds' lowerings use: `aggs` and `as_of`, `lower` (nested rules), `segment`
    (references), `count` (the one aggregate most event kinds need), `join_column` (a
    side table's column prefix), `state` (a kind's own per-lowering memory) and
    `sub_lowerer` (a rule over every user, for accounts)."""

    def __init__(self, aggregates: Aggregates, segments: Mapping[str, r.Rule] | None = None):
        self.aggs = aggregates
        self.as_of = aggregates.as_of
        self.segments = dict(segments or {})
        self._segment_nodes: dict[str, Node] = {}
        self._stack: list[str] = []
        self._joined: dict[Hashable, str] = {}  # side table key -> its column prefix
        self._state: dict[str, Any] = {}

    # -- segments and references -----------------------------------------------------
    def segment(self, name: str) -> Node:
        """The lowered tree of a named segment (once per name; cycles are errors)."""
        if name in self._stack:
            cycle = " -> ".join([*self._stack[self._stack.index(name):], name])
            raise SegmentReferenceError(f"segment reference cycle: {cycle}")
        if name not in self._segment_nodes:
            if name not in self.segments:
                where = f" (in segment {self._stack[-1]!r})" if self._stack else ""
                raise SegmentReferenceError(f"unknown segment {name!r}{where}; known: "
                                            f"{', '.join(sorted(self.segments)) or 'none'}")
            self._stack.append(name)
            try:
                self._segment_nodes[name] = self.lower(self.segments[name])
            finally:
                self._stack.pop()
        return self._segment_nodes[name]

    def lower(self, rule: r.Rule) -> Node:
        if isinstance(rule, r.All):
            kids = [self.lower(x) for x in rule.all]
            label = f"all of {len(kids)}" if kids else "all of none (always true)"
            return Node("all", label, lambda t: _and([k.truth(t) for k in kids], True),
                        children=kids)
        if isinstance(rule, r.Any_):
            kids = [self.lower(x) for x in rule.any]
            label = f"any of {len(kids)}" if kids else "any of none (never true)"
            return Node("any", label, lambda t: _and([k.truth(t) for k in kids], False),
                        children=kids)
        if isinstance(rule, r.Not):
            kid = self.lower(rule.not_)
            return Node("not", "not", lambda t: ~kid.truth(t), children=[kid])
        return registry.of(rule).lower(self, rule)

    # -- what lowerings share -------------------------------------------------------------
    def count(self, c: EventCondition, span: Span) -> str:
        """The column counting the condition's events (name and filters) in a window."""
        m = EventMatcher(event=c.event, where=c.where)
        return self.aggs.column(Agg("count", span, matcher_key(m)))

    def join_column(self, key: Hashable) -> str:
        """A generated column prefix per side table (no user text in identifiers)."""
        return self._joined.setdefault(key, f"_j{len(self._joined)}")

    def state(self, key: str, factory: Callable[[], T]) -> T:
        """A kind's own memory for this lowering (e.g. the profile metrics asked for, joined
        once as one side table), made by `factory` on first use."""
        if key not in self._state:
            self._state[key] = factory()
        return self._state[key]

    def sub_lowerer(self) -> Lowerer:
        """A Lowerer of its own (its rule runs over every user), sharing the reference
        stack so a cycle through an account condition is still an error."""
        sub = type(self)(self.aggs.fresh(), self.segments)
        sub._stack = list(self._stack)
        return sub
