"""Settings (segmently/settings.py): declared once, loaded with explicit > environment >
default, bad values named, and README's table generated from the declarations."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from segmently import settings
from segmently.errors import SegmentlyError
from segmently.settings import SettingError, Settings, Source, describe, load

ROOT = Path(__file__).resolve().parents[1]
TEST_ONLY = {"SEGMENTLY_TEST_PG", "SEGMENTLY_FUZZ_EXAMPLES"}  # tests' own, not settings


def test_readme_table_is_generated_from_the_declarations() -> None:
    table = settings.readme_table((ROOT / "README.md").read_text())
    assert table is not None, "README.md has no <!-- settings:start --> / :end markers"
    assert table == settings.markdown(), (
        "README.md's settings table differs from segmently/settings.py: run "
        "`.venv/bin/python -m segmently.settings --update README.md`")


def test_every_variable_the_code_names_is_declared() -> None:
    named = set()
    for path in (ROOT / "src" / "segmently").rglob("*.py"):
        named |= set(re.findall(r"SEGMENTLY_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    declared = {s.env for s in settings.DECLARED}
    assert named - declared - TEST_ONLY == set()
    assert len(declared) == len(settings.DECLARED)  # one variable per setting


def test_each_declaration_is_complete_and_its_default_valid() -> None:
    for s in settings.DECLARED:
        assert s.env == f"SEGMENTLY_{s.name.upper()}"
        assert s.help.endswith(".") and s.kind.label
    assert Settings() == load(env={})


def test_explicit_beats_environment_beats_default() -> None:
    env = {"SEGMENTLY_REFRESH_SECONDS": "5", "SEGMENTLY_DB": "postgres://u@h/db"}
    by_env = load(env=env)
    assert (by_env.refresh_seconds, by_env.source("refresh_seconds")) == (5.0, Source.ENVIRONMENT)
    assert by_env.source("db") == Source.ENVIRONMENT
    explicit = load({"refresh_seconds": 7, "db": None}, env=env)  # None: not given
    assert (explicit.refresh_seconds, explicit.source("refresh_seconds")) == \
        (7.0, Source.OVERRIDE)
    assert (explicit.db, explicit.source("db")) == ("postgres://u@h/db", Source.ENVIRONMENT)
    assert load({"refresh_seconds": "8"}, env=env).refresh_seconds == 8.0  # text is parsed
    default = load(env={"SEGMENTLY_REFRESH_SECONDS": "  "})  # empty: unset
    assert (default.refresh_seconds, default.source("refresh_seconds")) == \
        (300.0, Source.DEFAULT)
    assert load(env={"SEGMENTLY_MAX_FUTURE": "60"}).max_future == timedelta(seconds=60)


@pytest.mark.parametrize(("env", "message"), [
    ({"SEGMENTLY_REFRESH_SECONDS": "abc"},
     "SEGMENTLY_REFRESH_SECONDS: 'abc' is not a number of seconds"),
    ({"SEGMENTLY_REFRESH_SECONDS": "-1"},
     "SEGMENTLY_REFRESH_SECONDS: '-1' must be 0 (off) or a positive number of seconds"),
    ({"SEGMENTLY_REFRESH_SECONDS": "nan"},
     "SEGMENTLY_REFRESH_SECONDS: 'nan' is not a finite number of seconds"),
    ({"SEGMENTLY_MAX_DEPTH": "0"}, "SEGMENTLY_MAX_DEPTH: '0' must be at least 1"),
    ({"SEGMENTLY_MAX_BATCH_BODY": "20MB"},
     "SEGMENTLY_MAX_BATCH_BODY: '20MB' is not a whole number of bytes"),
    ({"SEGMENTLY_BODY_TIMEOUT": "0"},
     "SEGMENTLY_BODY_TIMEOUT: '0' must be a positive number of seconds"),
    ({"SEGMENTLY_DUCKDB_MEMORY_LIMIT": "lots"},
     "SEGMENTLY_DUCKDB_MEMORY_LIMIT: 'lots' is not a memory size"),
    ({"SEGMENTLY_IMPORT_MEMORY": "80%"}, "SEGMENTLY_IMPORT_MEMORY: '80%' is not a memory size"),
])
def test_a_bad_value_names_the_variable_and_the_value(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError) as caught:
        load(env=env)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, SegmentlyError) and isinstance(caught.value, ValueError)
    assert caught.value.code == "bad_setting"


def test_a_bad_explicit_value_names_the_setting() -> None:
    with pytest.raises(SettingError, match=r"^max_depth: -3 must be at least 1$"):
        load({"max_depth": -3}, env={})
    with pytest.raises(SettingError, match=r"^max_depth: 0 must be at least 1$"):
        Settings(max_depth=0)
    with pytest.raises(SettingError, match="unknown setting 'refresh'"):
        load({"refresh": 1}, env={})


def test_memory_sizes_accepted_are_duckdbs() -> None:
    import duckdb

    for size in ("4GB", "4 GB", "512MiB", "1.5gb", "300 megabytes", "2G", "1e3MB", "-1"):
        assert load(env={"SEGMENTLY_DUCKDB_MEMORY_LIMIT": size}).duckdb_memory_limit == size
        duckdb.connect(":memory:", config={"memory_limit": size}).close()


def test_describe_says_each_value_and_where_it_came_from() -> None:
    rows = describe(load({"refresh_seconds": 0},
                         env={"SEGMENTLY_DB": "postgres://ann:s3cret@db:5432/prod"}))
    assert [r["name"] for r in rows] == [s.name for s in settings.DECLARED]
    by = {r["name"]: r for r in rows}
    assert by["db"] == {"name": "db", "value": "postgres://ann:***@db:5432/prod",
                        "source": "environment", "env": "SEGMENTLY_DB",
                        "default": "segmently.duckdb", "help": settings.declared("db").help}
    assert (by["refresh_seconds"]["value"], by["refresh_seconds"]["source"]) == ("0", "override")
    assert (by["posthog_account_group"]["value"], by["posthog_account_group"]["source"]) == \
        (None, "default")
    assert by["max_future"]["value"] == "86400"


# -- the loaded settings are passed in -------------------------------------------------------
def test_the_app_takes_its_settings_and_its_limits_follow() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette: httpx is deprecated there
        from fastapi.testclient import TestClient

    from segmently.store import Store
    from segmently.store.projects import create_project
    from segmently.web.app import create_app

    chosen = load({"refresh_seconds": 0, "max_depth": 3, "posthog_account_group": "company"},
                  env={"SEGMENTLY_POSTHOG_ACCOUNT_GROUP": "team"})
    with Store("duckdb://", settings=chosen) as store:
        key = create_project(store, "p").project.write_key
        app = create_app(store, settings=chosen)
        state = app.state.segmently
        assert state.settings is chosen and state.refresher.interval == 0.0
        assert state.limits.max_depth == 3
        body = {"api_key": key, "event": "x", "distinct_id": "u1",
                "properties": {"$groups": {"team": "t1", "company": "acme"}}}
        with TestClient(app) as client:
            assert client.post("/capture/", json=body).status_code == 200
        accounts = store.con.raw_sql("SELECT account_id FROM events").fetchall()
    assert accounts == [("acme",)]  # the override, not the environment's "team"


def test_an_import_reads_the_settings_it_is_given(tmp_path: Path) -> None:
    from segmently.collect.importer import ImportOptions, import_file, store_sink
    from segmently.collect.limits import Limits
    from segmently.store import Store
    from segmently.store.projects import create_project

    path = tmp_path / "mixpanel.jsonl"
    path.write_text('{"event": "Paid", "properties": {"time": 1700000000, "distinct_id": "u1",'
                    ' "$insert_id": "i1", "company_id": "acme", "org": "o1"}}\n')
    chosen = Settings(mixpanel_account_property="org", max_future=timedelta(seconds=60))
    options = ImportOptions(source="mixpanel", settings=chosen)
    assert options.limits == Limits.from_settings(chosen)
    assert options.limits.max_future == timedelta(seconds=60)
    assert ImportOptions(limits=Limits(max_depth=2), settings=chosen).limits.max_depth == 2
    with Store("duckdb://") as store:
        pid = create_project(store, "p").project.project_id
        report = import_file(path, pid, store_sink(store, pid), options)
        accounts = store.con.raw_sql("SELECT account_id FROM events").fetchall()
    assert (report.stored, accounts) == (1, [("o1",)])


def test_limits_are_the_settings_of_the_same_names() -> None:
    from segmently.collect.limits import Limits

    assert set(Limits.model_fields) <= {s.name for s in settings.DECLARED}
    assert Limits() == Limits.from_settings(Settings())
    assert Limits.from_settings(load(env={"SEGMENTLY_MAX_BATCH_EVENTS": "50"})) == \
        Limits(max_batch_events=50)


def test_segmently_config_says_where_each_value_came_from(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from segmently.cli import app

    db = str(tmp_path / "x.duckdb")
    result = CliRunner().invoke(app, ["--db", db, "--json", "config"], env={
        "SEGMENTLY_REFRESH_SECONDS": "5", "SEGMENTLY_CONFIG": "ws.yaml", "SEGMENTLY_DB": "y"})
    assert result.exit_code == 0, result.output
    by = {row["name"]: row for row in json.loads(result.stdout)}
    assert (by["db"]["value"], by["db"]["source"]) == (f"duckdb://{db}", "override")
    assert (by["config"]["value"], by["config"]["source"]) == ("ws.yaml", "environment")
    assert (by["refresh_seconds"]["value"], by["refresh_seconds"]["source"]) == \
        ("5", "environment")
    assert by["max_depth"]["source"] == "default"
    after = CliRunner().invoke(app, ["config", "--json", "--config", "mine.yaml"],
                               env={"SEGMENTLY_CONFIG": "ws.yaml"})  # after the command
    by = {row["name"]: row for row in json.loads(after.stdout)}
    assert (by["config"]["value"], by["config"]["source"]) == ("mine.yaml", "override")
    bad = CliRunner().invoke(app, ["config"], env={"SEGMENTLY_MAX_DEPTH": "deep"})
    assert isinstance(bad.exception, SettingError)
    assert str(bad.exception) == "SEGMENTLY_MAX_DEPTH: 'deep' is not a whole number of levels"


def test_an_option_parsed_later_overrides_loaded_settings() -> None:
    loaded = load(env={"SEGMENTLY_DB": "a.duckdb", "SEGMENTLY_MAX_DEPTH": "4"})
    later = loaded.override(db=" b.duckdb ", config=None, max_depth="")  # None/empty: not given
    assert (later.db, later.source("db")) == ("b.duckdb", Source.OVERRIDE)
    assert (later.max_depth, later.source("max_depth")) == (4, Source.ENVIRONMENT)
    assert (loaded.db, loaded.source("db")) == ("a.duckdb", Source.ENVIRONMENT)  # unchanged
    with pytest.raises(SettingError, match=r"^max_depth: 'x' is not a whole number"):
        loaded.override(max_depth="x")
