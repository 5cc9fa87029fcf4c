"""Feature adoption compared across segments: the share of each segment's members who
used each feature in the activity window (and the same share over every user, the
baseline a segment is read against).

Feature usage comes from the basis (insights/basis.py), joined to every group's members
in one aggregation: comparing twenty segments is one join, not twenty. Called by
`web/ui_api.py` (`/api/insights/adoption`), with the members from `core.Project.members_of`.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.insights.basis import Basis

ALL_USERS = "(all users)"


def adoption(base: Basis, features: list[str], groups: list[str],
             members: ir.Table) -> dict[str, Any]:
    """{features, groups: [{name, size, used: {feature: users}, share: {feature: 0..1}}]}
    for every user and for each group, whose members are `members` (segment, user_id)
    rows (core.Project.members_of)."""
    if not features or base.features is None:
        return {"features": [], "groups": []}
    everyone = base.users
    everyone = everyone.select(user_id=everyone.user_id.cast("string"),  # nullability
                               group=ibis.literal(ALL_USERS))
    # no groups: no union with an empty in-memory members table, into whose scan DuckDB
    # 1.5 pushes a bloom filter that its PyArrow scan cannot apply (a 500 before)
    members = everyone if not groups else ibis.union(everyone, members.select(
        user_id=members.user_id.cast("string"), group=members.segment.cast("string")))
    used = base.features
    joined = members.inner_join(used, members.user_id == used.user_id)
    counts = joined.group_by(["group", "feature"]).aggregate(users=joined.count())
    sizes = members.group_by("group").aggregate(size=members.count())
    size_of = {r["group"]: int(r["size"]) for r in sizes.to_pyarrow().to_pylist()}
    used_by: dict[str, dict[str, int]] = {}
    for r in counts.to_pyarrow().to_pylist():
        used_by.setdefault(r["group"], {})[r["feature"]] = int(r["users"])
    out = []
    for name in [ALL_USERS, *groups]:
        size, mine = size_of.get(name, 0), used_by.get(name, {})
        out.append({"name": name, "size": size, "used": {f: mine.get(f, 0) for f in features},
                    "share": {f: mine.get(f, 0) / size if size else 0.0 for f in features}})
    return {"features": features, "groups": out}
