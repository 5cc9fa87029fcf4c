"""Fuzz the HTTP API from its own OpenAPI document: no generated request gets a 5xx.

schemathesis reads `/openapi.json` of a real `segmently serve` on loopback (a DuckDB file
holding a small product, a few segments and a refresh), generates requests for every
operation, valid and invalid by the schema (hostile strings, huge numbers, odd dates), sends
them with the project's secret key, and checks only that the server never answers 5xx.
Bounded (`MAX_EXAMPLES` per operation and mode, valid and invalid, no shrinking) so the
suite stays fast; raise SEGMENTLY_FUZZ_EXAMPLES for a longer hunt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from conftest import start_server
from segmently.core import Project
from segmently.segments.workspace import parse_workspace
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # a real server fuzzed from its OpenAPI document

MAX_EXAMPLES = int(os.environ.get("SEGMENTLY_FUZZ_EXAMPLES", "6"))
WORKSPACE = """\
features:
- name: reports
  events: [{event: report_viewed}]
milestones:
- name: signed_up
  events: [{event: signed_up}]
- name: first_report
  events: [{event: report_viewed}]
"""


class Target:
    url = ""
    secret = ""


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    db = f"duckdb://{tmp / 'fuzz.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "fuzz")
        Project(s, new.project.project_id).apply(parse_workspace(WORKSPACE))
    proc, url = start_server(db, tmp / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0"})
    try:
        auth = {"Authorization": f"Bearer {new.secret_key}"}
        now = utcnow()
        events = [{"event": e, "user_id": f"u{i}", "properties": {"n": i, "s": "x" * i},
                   "timestamp": (now - timedelta(days=i)).isoformat() + "Z"}
                  for i in range(5) for e in ("signed_up", "report_viewed")]
        events.append({"type": "identify", "user_id": "u1", "traits": {"plan": "pro"}})
        r = httpx.post(f"{url}/v1/events", json={"events": events},
                       headers={"Authorization": f"Bearer {new.project.write_key}"})
        assert r.status_code == 200, r.text
        for name, rule in (("viewers", {"kind": "performed", "event": "report_viewed"}),
                           ("pros", {"kind": "plan", "is": "pro"})):
            r = httpx.post(f"{url}/api/segments", json={"name": name, "rule": rule},
                           headers=auth)
            assert r.status_code == 201, r.text
        assert httpx.post(f"{url}/api/refresh", headers=auth, timeout=60).status_code == 200
        Target.url, Target.secret = url, new.secret_key
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log = (tmp / "server.log").read_text()
        assert "Traceback" not in log, log[-5000:]


def test_no_generated_request_gets_a_5xx(api_schema: schemathesis.BaseSchema) -> None:
    """Each operation in turn (schemathesis's pytest plugin does not load under pytest 9:
    its strategies are driven by hypothesis directly)."""
    headers = {"Authorization": f"Bearer {Target.secret}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20, "the OpenAPI document lost its routes"
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in [(op, mode) for op in operations for mode in modes]:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=Target.url, headers=headers, timeout=60)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query!r} "
                                f"-> {response.status_code} {response.text[:200]}")
        try:
            fuzz()
        except Unsatisfiable:  # nothing to make invalid: an operation without parameters
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n".join(failures[:20])
