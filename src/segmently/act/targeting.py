"""Which campaigns a user should see now: every cap decided on the server, so it holds
across browsers and devices.

`choose` takes the live campaigns, what the user has seen and done (`UserState`, folded
from the ordinary events the SDK reports: `campaign_shown`, `campaign_dismissed`,
`nps_submitted`...), the segments the user is in (the membership index), the recorded
holdout arms and the project's settings, and returns the campaigns to serve (best first)
and the assignments to record. A campaign is served when

1. it is enabled and its schedule is open;
2. its trigger matches the page (URL pattern) and the event just tracked, if it names one;
3. the user is in its audience: then the user *qualifies*, and gets an arm (drawn once by
   `act/assignments.py`, recorded, never re-drawn); a held-out user is served nothing of it;
4. its frequency allows it (once / until dismissed, clicked or answered / every N days);
5. the user saw no campaign within the project's cooldown.

Pure functions: the state they read is kept by `runtime/engagement.py`, and answered to
the SDK by `web/campaign_routes.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from segmently.act import assignments
from segmently.act.campaigns import Campaign, EveryDays, InAppSettings, Stored, Task
from segmently.profile.config import Vocabulary

SHOWN = "campaign_shown"
DISMISSED = "campaign_dismissed"
CLICKED = "campaign_clicked"
TASK_DONE = "checklist_task_completed"
ANSWERS = frozenset({"survey_answered", "nps_submitted"})  # each completes its campaign
CAMPAIGN_EVENTS = frozenset({SHOWN, DISMISSED, CLICKED, TASK_DONE, *ANSWERS})


@dataclass
class UserState:
    """What one user has seen and done, as far as campaigns care."""

    shown: dict[str, datetime] = field(default_factory=dict)  # campaign -> last shown
    dismissed: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    tasks: dict[str, set[str]] = field(default_factory=dict)  # campaign -> tasks reported
    events: set[str] = field(default_factory=set)  # watched event names the user did
    milestones: set[str] = field(default_factory=set)
    last_shown: datetime | None = None

    def observe(self, event: str, at: datetime, campaign: str | None = None,
                task: str | None = None) -> None:
        """Fold one event in (events arrive in any order: the latest time wins)."""
        self.events.add(event)
        if campaign is None:
            return
        if event == SHOWN:
            if at > self.shown.get(campaign, datetime.min):
                self.shown[campaign] = at
            if self.last_shown is None or at > self.last_shown:
                self.last_shown = at
        elif event in (DISMISSED, CLICKED):  # a click on its button ends it too
            self.dismissed.add(campaign)
        elif event in ANSWERS:
            self.completed.add(campaign)
        elif event == TASK_DONE and task is not None:
            self.tasks.setdefault(campaign, set()).add(task)


def watched(campaigns: Iterable[Stored]) -> frozenset[str]:
    """The event names the state must fold: the campaign events and every checklist
    task's event (milestones are read through the vocabulary's matchers)."""
    names = set(CAMPAIGN_EVENTS)
    for stored in campaigns:
        names.update(t.event for t in stored.campaign.tasks() if t.event)
    return frozenset(names)


def milestones_by_event(vocabulary: Vocabulary) -> dict[str, frozenset[str]]:
    """event -> the milestones it reaches by name alone (matchers without property
    filters; those with filters are read exactly when the state is loaded). Made once
    per state load: every committed batch looks its events up in it."""
    found: dict[str, set[str]] = {}
    for m in vocabulary.milestones:
        for x in m.events:
            if not x.where:
                found.setdefault(x.event, set()).add(m.name)
    return {event: frozenset(names) for event, names in found.items()}


def task_done(campaign: str, task: Task, state: UserState) -> bool:
    if task.id in state.tasks.get(campaign, set()):
        return True
    return task.event in state.events if task.event else task.milestone in state.milestones


def due(campaign: Campaign, state: UserState, now: datetime) -> bool:
    """Whether the campaign's frequency lets it show to this user now."""
    name = campaign.name
    if campaign.kind == "checklist" and all(task_done(name, t, state)
                                            for t in campaign.tasks()):
        return False  # nothing left to do
    frequency = campaign.frequency
    if isinstance(frequency, EveryDays):
        last = state.shown.get(name)
        return last is None or now - last >= timedelta(days=frequency.every_days)
    if name in state.completed:
        return False
    if frequency == "once":
        return name not in state.shown
    return name not in state.dismissed  # until_dismissed


def served(stored: Stored, state: UserState) -> dict[str, Any]:
    """The campaign as the SDK receives it (docs/sdk.md): a checklist's tasks say done."""
    c = stored.campaign
    content = dict(c.content)
    if c.kind == "checklist":
        content["tasks"] = [{**t.model_dump(mode="json", exclude_none=True,
                                             exclude={"event", "milestone"}),
                             "done": task_done(c.name, t, state)} for t in c.tasks()]
    return {"id": c.name, "version": stored.version, "kind": c.kind,
            "trigger": {"delay_seconds": c.trigger.delay_seconds}, "content": content}


@dataclass(frozen=True)
class Choice:
    campaigns: list[dict[str, Any]]  # to serve, best first
    assigned: list[assignments.Assignment]  # new arms to record
    held_out: list[str]  # campaigns this user qualified for but is held out of


def choose(campaigns: Mapping[str, Stored], user_id: str, state: UserState,
           memberships: Iterable[str], arms: Mapping[tuple[str, str], str],
           settings: InAppSettings, now: datetime, path: str | None = None,
           event: str | None = None) -> Choice:
    inside = frozenset(memberships)
    order = sorted(campaigns.values(), key=lambda s: (-s.campaign.priority, s.campaign.name))
    out: list[dict[str, Any]] = []
    new: list[assignments.Assignment] = []
    held: list[str] = []
    cooling = settings.cooldown_hours > 0 and state.last_shown is not None and \
        now - state.last_shown < timedelta(hours=settings.cooldown_hours)
    for stored in order:
        c = stored.campaign
        if not (c.enabled and c.schedule.open_at(now) and c.trigger.matches(path, event)
                and c.audience.admits(inside)):
            continue
        arm = arms.get((c.name, user_id))
        if arm is None:
            arm = assignments.draw(c.name, user_id, c.holdout_percent)
            new.append(assignments.Assignment(c.name, user_id, arm, stored.version, now))
        if arm == "holdout":
            held.append(c.name)
        elif not cooling and due(c, state, now):
            out.append(served(stored, state))
    return Choice(out, new, held)
