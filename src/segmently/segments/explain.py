"""Why a user is in or out: the rule tree with each node's truth and the observed values.

It evaluates the same lowered nodes as `evaluate`, over the per-user table restricted to one
user (the filter is pushed down to the events), and turns each node's observed values into
a sentence: "report_viewed 3 times in the last 30 days; needs at least 5". Called by
`core.Project.explain` (every shell) and `examples.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segmently.profile.config import Vocabulary
from segmently.segments.aggregates import Aggregates
from segmently.segments.errors import UnknownUserError
from segmently.segments.evaluate import as_rules
from segmently.segments.lower import Lowerer, Node
from segmently.segments.rules import Rule, parse_rule
from segmently.segments.windows import instants
from segmently.store import Store


@dataclass
class Explanation:
    kind: str
    label: str
    truth: bool
    observed: dict[str, Any]
    sentence: str
    children: list[Explanation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "truth": self.truth,
                "observed": {k: v.isoformat() if isinstance(v, datetime) else v
                             for k, v in self.observed.items()},
                "sentence": self.sentence,
                "children": [c.to_dict() for c in self.children]}

    def text(self, indent: int = 0) -> str:
        """The tree as indented lines, each marked yes / no."""
        mark = "yes" if self.truth else "no "
        line = f"{'  ' * indent}[{mark}] {self.sentence or self.label}"
        return "\n".join([line, *(c.text(indent + 1) for c in self.children)])


def _preorder(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        out.extend(_preorder(child))
    return out


def explain(
    store: Store,
    project_id: str,
    rule: Rule | dict[str, Any],
    user_id: str,
    as_of: datetime | None = None,
    segments: Mapping[str, Rule | dict[str, Any]] | None = None,
    vocabulary: Vocabulary | None = None,
    known_at: datetime | None = None,
) -> Explanation:
    """Explain `rule` (references resolve in `segments`; features, milestones and metrics
    in `vocabulary`) for one user at as_of, as known at known_at (default: now)."""
    return explain_many(store, project_id, {"": rule}, user_id, as_of, segments,
                        vocabulary, known_at)[""]


def explain_many(
    store: Store,
    project_id: str,
    rules: Mapping[str, Rule | dict[str, Any]],
    user_id: str,
    as_of: datetime | None = None,
    segments: Mapping[str, Rule | dict[str, Any]] | None = None,
    vocabulary: Vocabulary | None = None,
    known_at: datetime | None = None,
) -> dict[str, Explanation]:
    """Explain each of `rules` for one user in one evaluation pass: the rules are lowered
    into one Aggregates, so the user's rows are read once and every node of every tree is
    a column of the same one-row answer (a user page costs that user's rows, not one
    query per segment)."""
    if not rules:
        return {}
    as_of, known_at = instants(as_of, known_at)
    aggs = Aggregates(as_of, vocabulary=vocabulary or Vocabulary(),
                      known_at=known_at)
    lowerer = Lowerer(aggs, as_rules(segments or {}))
    trees = {name: _preorder(lowerer.lower(parse_rule(rule) if isinstance(rule, dict)
                                           else rule))
             for name, rule in rules.items()}
    t = lowerer.aggs.table(store, project_id, person=user_id)
    columns: dict[str, Any] = {}
    for r, nodes in enumerate(trees.values()):
        for i, node in enumerate(nodes):
            columns[f"_r{r}_n{i}"] = node.truth(t)
            for j, expr in enumerate(node.observed(t).values()):
                columns[f"_r{r}_o{i}_{j}"] = expr
    rows = t.select(**columns).to_pyarrow().to_pylist()
    if not rows:
        raise UnknownUserError(f"no user {user_id!r} in project {project_id!r} "
                               f"as of {as_of.isoformat(sep=' ')}")
    return {name: _built(nodes, t, rows[0], f"_r{r}_")
            for r, (name, nodes) in enumerate(trees.items())}


def _built(nodes: list[Node], t: Any, row: dict[str, Any], prefix: str) -> Explanation:
    """One tree's explanations from its columns of the answer row."""
    built: dict[int, Explanation] = {}
    for i in reversed(range(len(nodes))):
        node = nodes[i]
        observed = {k: row[f"{prefix}o{i}_{j}"] for j, k in enumerate(node.observed(t))}
        built[i] = Explanation(node.kind, node.label, bool(row[f"{prefix}n{i}"]), observed,
                               node.sentence(observed) if observed else node.label)
    _link(nodes, built)
    return built[0]


def _link(nodes: list[Node], built: dict[int, Explanation]) -> None:
    index = 0

    def walk(node: Node) -> Explanation:
        nonlocal index
        me = built[index]
        index += 1
        me.children = [walk(child) for child in node.children]
        return me

    walk(nodes[0])
