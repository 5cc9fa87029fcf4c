"""Segment sizes with one example member each and why they are in: what `segmently demo`
shows.

One `evaluate` call computes every segment (shared aggregates, one pass); one more query
picks the smallest user id of each segment, and `explain` says why that user is in.
Called by `cli/demo.py`; `demo/report.py` formats the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis

from segmently.segments.evaluate import as_rules, evaluate
from segmently.segments.explain import Explanation, explain
from segmently.segments.rules import Rule
from segmently.store import Store


@dataclass
class SegmentExample:
    segment: str
    size: int
    member: str | None  # the smallest user id in the segment, None when it is empty
    why: Explanation | None

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "size": self.size, "member": self.member,
                "why": self.why.to_dict() if self.why else None}


def segment_examples(store: Store, project_id: str,
                     segments: Mapping[str, Rule | dict[str, Any]],
                     as_of: datetime | None = None) -> list[SegmentExample]:
    """Every segment's size, first member and explanation, in the order given."""
    rules = as_rules(segments)
    ev = evaluate(store, project_id, rules, as_of)
    t = ev.table
    cols = ev.columns.values()
    row = t.aggregate(**{f"n{c}": ibis.cases((t[c], 1), else_=0).sum() for c in cols},
                      **{f"m{c}": t.user_id.min(where=t[c]) for c in cols}
                      ).to_pyarrow().to_pylist()[0]
    out = []
    for name, col in ev.columns.items():
        member = row[f"m{col}"]
        why = explain(store, project_id, rules[name], member, ev.as_of, rules) if member else None
        out.append(SegmentExample(name, int(row[f"n{col}"] or 0), member, why))
    return out
