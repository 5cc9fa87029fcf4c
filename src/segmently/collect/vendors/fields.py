"""Checks every vendor mapping shares: known top-level fields, objects, identity links.
Used by `amplitude.py`, `mixpanel.py` and `posthog.py` as they map a row (`jsonrows.py`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from segmently.collect.common import as_object
from segmently.collect.errors import InputError
from segmently.collect.jsonrows import RowContext


def only_known(row: dict[str, Any], known: Collection[str], vendor: str) -> None:
    """A field the vendor's export does not have means the file is not what --from says
    (or the export changed): a bad row naming it, rather than data stored under a guess."""
    for name in row:
        if name not in known:
            raise InputError(f"unknown field {str(name)[:64]!r} for a {vendor} export row",
                             code="unknown_field")


def required_object(row: dict[str, Any], name: str) -> dict[str, Any]:
    if row.get(name) is None:
        raise InputError(f"{name} is missing", code="missing_field")
    return as_object(row[name], name)


def first_link(ctx: RowContext, anonymous: str | None, user: str | None) -> str | None:
    """The anonymous id to merge into the user on this row: on the first row of the file
    carrying both (later rows would only repeat the identities row)."""
    if not anonymous or not user or anonymous == user:
        return None
    linked: set[tuple[str, str]] = ctx.state.setdefault("linked", set())
    if (anonymous, user) in linked:
        return None
    linked.add((anonymous, user))
    return anonymous
