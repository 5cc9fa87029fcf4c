"""Accounts roll their users' profiles up: B2B segmentation works on companies too.
`user_accounts` is read by the profile runs (`stored.py`: a member's account) and the
`account` condition (`segments/kinds/flows.py`)."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from segmently.profile.literals import f64
from segmently.store import Store, schema
from segmently.store.views import identity_map, resolved_events


def user_accounts(store: Store, project_id: str, as_of: datetime,
                  known_at: datetime | None = None) -> ir.Table:
    """person_id -> account_id: the latest account a user was linked to by a group call,
    else the account on their latest event that carried one. A group call made under an
    anonymous or previous id belongs to the person that id was merged into (as events do).
    Links made before as_of and received by known_at (None: ever) count."""
    links = store.table(schema.ACCOUNT_LINKS)
    links = links.filter(links.project_id == project_id, links.linked_at < as_of)
    if known_at is not None:
        links = links.filter(links.received_at <= known_at)
    ids = identity_map(store, project_id, as_of, known_at)
    links = links.left_join(ids, links.user_id == ids.alias_id)
    links = links.mutate(person_id=links.user_id_right.coalesce(links.user_id))
    linked = links.group_by("person_id").aggregate(
        account_id=links.account_id.argmax(links.linked_at.epoch_seconds()))
    e = resolved_events(store, project_id, as_of, known_at=known_at)
    e = e.filter(e.account_id.notnull())
    seen = e.group_by("person_id").aggregate(
        seen_account=e.account_id.argmax(e.timestamp.epoch_seconds()))
    both = linked.outer_join(seen, "person_id")
    return both.select(person_id=both.person_id.coalesce(both.person_id_right),
                       account_id=both.account_id.coalesce(both.seen_account))


def account_rollup(users: ir.Table, accounts: ir.Table) -> ir.Table:
    """Per account: users and active users, mean engagement and health, the least healthy
    user's score, NPS promoters and detractors, revenue, missed payments, plan."""
    u = users.inner_join(accounts, users.user_id == accounts.person_id)
    active = u.events_window > 0
    return u.group_by("account_id").aggregate(
        users=u.count(),
        active_users=u.count(where=active),
        avg_engagement=u.engagement_score.mean(),
        avg_health=u.health_score.mean(),
        min_health=u.health_score.min(),
        promoters=u.count(where=u.nps_category == "promoter"),
        detractors=u.count(where=u.nps_category == "detractor"),
        revenue_to_date=u.revenue_to_date.sum().fill_null(f64(0.0)),
        payments_missed_window=u.payments_missed_window.sum().fill_null(0),
        last_seen=u.last_seen.max(),
        plan=u.plan.max(),
    ).mutate(active_share=lambda t: ibis.cases((t.users > 0, t.active_users.cast("float64")
                                                / t.users), else_=f64(0.0)))
