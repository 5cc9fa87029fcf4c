"""Feature adoption compared across segments: the share of each segment's members who
used each feature in the activity window (and the same share over every user, the
baseline a segment is read against)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    e = e.filter(e.type.isin(ACTIVITY_TYPES))
    usage = feature_usage(e, vocab.features, as_of, vocab.activity_window_days)
    assert usage is not None  # features are declared
    used = usage.filter(usage.uses_window > 0)
    out = []
    for name, ids in {ALL_USERS: everyone, **groups}.items():
        size = int(ids.count().to_pyarrow().as_py())
        mine = used.semi_join(ids, used.person_id == ids.user_id)
        rows = mine.group_by("feature").aggregate(users=mine.person_id.nunique()) \
            .to_pyarrow().to_pylist()
        counts = {r["feature"]: int(r["users"]) for r in rows}
        out.append({"name": name, "size": size,
                    "used": {f: counts.get(f, 0) for f in names},
                    "share": {f: counts.get(f, 0) / size if size else 0.0 for f in names}})
    return {"features": names, "groups": out}
