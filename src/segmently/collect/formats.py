"""The generic rows of `segmently import`: column mappings, constants, and JSON-line rows.

Columns are named by a mapping (`--map user_id=customer,...`, else the default names
below); constant columns (`--set column=value`, `--event NAME`) are added to every row
first, replacing a column of the file with that name. Tables (CSV, TSV, Parquet) apply the
mapping column-wise (`tabular.py`); JSON lines (`GenericRows`) row by row through
`jsonrows.py`, other keys becoming properties. Vendor exports have mappings of their own
(`vendors/`). Next hop: the importer's sink, `Store.append_rows`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from segmently.collect.common import as_id, as_name, as_object, check_message
from segmently.collect.errors import InputError
from segmently.collect.jsonrows import Produced, RowContext, Stamp
from segmently.collect.limits import Limits
from segmently.store.rows import MESSAGE_TYPES, Message

TARGETS = ("user_id", "anonymous_id", "account_id", "event", "timestamp", "message_id", "type")
ID_TARGETS = ("user_id", "anonymous_id", "account_id", "message_id")
# Column names recognised without a --map (exact name first, then Segment's camelCase).
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userId"),
    "anonymous_id": ("anonymous_id", "anonymousId"),
    "account_id": ("account_id", "accountId", "groupId"),
    "event": ("event",),
    "timestamp": ("timestamp",),
    "message_id": ("message_id", "messageId"),
    "type": ("type",),
}
DEFAULT_NAMES = {"identify": "$identify", "page": "$page", "screen": "$screen",
                 "group": "$group", "alias": "$alias"}
SOURCE = "import"


def parse_mapping(text: str | None) -> dict[str, str]:
    """`user_id=customer,event=action` -> {"user_id": "customer", "event": "action"}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        target, sep, source = part.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not source:
            raise InputError(f"--map entry {part.strip()!r} must look like target=column",
                             code="bad_mapping")
        if target not in TARGETS:
            raise InputError(f"--map target {target!r} is not one of {', '.join(TARGETS)}",
                             code="bad_mapping")
        out[target] = source
    return out


def resolve_mapping(columns: list[str], explicit: dict[str, str]) -> dict[str, str]:
    """target -> source column: the explicit mapping, then the default names."""
    missing = [src for src in explicit.values() if src not in columns]
    if missing:
        raise InputError(f"--map names column(s) {', '.join(map(repr, missing))} that the file "
                         f"does not have; its columns: {', '.join(columns)}", code="bad_mapping")
    used = set(explicit.values())
    out = dict(explicit)
    for target in TARGETS:
        if target in out:
            continue
        for name in ALIASES[target]:
            if name in columns and name not in used:
                out[target] = name
                used.add(name)
                break
    return out


def parse_constants(entries: list[str] | None) -> dict[str, str]:
    """`--set plan=pro --set source=crm` -> {"plan": "pro", "source": "crm"}; values are
    text, as a CSV cell is."""
    out: dict[str, str] = {}
    for entry in entries or []:
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--set {entry!r} must look like column=value", code="bad_mapping")
        if "\x00" in entry:
            raise InputError("--set values cannot hold a NUL character", code="bad_mapping")
        out[name.strip()] = value
    return out


def with_event(mapping: dict[str, str], constants: dict[str, str],
               event: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """`--event NAME`: every row is that event, a constant column mapped to the event."""
    if event is None:
        return mapping, constants
    if not event.strip():
        raise InputError("--event needs a name", code="bad_mapping")
    if "event" in mapping:
        raise InputError("--event and --map event=... both name the event; pass one",
                         code="bad_mapping")
    if "event" in constants and constants["event"] != event:
        raise InputError("--event and --set event=... disagree; pass one", code="bad_mapping")
    return {**mapping, "event": "event"}, {**constants, "event": event}


def _finish(msg: Message, now: datetime, limits: Limits) -> Message:
    if msg.type not in MESSAGE_TYPES:
        raise InputError(f"type must be one of {', '.join(MESSAGE_TYPES)}, got {msg.type!r}",
                         code="bad_value")
    return check_message(msg, limits, now, "row")


class GenericRows:
    """JSON lines of any keys, named by the column mapping; other keys become properties
    (`properties`, `context` and `traits` objects are merged, not nested)."""

    name = "jsonl"
    json_text_fields: tuple[str, ...] = ()

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self._known: dict[tuple[str, ...], dict[str, str]] = {}  # keys -> mapping

    def _cols(self, row: dict[str, Any]) -> dict[str, str]:
        """The mapping for this row's keys (rows of a file mostly share them: cached)."""
        keys = tuple(row)
        cols = self._known.get(keys)
        if cols is None:
            if len(self._known) > 4096:
                self._known.clear()
            cols = self._known[keys] = resolve_mapping(
                list(row), {t: s for t, s in self.mapping.items() if s in row})
        return cols

    def timestamp(self, row: dict[str, Any]) -> Stamp:
        return Stamp(row.get(self._cols(row).get("timestamp", "")), "timestamp")

    def messages(self, row: dict[str, Any], ts: datetime | None,
                 ctx: RowContext) -> list[Produced]:
        assert ts is not None  # required
        cols = self._cols(row)
        used = set(cols.values())
        rest = {k: v for k, v in row.items() if k not in used}
        properties = as_object(rest.pop("properties", None), "properties")
        context = as_object(rest.pop("context", None), "context")
        traits = as_object(rest.pop("traits", None), "traits")
        properties = {**rest, **properties}
        typ = row.get(cols.get("type", ""), None) or "track"
        if not isinstance(typ, str):
            raise InputError(f"type must be a string, got {type(typ).__name__}", code="bad_type")
        name = row.get(cols.get("event", ""))
        if name is None and typ != "track":
            name = DEFAULT_NAMES.get(typ)
        user = as_id(row.get(cols.get("user_id", "")), "user_id")
        anon = as_id(row.get(cols.get("anonymous_id", "")), "anonymous_id")
        given = as_id(row.get(cols.get("message_id", "")), "message_id")
        msg = Message(
            message_id=given or "",
            type=typ,
            event=as_name(name, "event"),
            timestamp=ts,
            source=SOURCE,
            user_id=user,
            anonymous_id=anon,
            account_id=as_id(row.get(cols.get("account_id", "")), "account_id"),
            properties=properties,
            context=context,
            traits=(traits or properties) if typ == "identify" else None,
            account_traits=(traits or properties) if typ == "group" else None,
            alias_id=anon if typ in ("identify", "alias") and user else None,
        )
        return [Produced(_finish(msg, ctx.now, ctx.limits), None if given else row)]
