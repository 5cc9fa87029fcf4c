"""A workspace file applied to the database, as `terraform plan` / `kubectl apply` do.

The database is the one home of definitions (`segments/definitions.py` for segments,
`profile/vocabularies.py` for features, milestones and scores); the YAML a team keeps in
git is a way to write them. `plan` compares the file with what is stored and says, per
item, what applying would do:

    add      the file declares it, the database does not have it
    change   both have it and they differ; the stored one was written by an apply
    remove   only the database has it, it was written by an apply, and `prune` is asked
    keep     only the database has it and `prune` is not asked (left alone)
    drift    the stored one was written (or deleted) since the last apply by someone else
             (the UI, the HTTP or Python API): applying the file would overwrite an edit
             nobody made in the file, so it is left alone unless `force` is given

`apply` writes the plan's adds, changes and removes (and, with `force`, its drift) as new
versions with source "apply", segments and the vocabulary version in one transaction.
`export` writes the stored definitions back as a workspace file. Next hop: `core/project.py`
(the verbs), `cli/`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from segmently.profile import vocabularies
from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments.rules import Rule, parse_rule, rule_json
from segmently.segments.workspace import Workspace
from segmently.store import Store

APPLY = "apply"
Action = Literal["add", "change", "remove", "keep", "drift", "same"]
VOCABULARY_LISTS = ("features", "milestones")


@dataclass(frozen=True)
class Item:
    """What applying does to one segment or one vocabulary entry."""

    kind: str  # "segment", "feature", "milestone", "setting"
    name: str
    action: Action
    reason: str  # one sentence for people
    diff: list[str] = field(default_factory=list)  # unified diff of the YAML, stored -> file

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action,
                "reason": self.reason, "diff": self.diff}


@dataclass
class Plan:
    items: list[Item]
    applied: bool = False
    versions: dict[str, int] = field(default_factory=dict)  # segment -> version after
    vocabulary_version: int | None = None

    def of(self, *actions: Action) -> list[Item]:
        return [i for i in self.items if i.action in actions]

    @property
    def pending(self) -> list[Item]:
        """What applying writes (without force)."""
        return self.of("add", "change", "remove")

    @property
    def drift(self) -> list[Item]:
        return self.of("drift")

    @property
    def in_sync(self) -> bool:
        """Nothing to write and no drift: what `apply --check` exits 0 for."""
        return not self.pending and not self.drift

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "in_sync": self.in_sync,
                "items": [i.to_json() for i in self.items if i.action != "same"],
                "versions": self.versions, "vocabulary_version": self.vocabulary_version}


# -- comparing ---------------------------------------------------------------------------
def _yaml(data: Any) -> list[str]:
    if data is None:
        return []
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).splitlines()


def _diff(stored: Any, wanted: Any, name: str) -> list[str]:
    return list(difflib.unified_diff(_yaml(stored), _yaml(wanted), f"database/{name}",
                                     f"file/{name}", lineterm=""))


def _by(source: str | None) -> str:
    return {"ui": "in the UI", "api": "over the HTTP API", "cli": "from the command line"
            }.get(source or "", "outside a workspace file")


def item(kind: str, name: str, stored: Any, wanted: Any, source: str | None,
          version: str, prune: bool) -> Item:
    """Compare one entry: `stored` / `wanted` are plain data (None: absent), `source` who
    wrote the stored state (its latest version, a deletion included; None for a version
    stored before sources were kept, taken as applied)."""
    if stored == wanted:
        return Item(kind, name, "same", f"{version}: as in the file")
    diff = _diff(stored, wanted, name)
    managed = source in (APPLY, None)
    if wanted is None:
        if not prune:
            return Item(kind, name, "keep", f"{version}: not in the file (--prune removes it)")
        if managed:
            return Item(kind, name, "remove", f"{version}: not in the file any more", diff)
        return Item(kind, name, "drift", f"{version} was made {_by(source)} and is not in "
                    "the file: `segmently export` brings it in; --force deletes it", diff)
    if managed:
        return Item(kind, name, "add" if stored is None else "change",
                    "new" if stored is None else f"{version} -> the file's", diff)
    verb = "deleted" if stored is None else "changed"
    return Item(kind, name, "drift", f"{verb} {_by(source)} ({version}) since the last "
                "apply; the file's would overwrite it: --force overwrites, `segmently "
                "export` keeps it", diff)


def _segment_items(store: Store, project_id: str, workspace: Workspace,
                   prune: bool) -> list[Item]:
    latest = defs.latest(store, project_id)
    wanted = {s.name: {"description": s.description,
                       "rule": rule_json(parse_rule(s.rule, f"{s.name}.rule"))}
              for s in workspace.segments}
    out = []
    for name in sorted(set(latest) | set(wanted)):
        v = latest.get(name)
        stored = None if v is None or v.deleted else \
            {"description": v.description or "", "rule": v.rule}
        if v is not None and v.deleted and name not in wanted:
            continue  # deleted, and the file agrees
        out.append(item("segment", name, stored, wanted.get(name),
                         v.source if v else None, f"version {v.version}" if v else "", prune))
    return out


def _entries(vocab: Vocabulary) -> dict[tuple[str, str], Any]:
    """A vocabulary as comparable entries, in the file's order: each feature and milestone
    by name, their order (milestones are the journey's steps), and each scalar setting
    (session gap, activity window, engagement, health)."""
    data = vocab.model_dump(mode="json")
    out: dict[tuple[str, str], Any] = {}
    for kind in VOCABULARY_LISTS:
        entries = data.pop(kind)
        out.update({(kind[:-1], entry["name"]): entry for entry in entries})
        out[("order", kind)] = [entry["name"] for entry in entries]
    out.update({("setting", key): value for key, value in data.items()})
    return out


def _vocabulary_items(store: Store, project_id: str, workspace: Workspace,
                      prune: bool) -> list[Item]:
    found = vocabularies.current(store, project_id)
    # before any apply the defaults count as stored: the ones a file leaves out are no news
    stored = _entries(found.vocabulary if found else Vocabulary())
    wanted = _entries(vocabularies.as_vocabulary(workspace))
    source = found.source if found else APPLY
    version = f"vocabulary version {found.version}" if found else "default"
    out = []
    for key in [*wanted, *(k for k in stored if k not in wanted)]:  # the file's order
        kind, name = key
        old, new = stored.get(key), wanted.get(key)
        if kind == "order" and sorted(old or []) != sorted(new or []):
            continue  # names added or removed say it; only a pure reorder is news
        out.append(item(kind, name, old, new, source, version, prune))
    return out


def plan(store: Store, project_id: str, workspace: Workspace, prune: bool = False) -> Plan:
    """What applying the workspace would change, and where the database drifted from it."""
    return Plan(_vocabulary_items(store, project_id, workspace, prune)
                + _segment_items(store, project_id, workspace, prune))


# -- writing -----------------------------------------------------------------------------
def apply(store: Store, project_id: str, workspace: Workspace, prune: bool = False,
          force: bool = False, dry_run: bool = False) -> Plan:
    """Write the plan in one transaction (all or nothing): the vocabulary as one version if
    any of its entries is written, and the segments (`definitions.write`: references
    checked against what stays stored). Drift is written only with `force`; `dry_run`
    writes nothing. Planned and written under the store's write lock, so a concurrent
    save in this process cannot slip between the two."""
    with store.write_lock:
        result = plan(store, project_id, workspace, prune)
        if dry_run:
            return result
        actions: tuple[Action, ...] = ("add", "change", "remove", "drift") if force else \
            ("add", "change", "remove")
        writes = [i for i in result.items if i.action in actions]
        vocab_rows: dict[str, Any] = {}
        if any(i.kind != "segment" for i in writes):
            merged = _merged_vocabulary(store, project_id, workspace,
                                        [i for i in writes if i.kind != "segment"])
            result.vocabulary_version, vocab_rows = vocabularies.pending(
                store, project_id, merged, source=APPLY)
        rules = {s.name: s for s in workspace.segments}
        changes: dict[str, tuple[str, Rule] | None] = {}
        for i in writes:
            if i.kind == "segment":
                s = rules.get(i.name)
                changes[i.name] = None if s is None else \
                    (s.description, parse_rule(s.rule, f"{s.name}.rule"))
        if changes or vocab_rows:
            result.versions = defs.write(store, project_id, changes, source=APPLY,
                                         also=vocab_rows)
        result.applied = bool(writes)
    return result


def _merged_vocabulary(store: Store, project_id: str, workspace: Workspace,
                       writes: list[Item]) -> Vocabulary:
    """The file's vocabulary, in its order, except entries left alone (drift without
    force) which stay as stored, plus stored entries the file lacks and nobody pruned."""
    found = vocabularies.current(store, project_id)
    have = _entries(found.vocabulary if found else Vocabulary())
    want = _entries(vocabularies.as_vocabulary(workspace))
    written = {(i.kind, i.name) for i in writes}
    merged = {key: value if key in written or key not in have else have[key]
              for key, value in want.items()}
    merged.update({key: value for key, value in have.items()
                   if key not in want and key not in written})
    data: dict[str, Any] = {kind: [] for kind in VOCABULARY_LISTS}
    for (kind, name), value in merged.items():
        if kind == "setting":
            data[name] = value
        elif kind != "order":  # the order is the dict's: the file's, kept ones after
            data[kind + "s"].append(value)
    return Vocabulary.model_validate(data)


# -- history -----------------------------------------------------------------------------
def version_diffs(versions: list[defs.Version]) -> list[dict[str, Any]]:
    """Each version as JSON with `diff`: its YAML against the version before (a deletion
    is everything removed)."""
    out: list[dict[str, Any]] = []
    before: Any = None
    for v in versions:
        now = None if v.deleted else {"description": v.description or "", "rule": v.rule}
        out.append({**v.to_json(), "diff": list(difflib.unified_diff(
            _yaml(before), _yaml(now), f"version {v.version - 1}", f"version {v.version}",
            lineterm=""))})
        before = now
    return out


# -- exporting ---------------------------------------------------------------------------
def export(store: Store, project_id: str, project_name: str | None = None,
           extra: dict[str, Any] | None = None) -> str:
    """The stored definitions as a workspace file (YAML), with `extra` top-level keys
    after the segments (the campaigns, `act/applying.py`): applying it to this project is
    in sync (`plan(...).in_sync`)."""
    vocab = vocabularies.vocabulary(store, project_id).model_dump(mode="json",
                                                                  exclude_defaults=True)
    segments = [{"name": d.name, "description": d.description, "rule": rule_json(d.rule)}
                for d in defs.current(store, project_id).values()]
    data: dict[str, Any] = {"project": project_name} if project_name else {}
    data.update(vocab)
    data["segments"] = segments
    data.update(extra or {})
    return "# segmently export: the definitions stored in the database\n" + \
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
