"""Event kinds and `EventPart`: a column-wise bundle of generated events of one origin.

A kind is (type, event name, what its identify/group traits are). Generators return parts;
`rows.assemble` concatenates them, orders them per user in time and numbers them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from segmently.demo import vocabulary as v

# (message type, event name) per kind code; several kinds may share one event name
KINDS: list[tuple[str, str]] = [
    *(("track", name) for name in v.MILESTONES),  # 0-4
    *(("track", name) for name in v.FEATURES),  # 5-11
    ("page", v.PAGE),  # 12
    ("track", v.NPS_SUBMITTED),  # 13
    *(("track", name) for name in v.BILLING),  # 14-18
    ("identify", v.IDENTIFY),  # 19: at signup, every user trait
    ("identify", v.IDENTIFY),  # 20: the account's plan changed
    ("group", v.GROUP),  # 21: the owner creates the account, every account trait
    ("group", v.GROUP),  # 22: a teammate joins the account, no traits
    ("group", v.GROUP),  # 23: the account's plan changed: plan, mrr
    ("track", v.CAMPAIGN_SHOWN),  # 24: the SDK showed an in-app campaign (demo/planted.py)
]
FEATURE_KINDS = np.arange(5, 12)
ADVANCED_KINDS = np.arange(8, 12)
REPORT_VIEWED, DASHBOARD_VIEWED, REPORT_CREATED = 5, 6, 7
ALERT, EXPORT, API, SQL = 8, 9, 10, 11
PAGE, NPS = 12, 13
TRIAL_STARTED, TRIAL_CONVERTED, PAYMENT_SUCCEEDED, PAYMENT_FAILED, CANCELLED = range(14, 19)
IDENTIFY_SIGNUP, IDENTIFY_PLAN, GROUP_CREATE, GROUP_JOIN, GROUP_PLAN = range(19, 24)
CAMPAIGN_SHOWN = 24


@dataclass(init=False)
class EventPart:
    """Events of one origin: chunk-local user, time (s since window start), kind, an
    integer argument (the new plan code for plan changes; zeros when not given) and
    properties JSON."""

    user: np.ndarray
    ts: np.ndarray
    kind: np.ndarray
    properties: pa.Array
    arg: np.ndarray

    def __init__(self, user: np.ndarray, ts: np.ndarray, kind: np.ndarray,
                 properties: pa.Array, arg: np.ndarray | None = None) -> None:
        n = len(user)
        self.user, self.ts, self.kind, self.properties = user, ts, kind, properties
        self.arg = np.zeros(n, np.int64) if arg is None else arg
        if not (len(self.ts) == len(self.kind) == len(self.properties) == len(self.arg) == n):
            raise ValueError("EventPart columns differ in length")

    @classmethod
    def concat(cls, parts: list[EventPart]) -> EventPart:
        return cls(
            user=np.concatenate([p.user for p in parts]).astype(np.int64),
            ts=np.concatenate([p.ts for p in parts]),
            kind=np.concatenate([p.kind for p in parts]).astype(np.int64),
            properties=pa.concat_arrays([p.properties.cast(pa.string()) for p in parts]),
            arg=np.concatenate([p.arg for p in parts]).astype(np.int64),
        )

    def keep(self, mask: np.ndarray) -> EventPart:
        idx = pa.array(np.flatnonzero(mask))
        return EventPart(self.user[mask], self.ts[mask], self.kind[mask],
                         self.properties.take(idx), self.arg[mask])


def by_kind(kind: np.ndarray) -> tuple[np.ndarray, list[tuple[int, slice]]]:
    """A stable order grouping rows by kind, and the slice of each kind in that order:
    properties are built one kind at a time, each with its own template."""
    order = np.argsort(kind, kind="stable")
    sorted_kind = kind[order]
    kinds, starts = np.unique(sorted_kind, return_index=True)
    ends = np.append(starts[1:], len(kind))
    return order, [(int(k), slice(s, e)) for k, s, e in zip(kinds, starts, ends, strict=True)]
