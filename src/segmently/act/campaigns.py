"""In-app campaigns: what the browser SDK shows to whom (a modal, a banner, a tour of
anchored tooltips, a checklist, an NPS survey, a short survey), kept in the database with
every version (like segments and destinations), and the project's in-app settings (the
cooldown across campaigns, identity verification).

    save(store, project_id, Campaign(...), source="apply")   # -> version
    current(store, project_id)        # {name: Stored} of the live ones
    settings(store, project_id)       # InAppSettings

Who sees which campaign now is `act/targeting.py`; the arms of the holdout
`act/assignments.py`; what the server answers the SDK `web/campaign_routes.py`.
"""

from __future__ import annotations

import fnmatch
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segmently.errors import NotFoundError, SegmentlyError, validation_message
from segmently.segments.errors import RuleError
from segmently.segments.rules import parse_rule
from segmently.store import Store
from segmently.store.versioned import Version, Versioned

NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"
Kind = Literal["modal", "banner", "tour", "checklist", "nps", "survey"]
VERSIONS = Versioned("campaign_versions")
SETTINGS = Versioned("in_app_settings")
TABLES = {**VERSIONS.tables, **SETTINGS.tables}
Text = Field(min_length=1, max_length=2000)
Label = Field(min_length=1, max_length=120)


class CampaignError(SegmentlyError, ValueError):
    code = "invalid_campaign"


class UnknownCampaignError(NotFoundError):
    code = "unknown_campaign"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _safe_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("https://", "http://", "/")):
        raise ValueError("url: an http(s) URL or a path starting with /")
    return url


class Button(Strict):
    label: str = Label
    url: str | None = Field(default=None, max_length=2048)

    @model_validator(mode="after")
    def _url(self) -> Button:
        _safe_url(self.url)
        return self


class Modal(Strict):
    title: str = Label
    body: str = Text
    button: Button | None = None
    dismiss_label: str = Field(default="Not now", min_length=1, max_length=60)


class Banner(Strict):
    body: str = Text
    button: Button | None = None
    position: Literal["top", "bottom"] = "top"


class Step(Strict):
    selector: str = Field(min_length=1, max_length=500)  # CSS; a missing element: skipped
    title: str = Label
    body: str = Text


class Tour(Strict):
    steps: list[Step] = Field(min_length=1, max_length=20)


class Task(Strict):
    """Done once the user did `event`, reached `milestone` (the vocabulary's), or the SDK
    reported the task completed."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    label: str = Label
    event: str | None = Field(default=None, min_length=1, max_length=200)
    milestone: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2048)

    @model_validator(mode="after")
    def _one_way(self) -> Task:
        if (self.event is None) == (self.milestone is None):
            raise ValueError("a task is completed by exactly one of event or milestone")
        _safe_url(self.url)
        return self


class Checklist(Strict):
    title: str = Label
    tasks: list[Task] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique(self) -> Checklist:
        ids = [t.id for t in self.tasks]
        if len(set(ids)) != len(ids):
            raise ValueError("tasks: each task needs its own id")
        return self


class FollowUp(Strict):
    detractor: str = Field(default="What is the one thing we should fix?", max_length=500)
    passive: str = Field(default="What would make us a 10 for you?", max_length=500)
    promoter: str = Field(default="What do you like most? A review would mean a lot.",
                          max_length=500)


class Nps(Strict):
    question: str = Field(default="How likely are you to recommend us to a friend or "
                          "colleague?", min_length=1, max_length=500)
    follow_up: FollowUp = Field(default_factory=FollowUp)
    thanks: str | None = Field(default=None, max_length=500)  # after the answer


class Question(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    kind: Literal["choice", "text"]
    prompt: str = Field(min_length=1, max_length=500)
    options: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _options(self) -> Question:
        if self.kind == "choice" and len(self.options) < 2:
            raise ValueError("a choice question needs at least two options")
        if self.kind == "text" and self.options:
            raise ValueError("a text question has no options")
        return self


class Survey(Strict):
    title: str | None = Field(default=None, max_length=120)
    questions: list[Question] = Field(min_length=1, max_length=10)
    one_at_a_time: bool = False  # else every question together
    thanks: str | None = Field(default=None, max_length=500)


CONTENT: dict[str, type[Strict]] = {"modal": Modal, "banner": Banner, "tour": Tour,
                                    "checklist": Checklist, "nps": Nps, "survey": Survey}


class Audience(Strict):
    """Members of every segment of `in` and of none of `not_in` (empty: everyone)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    in_: list[str] = Field(default_factory=list, alias="in", max_length=20)
    not_in: list[str] = Field(default_factory=list, max_length=20)

    def segments(self) -> list[str]:
        return [*self.in_, *self.not_in]

    def admits(self, memberships: frozenset[str] | set[str]) -> bool:
        return all(s in memberships for s in self.in_) and \
            not any(s in memberships for s in self.not_in)


class Trigger(Strict):
    """When on the page: a URL path pattern (`/reports/*`, shell-style), an event the
    page just tracked, and a delay in seconds (kept by the SDK)."""

    url: str | None = Field(default=None, min_length=1, max_length=500)
    event: str | None = Field(default=None, min_length=1, max_length=200)
    delay_seconds: int = Field(default=0, ge=0, le=3600)

    def matches(self, path: str | None, event: str | None) -> bool:
        if self.event is not None and event != self.event:
            return False
        return self.url is None or (path is not None and fnmatch.fnmatchcase(path, self.url))


class Schedule(Strict):
    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        for key in ("start", "end"):  # stored as naive UTC, as every instant here
            value = getattr(self, key)
            if value is not None and value.tzinfo is not None:
                setattr(self, key, value.astimezone(UTC).replace(tzinfo=None))
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def open_at(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and \
            (self.end is None or now < self.end)


class EveryDays(Strict):
    every_days: int = Field(ge=1, le=365)


Frequency = Literal["once", "until_dismissed"] | EveryDays


class Goal(Strict):
    """What the campaign is for: a segment rule (the rule language) holding for the user
    within `within_days` of assignment; read by the results report (insights/)."""

    rule: dict[str, Any]
    within_days: int = Field(default=14, ge=1, le=365)

    @model_validator(mode="after")
    def _rule(self) -> Goal:
        parse_rule(self.rule, "rule")
        return self


class Campaign(Strict):
    name: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=2000)
    kind: Kind
    audience: Audience = Field(default_factory=Audience)
    trigger: Trigger = Field(default_factory=Trigger)
    schedule: Schedule = Field(default_factory=Schedule)
    frequency: Frequency = "once"
    priority: int = Field(default=0, ge=-1000, le=1000)  # higher first
    holdout_percent: float = Field(default=10.0, ge=0, le=90)
    goal: Goal | None = None
    content: dict[str, Any]
    enabled: bool = True

    @model_validator(mode="after")
    def _content(self) -> Campaign:
        try:
            model = CONTENT[self.kind].model_validate(self.content)
        except ValidationError as exc:
            raise ValueError(validation_message(exc, "content.")) from None
        self.content = model.model_dump(mode="json", exclude_none=True)
        return self

    def tasks(self) -> list[Task]:
        return list(Checklist.model_validate(self.content).tasks) \
            if self.kind == "checklist" else []


def parse(data: Any) -> Campaign:
    """A campaign from JSON/YAML data; a validation error names the field."""
    if not isinstance(data, dict):
        raise CampaignError("a campaign is a mapping of fields (name, kind, content...)")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        raise CampaignError(validation_message(exc)) from None
    except RuleError as exc:
        raise CampaignError(str(exc)) from None


# -- storage -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    campaign: Campaign
    version: int

    def to_json(self) -> dict[str, Any]:
        return {**self.campaign.model_dump(mode="json", by_alias=True),
                "version": self.version}


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def current(store: Store, project_id: str) -> dict[str, Stored]:
    """The live campaigns with their version numbers."""
    rows = VERSIONS.latest(store, project_id)
    return {name: Stored(Campaign.model_validate(payload), int(rows[name]["version"]))
            for name, payload in VERSIONS.live(store, project_id).items()}


def get(store: Store, project_id: str, name: str) -> Stored:
    found = current(store, project_id).get(name)
    if found is None:
        known = ", ".join(current(store, project_id)) or "none"
        raise UnknownCampaignError(f"no campaign named {name!r}; known: {known}")
    return found


def save(store: Store, project_id: str, campaign: Campaign, source: str = "api",
         create: bool = False) -> int:
    exists = CampaignError(f"name: a campaign named {campaign.name!r} exists",
                           code="campaign_exists", status=409)
    return VERSIONS.save(store, project_id, campaign.name,
                         campaign.model_dump(mode="json", by_alias=True), source, create,
                         exists)


def delete(store: Store, project_id: str, name: str, source: str = "api") -> int:
    return VERSIONS.delete(store, project_id, name, source,
                           UnknownCampaignError(f"no campaign named {name!r}"))


def history(store: Store, project_id: str, name: str) -> list[Version]:
    found = VERSIONS.history(store, project_id, name)
    if not found:
        raise UnknownCampaignError(f"no campaign named {name!r} ever existed")
    return found


# -- the project's in-app settings -------------------------------------------------------
class InAppSettings(Strict):
    """`cooldown_hours`: no user sees two campaigns within this many hours (0: no limit).
    `identity_verification`: `/v1/campaigns` and events of identified users need
    `userHash` = HMAC-SHA256(verification_secret, user id), made on the host's server."""

    cooldown_hours: float = Field(default=24.0, ge=0, le=24 * 90)
    identity_verification: bool = False
    verification_secret: str | None = Field(default=None, min_length=32, max_length=128)

    @model_validator(mode="after")
    def _secret(self) -> InAppSettings:
        if self.identity_verification and self.verification_secret is None:
            self.verification_secret = "ivs_" + secrets.token_hex(24)
        return self

    def public(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if data["verification_secret"]:
            data["verification_secret"] = data["verification_secret"][:8] + "…"
        return data


def settings(store: Store, project_id: str) -> InAppSettings:
    payload = SETTINGS.live(store, project_id).get("in_app")
    return InAppSettings.model_validate(payload) if payload else InAppSettings()


def save_settings(store: Store, project_id: str, value: InAppSettings,
                  source: str = "api") -> InAppSettings:
    SETTINGS.save(store, project_id, "in_app", value.model_dump(mode="json"), source)
    return value


def parse_settings(data: Any, old: InAppSettings | None = None) -> InAppSettings:
    """Settings from data, over `old` (fields left out keep their values)."""
    if not isinstance(data, dict):
        raise CampaignError("in_app: a mapping (cooldown_hours, identity_verification)")
    merged = {**(old.model_dump() if old else {}), **data}
    try:
        return InAppSettings.model_validate(merged)
    except ValidationError as exc:
        raise CampaignError(validation_message(exc, "in_app.")) from None
