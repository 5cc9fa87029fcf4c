"""Segmently's settings, each declared once: name, type, default, help and environment variable.

A setting is a field of `Settings`, declared with `_declare(env, default, kind, help)`; the
registry `DECLARED`, the README's table (`markdown()`) and `describe()` are derived from
those declarations. `load()` reads every setting once, at the edge (the CLI's callback,
`create_app`, ...): an explicit override (the command line's options, a caller's
arguments) wins over the environment (`SEGMENTLY_<NAME>`), which wins over the default.
The `Settings` it returns is passed in to whatever needs a value, and records where each
value came from (`Settings.source`). A bad value is a `SettingError` naming the variable
and the value; an empty variable counts as unset.

    python -m segmently.settings                  # the current settings and their sources
    python -m segmently.settings --markdown       # the README's table
    python -m segmently.settings --update README.md

Not settings (test-only): SEGMENTLY_TEST_PG (the PostgreSQL server the tests use,
tests/conftest.py) and SEGMENTLY_FUZZ_EXAMPLES (tests/security/test_fuzz_api.py).
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from segmently.errors import SegmentlyError

MARK_START = "<!-- settings:start -->"
MARK_END = "<!-- settings:end -->"


class SettingError(SegmentlyError, ValueError):
    """A setting's value is unusable (or an override names no setting): the message names
    the variable (or setting) and the value."""

    code = "bad_setting"


class Source(StrEnum):
    """Where a setting's value came from."""

    DEFAULT = "default"
    ENVIRONMENT = "environment"
    OVERRIDE = "override"  # given explicitly: a command-line option, a caller's argument


# -- kinds: how a value is read from text, checked and written back ---------------------------
@dataclass(frozen=True)
class Kind:
    label: str  # what the value is, for the README's table
    parse: Callable[[Any], Any]  # text (or an already typed value) -> value; ValueError(reason)
    check: Callable[[Any], str | None] = lambda value: None  # why a value is out of range
    show: Callable[[Any], str] = str  # value -> text, as the environment variable would hold it


def _whole(unit: str, minimum: int = 1) -> Kind:
    def parse(raw: Any) -> int:
        if isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"is not a whole number of {unit}") from None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"is not a whole number of {unit}")
        return raw

    def check(value: int) -> str | None:
        return f"must be at least {minimum}" if value < minimum else None

    return Kind(unit, parse, check)


def _number(raw: Any, unit: str) -> float:
    if isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"is not a number of {unit}") from None
    elif isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"is not a number of {unit}")
    else:
        number = float(raw)
    if not math.isfinite(number):
        raise ValueError(f"is not a finite number of {unit}")
    return number


def _seconds(*, zero: bool, low: str) -> Kind:
    """Seconds as a float; `zero`: whether 0 is allowed; `low`: why a smaller one is not."""

    def check(value: float) -> str | None:
        return low if value < 0 or (value == 0 and not zero) else None

    return Kind("seconds", lambda raw: _number(raw, "seconds"), check, lambda v: f"{v:g}")


def _duration(raw: Any) -> timedelta:
    if isinstance(raw, timedelta):
        return raw
    return timedelta(seconds=_number(raw, "seconds"))


DURATION = Kind("seconds", _duration,
                lambda v: "must be 0 or a positive number of seconds" if v < timedelta(0)
                else None,
                lambda v: f"{v.total_seconds():g}")


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("is not text")
    return raw


TEXT = Kind("text", _text)
PATH = Kind("path", _text)


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not true or false (1/0, true/false, yes/no, on/off)")


FLAG = Kind("true or false", _flag, show=lambda v: "true" if v else "false")


def _redacted(url: str) -> str:
    """A URL without its password (`postgres://ann:***@host/db`): describe() is printed."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


URL = Kind("database URL", _text, show=_redacted)

# DuckDB's memory sizes: a number and a unit (1000^i: KB MB GB TB, 1024^i: KiB MiB GiB TiB),
# or -1 / none for no limit. DuckDB checks again when it is given the value.
_MEMORY = re.compile(
    r"(-1|none|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*"
    r"(b|bytes?|[kmgt]|[kmgt]i?b|kilobytes?|megabytes?|gigabytes?|terabytes?))",
    re.IGNORECASE)


def _memory(raw: Any) -> str:
    text = _text(raw)
    if not _MEMORY.fullmatch(text.strip()):
        raise ValueError("is not a memory size (a number and a unit: 512MB, 4GB, 4GiB)")
    return text


MEMORY = Kind("memory size", _memory)


def _declare(env: str, default: Any, kind: Kind, help: str) -> Any:
    """One setting: a field of `Settings` whose metadata holds the rest of its declaration."""
    return field(default=default, metadata={"setting": (env, kind, help)})


MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Every setting's value (`load()` builds one; `Settings()` is all defaults)."""

    db: str = _declare(
        "SEGMENTLY_DB", "segmently.duckdb", URL,
        "The database the CLI opens (`--db`): `duckdb:///abs/path.duckdb`, "
        "`postgres://user@host:5432/db`, or a path (DuckDB), relative to the working "
        "directory.")
    config: str = _declare(
        "SEGMENTLY_CONFIG", "segmently.yaml", PATH,
        "The workspace file (features, scores, segments) of the CLI's commands (`--config`).")
    refresh_seconds: float = _declare(
        "SEGMENTLY_REFRESH_SECONDS", 300.0,
        _seconds(zero=True, low="must be 0 (off) or a positive number of seconds"),
        "Seconds between `serve`'s scheduled refreshes of every project's segments; 0 "
        "disables them.")
    incremental_seconds: float = _declare(
        "SEGMENTLY_INCREMENTAL_SECONDS", 2.0,
        _seconds(zero=True, low="must be 0 (off) or a positive number of seconds"),
        "Seconds between `serve`'s incremental refreshes: the users with new events since "
        "the last pass are re-evaluated in every segment that depends on the user alone, "
        "so in-app targeting and webhooks follow within seconds; 0 disables them (the "
        "scheduled full refresh still runs).")
    duckdb_memory_limit: str | None = _declare(
        "SEGMENTLY_DUCKDB_MEMORY_LIMIT", None, MEMORY,
        "DuckDB's memory limit (e.g. `4GB`): it spills to disk beyond it; unset: DuckDB's "
        "default, 80% of RAM.")
    import_memory: str = _declare(
        "SEGMENTLY_IMPORT_MEMORY", "512MB", MEMORY,
        "DuckDB's memory limit while `segmently import` writes into a DuckDB file "
        "(docs/import.md, \"Speed and memory\").")
    max_single_body: int = _declare(
        "SEGMENTLY_MAX_SINGLE_BODY", 2 * MiB, _whole("bytes"),
        "Largest body of a one-event ingestion request (413 beyond).")
    max_batch_body: int = _declare(
        "SEGMENTLY_MAX_BATCH_BODY", 20 * MiB, _whole("bytes"),
        "Largest body of a batch ingestion request: as sent, and again decompressed.")
    max_event_bytes: int = _declare(
        "SEGMENTLY_MAX_EVENT_BYTES", MiB, _whole("bytes"),
        "Largest event, serialized.")
    max_depth: int = _declare(
        "SEGMENTLY_MAX_DEPTH", 32, _whole("levels"),
        "Deepest nesting of JSON objects and arrays in an event.")
    max_future: timedelta = _declare(
        "SEGMENTLY_MAX_FUTURE", timedelta(days=1), DURATION,
        "How far past the time of arrival an event's timestamp may be.")
    max_batch_events: int = _declare(
        "SEGMENTLY_MAX_BATCH_EVENTS", 100_000, _whole("events"),
        "Most events in one batch request.")
    max_api_body: int = _declare(
        "SEGMENTLY_MAX_API_BODY", MiB, _whole("bytes"),
        "Largest body of a segment API request, a rule preview or the CLI's "
        "`/internal/v1/call`.")
    max_form_body: int = _declare(
        "SEGMENTLY_MAX_FORM_BODY", 16 * 1024, _whole("bytes"),
        "Largest body of the UI's sign-in form.")
    max_import_body: int = _declare(
        "SEGMENTLY_MAX_IMPORT_BODY", 1 << 30, _whole("bytes"),
        "Largest batch of converted rows the CLI streams to `serve`'s `/internal/v1/append` "
        "(an import while `serve` holds the DuckDB file).")
    body_timeout: float = _declare(
        "SEGMENTLY_BODY_TIMEOUT", 10.0,
        _seconds(zero=False, low="must be a positive number of seconds"),
        "Seconds a request's body may take to arrive after its headers (408 beyond).")
    head_timeout: float = _declare(
        "SEGMENTLY_HEAD_TIMEOUT", 10.0,
        _seconds(zero=False, low="must be a positive number of seconds"),
        "Seconds a request line and headers may take, from the connection or the request's "
        "first byte (408 beyond).")
    max_parse_threads: int = _declare(
        "SEGMENTLY_MAX_PARSE_THREADS", 2, _whole("threads"),
        "Ingestion bodies over 64 KB (or compressed) decoded and validated at once, in "
        "worker threads off the event loop.")
    posthog_account_group: str | None = _declare(
        "SEGMENTLY_POSTHOG_ACCOUNT_GROUP", None, TEXT,
        "The PostHog group type whose key is the account (`$groups`), over HTTP and in "
        "`import --from posthog`; unset: the first type.")
    amplitude_account_group: str | None = _declare(
        "SEGMENTLY_AMPLITUDE_ACCOUNT_GROUP", None, TEXT,
        "The Amplitude group type that names the account in `import --from amplitude`; "
        "unset: the first type.")
    deliver_seconds: float = _declare(
        "SEGMENTLY_DELIVER_SECONDS", 10.0,
        _seconds(zero=True, low="must be 0 (off) or a positive number of seconds"),
        "Seconds between `serve`'s idle passes over the delivery outbox, for messages "
        "another process queued (after its own refreshes and replays, and when a retry is "
        "due, it delivers at once; docs/act.md); 0: `serve` delivers nothing (run "
        "`segmently deliver`).")
    allow_private_destinations: bool = _declare(
        "SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS", False, FLAG,
        "Let destinations point at loopback, private or link-local addresses (refused by "
        "default: a project's secret key must not reach the server's own network).")
    files_root: str = _declare(
        "SEGMENTLY_FILES_ROOT", "segmently-files", PATH,
        "Where `files` destinations write: `<root>/<project id>/<the destination's "
        "folder>/...` (a destination names a folder inside its project's, never a path of "
        "its own choosing); relative to the working directory of the delivering process.")
    mixpanel_account_property: str | None = _declare(
        "SEGMENTLY_MIXPANEL_ACCOUNT_PROPERTY", None, TEXT,
        "The event property holding the account id in `import --from mixpanel` (e.g. "
        "`company_id`); unset: no account.")

    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for setting in DECLARED:
            value = getattr(self, setting.name)
            if value is not None or setting.default is not None:
                object.__setattr__(self, setting.name, _checked(setting, value, setting.name))

    def source(self, name: str) -> Source:
        """Where the named setting's value came from."""
        declared(name)
        return self.sources.get(name, Source.DEFAULT)

    def override(self, **values: Any) -> Settings:
        """These settings with `values` given explicitly (None or empty: not given), e.g. a
        command-line option parsed after the settings were loaded."""
        checked = {name: _checked(declared(name), raw, name)
                   for name, raw in _given(values).items()}
        return replace(self, **checked,
                       sources={**self.sources, **dict.fromkeys(checked, Source.OVERRIDE)})


@dataclass(frozen=True)
class Setting:
    """One declaration, as the registry holds it."""

    name: str  # the field of Settings, and the key of an override
    env: str
    kind: Kind
    default: Any
    help: str

    def show(self, value: Any) -> str | None:
        return None if value is None else self.kind.show(value)


DECLARED: tuple[Setting, ...] = tuple(
    Setting(f.name, f.metadata["setting"][0], f.metadata["setting"][1], f.default,
            f.metadata["setting"][2])
    for f in fields(Settings) if "setting" in f.metadata)
_BY_NAME = {s.name: s for s in DECLARED}


def declared(name: str) -> Setting:
    """The declaration of a setting, by name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise SettingError(f"unknown setting {name!r}; settings: "
                           f"{', '.join(_BY_NAME)}") from None


def _checked(setting: Setting, raw: Any, where: str) -> Any:
    """The value of `raw` for `setting`, or a SettingError naming `where` and the value."""
    try:
        value = setting.kind.parse(raw)
    except ValueError as exc:
        raise SettingError(f"{where}: {raw!r} {exc}") from None
    reason = setting.kind.check(value)
    if reason is not None:
        raise SettingError(f"{where}: {raw!r} {reason}")
    return value


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values actually given: text stripped, None and empty text left out."""
    given = {}
    for name, raw in values.items():
        declared(name)
        if isinstance(raw, str):
            raw = raw.strip()
        if raw is not None and raw != "":
            given[name] = raw
    return given


def load(overrides: Mapping[str, Any] | None = None,
         env: Mapping[str, str] = os.environ) -> Settings:
    """Every setting: from `overrides` (None or empty: not given), else `env`'s
    SEGMENTLY_<NAME> (empty: unset), else its default."""
    given = _given(overrides or {})
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for setting in DECLARED:
        if setting.name in given:
            raw, source, where = given[setting.name], Source.OVERRIDE, setting.name
        else:
            raw, source, where = env.get(setting.env, ""), Source.ENVIRONMENT, setting.env
            raw = raw.strip()
            if not raw:
                continue
        values[setting.name] = _checked(setting, raw, where)
        sources[setting.name] = source
    return Settings(**values, sources=sources)


def describe(settings: Settings) -> list[dict[str, Any]]:
    """One row per setting, for `segmently config`: its value as the environment variable
    would hold it (a database password hidden), where it came from, and its declaration."""
    return [{"name": s.name, "value": s.show(getattr(settings, s.name)),
             "source": settings.source(s.name).value, "env": s.env,
             "default": s.show(s.default), "help": s.help}
            for s in DECLARED]


# -- the README's table --------------------------------------------------------------------
def markdown() -> str:
    """The settings table of README.md (between its settings markers)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| Variable | Default | Value | Meaning |", "|---|---|---|---|"]
    for s in DECLARED:
        default = "unset" if s.default is None else f"`{s.show(s.default)}`"
        lines.append(f"| `{s.env}` | {default} | {s.kind.label} | {cell(s.help)} |")
    return "\n".join(lines) + "\n"


def readme_table(text: str) -> str | None:
    """The table between the settings markers of a README's text, or None without them."""
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 or end < start:
        return None
    return text[start + len(MARK_START):end].strip("\n") + "\n"


def update_readme(path: str | Path) -> bool:
    """Write the generated table between the file's settings markers; True if it changed."""
    path = Path(path)
    text = path.read_text()
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 or end < start:
        raise SettingError(f"{path}: no {MARK_START} ... {MARK_END} markers")
    new = text[:start + len(MARK_START)] + "\n" + markdown() + text[end:]
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--markdown"]:
        sys.stdout.write(markdown())
    elif len(args) == 2 and args[0] == "--update":
        print(f"{args[1]}: {'updated' if update_readme(args[1]) else 'already up to date'}")
    elif not args:
        try:
            rows = describe(load())
        except SettingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for row in rows:
            print(f"{row['env']:<38} {row['value'] if row['value'] is not None else '(unset)':<24}"
                  f" {row['source']}")
    else:
        print("usage: python -m segmently.settings [--markdown | --update README.md]",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
