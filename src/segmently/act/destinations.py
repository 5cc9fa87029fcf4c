"""Destinations: where segment changes go (a webhook, Slack, a Segment-compatible endpoint,
a folder of files), each with its subscriptions, stored in the database with every version
kept (like segment definitions).

    save(store, project_id, Destination(...), source="api")  # -> version
    current(store, project_id)   # {name: Destination} of the live ones
    delete(store, project_id, name)

A refresh asks `subscribers` which destinations want a segment's entries or exits and
writes their outbox rows in its own transaction (`act/outbox.py`); the delivery worker
(`act/delivery.py`) sends them.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segmently.errors import NotFoundError, SegmentlyError, validation_message
from segmently.store import Store
from segmently.store.versioned import Versioned

Kind = Literal["webhook", "slack", "segment", "files"]
Change = Literal["entered", "exited"]
NAME = r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]{0,127}$"
SECRET_PREFIX = "whsec_"


class DestinationError(SegmentlyError, ValueError):
    code = "invalid_destination"


class UnknownDestinationError(NotFoundError):
    code = "unknown_destination"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _both() -> list[Change]:
    return ["entered", "exited"]


class Subscription(Strict):
    """Which segments, which changes, and how: `changes` sends one message per batch of
    user transitions; `sync` keeps the destination's copy of the membership equal to the
    segment's (the whole list once, then add/remove diffs against what it acknowledged)."""

    segments: list[str] = Field(min_length=1, max_length=100)
    changes: list[Change] = Field(default_factory=lambda: _both(), min_length=1)
    mode: Literal["changes", "sync"] = "changes"
    batch_size: int = Field(default=100, ge=1, le=1000)


def new_secret() -> str:
    """A Standard Webhooks signing secret: whsec_ and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class Destination(Strict):
    name: str = Field(pattern=NAME)
    kind: Kind
    url: str | None = Field(default=None, max_length=2048)  # webhook, slack, segment
    secret: str | None = None  # webhook: whsec_...; made when absent
    previous_secret: str | None = None  # during a rotation both sign (two signatures)
    write_key: str | None = Field(default=None, max_length=256)  # segment: Basic auth user
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    folder: str | None = Field(default=None, max_length=1024)  # files
    format: Literal["csv", "parquet"] = "csv"  # files
    public_url: str | None = Field(default=None, max_length=2048)  # slack: links to the UI
    subscriptions: list[Subscription] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    disabled_reason: str | None = None  # set by the delivery worker when it gives up

    @model_validator(mode="after")
    def _fits_kind(self) -> Destination:
        if self.kind in ("webhook", "slack", "segment"):
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url: a {self.kind} destination needs an http(s) URL")
        if self.kind == "segment" and any(s.batch_size > 200 for s in self.subscriptions):
            raise ValueError("subscriptions: batch_size: at most 200 users a batch for a "
                             "Segment-compatible endpoint (its 500 KB limit a batch)")
        if self.kind == "files":
            parts = PurePosixPath(self.folder or "").parts
            if not parts or parts[0] == "/" or ".." in parts or "\\" in (self.folder or ""):
                raise ValueError("folder: a files destination needs a relative folder "
                                 "without `..` (written under SEGMENTLY_FILES_ROOT, in the "
                                 "project's own folder)")
        if self.kind == "webhook" and self.secret is None:
            self.secret = new_secret()
        for secret in (self.secret, self.previous_secret):
            if secret is not None and not _valid_secret(secret):
                raise ValueError("secret: a Standard Webhooks secret: whsec_ and base64")
        for key, value in self.headers.items():
            if not key or any(c in key + value for c in "\r\n\0") or len(key + value) > 4096:
                raise ValueError(f"headers: {key!r} is not a header one may send")
        return self

    def public(self) -> dict[str, Any]:
        """As shown to people: secrets cut to their first characters."""
        data = self.model_dump(mode="json")
        for key in ("secret", "previous_secret", "write_key"):
            if data.get(key):
                data[key] = data[key][:10] + "…"
        return data


def _valid_secret(secret: str) -> bool:
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)) >= 16
    except ValueError:
        return False


def parse(data: dict[str, Any]) -> Destination:
    """A destination from JSON/YAML data; a validation error names the field."""
    try:
        return Destination.model_validate(data)
    except ValidationError as exc:
        raise DestinationError(validation_message(exc)) from None


# -- storage -----------------------------------------------------------------------------
VERSIONS = Versioned("destination_versions")
TABLES = VERSIONS.tables


def ensure_tables(store: Store) -> None:
    VERSIONS.ensure(store)


def current(store: Store, project_id: str) -> dict[str, Destination]:
    """The live destinations (latest version of each, unless deleted)."""
    return {name: Destination.model_validate(payload)
            for name, payload in VERSIONS.live(store, project_id).items()}


def get(store: Store, project_id: str, name: str) -> Destination:
    found = current(store, project_id).get(name)
    if found is None:
        raise UnknownDestinationError(f"no destination named {name!r}")
    return found


def save(store: Store, project_id: str, destination: Destination, source: str = "api",
         create: bool = False) -> int:
    """Store a destination as its next version (the live one, unchanged, writes nothing);
    with `create`, a name that is live is refused."""
    exists = DestinationError(f"name: a destination named {destination.name!r} exists",
                              code="destination_exists", status=409)
    return VERSIONS.save(store, project_id, destination.name,
                         destination.model_dump(mode="json"), source, create, exists)


def delete(store: Store, project_id: str, name: str, source: str = "api") -> int:
    return VERSIONS.delete(store, project_id, name, source,
                           UnknownDestinationError(f"no destination named {name!r}"))


def subscribers(destinations: dict[str, Destination], segment: str
                ) -> list[tuple[Destination, Subscription]]:
    """The enabled destinations subscribed to a segment, with the subscription."""
    return [(d, s) for d in destinations.values() if d.enabled
            for s in d.subscriptions if segment in s.segments]
