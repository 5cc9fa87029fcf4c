"""Feature adoption compared across segments: the share of each segment's members who
used each feature in the activity window (and the same share over every user, the
baseline a segment is read against).

Feature usage is computed once and joined to every group's members in one aggregation,
so comparing twenty segments costs one scan of the events, not twenty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.profile.adoption import feature_usage
from segmently.profile.build import ACTIVITY_TYPES
from segmently.profile.config import Vocabulary
from segmently.store import Store
from segmently.store.views import resolved_events

ALL_USERS = "(all users)"


def adoption(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime,
             groups: dict[str, ir.Table]) -> dict[str, Any]:
    """{features, groups: [{name, size, used: {feature: users}, share: {feature: 0..1}}]}
    for every user and for each group (a table of user_id, e.g. a segment's members)."""
    names = [f.name for f in vocab.features]
    if not names:
        return {"features": [], "groups": []}
    e = resolved_events(store, project_id, as_of)
    everyone = e.select(user_id=e.person_id).distinct()
    members = ibis.union(*[ids.select(user_id=ids.user_id.cast("string"),  # nullability
                                      group=ibis.literal(name))
                           for name, ids in {ALL_USERS: everyone, **groups}.items()])
    e = e.filter(e.type.isin(ACTIVITY_TYPES))
    usage = feature_usage(e, vocab.features, as_of, vocab.activity_window_days)
    assert usage is not None  # features are declared
    used = usage.filter(usage.uses_window > 0).select("person_id", "feature")
    joined = members.inner_join(used, members.user_id == used.person_id)
    counts = joined.group_by(["group", "feature"]).aggregate(users=joined.count())
    sizes = members.group_by("group").aggregate(size=members.count())
    size_of = {r["group"]: int(r["size"]) for r in sizes.to_pyarrow().to_pylist()}
    used_by: dict[str, dict[str, int]] = {}
    for r in counts.to_pyarrow().to_pylist():
        used_by.setdefault(r["group"], {})[r["feature"]] = int(r["users"])
    out = []
    for name in [ALL_USERS, *groups]:
        size, mine = size_of.get(name, 0), used_by.get(name, {})
        out.append({"name": name, "size": size, "used": {f: mine.get(f, 0) for f in names},
                    "share": {f: mine.get(f, 0) / size if size else 0.0 for f in names}})
    return {"features": names, "groups": out}
