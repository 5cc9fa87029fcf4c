"""The holdout: which arm of a campaign a user is in, drawn once and kept.

A user's arm is a stable hash of (campaign, user) against the campaign's
`holdout_percent` (the same answer on every server and every request), and it is recorded
the first time the user qualifies for the campaign (audience, schedule and trigger met),
whether the campaign is then shown or held out. The record is what counts afterwards:
changing `holdout_percent` later never moves a user who was already assigned. Results
(insights/) compare everyone assigned to "treatment" with everyone "holdout" (intention
to treat). Recorded by the targeting state (`runtime/engagement.py`), which batches the
writes off the request path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from segmently.store import Store
from segmently.store.rows import arrow_schema

Arm = Literal["treatment", "holdout"]
TABLE = "campaign_assignments"
SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "campaign": dt.String(nullable=False),
    "user_id": dt.String(nullable=False),
    "arm": dt.String(nullable=False),  # treatment | holdout
    "campaign_version": dt.Int64(nullable=False),
    "assigned_at": dt.Timestamp(nullable=False),
})
TABLES = {TABLE: SCHEMA}
_ARROW = arrow_schema(SCHEMA)


def draw(campaign: str, user_id: str, holdout_percent: float) -> Arm:
    """The arm the hash gives: the first 8 bytes of SHA-256(campaign NUL user) as a
    fraction of 2**64, held out when below holdout_percent / 100."""
    digest = hashlib.sha256(f"{campaign}\0{user_id}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return "holdout" if share * 100 < holdout_percent else "treatment"


@dataclass(frozen=True, slots=True)
class Assignment:
    campaign: str
    user_id: str
    arm: Arm
    campaign_version: int
    assigned_at: datetime


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def table(store: Store, project_id: str, campaign: str | None = None) -> ir.Table:
    ensure_tables(store)
    t = store.table(TABLE)
    t = t.filter(t.project_id == project_id)
    return t if campaign is None else t.filter(t.campaign == campaign)


def load(store: Store, project_id: str) -> dict[tuple[str, str], Arm]:
    """(campaign, user) -> arm of every assignment of the project (the earliest wins)."""
    rows = table(store, project_id).order_by("assigned_at") \
        .select("campaign", "user_id", "arm").to_pyarrow().to_pylist()
    out: dict[tuple[str, str], Arm] = {}
    for row in rows:
        out.setdefault((row["campaign"], row["user_id"]), row["arm"])
    return out


def record(store: Store, project_id: str, rows: list[Assignment]) -> None:
    if not rows:
        return
    ensure_tables(store)
    store.insert_table(TABLE, pa.Table.from_pylist(
        [{"project_id": project_id, "campaign": a.campaign, "user_id": a.user_id,
          "arm": a.arm, "campaign_version": a.campaign_version,
          "assigned_at": a.assigned_at} for a in rows], schema=_ARROW))


def counts(store: Store, project_id: str) -> dict[str, dict[str, int]]:
    """campaign -> arm -> users assigned."""
    t = table(store, project_id)
    rows = t.group_by(["campaign", "arm"]).aggregate(n=t.user_id.nunique()) \
        .to_pyarrow().to_pylist()
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["campaign"], {})[row["arm"]] = int(row["n"])
    return out
