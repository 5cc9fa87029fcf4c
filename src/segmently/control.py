"""How CLI commands reach a DuckDB file that `segmently serve` holds.

DuckDB lets one process write a file and no other process open it meanwhile. So `serve`
writes a control file beside the database (`<db>.serve.json`, mode 0600) naming its
address and a random admin token, and removes it on exit. A CLI command that finds the
file locked sends its call to the server instead (`POST /internal/v1/call`), which runs the
same core function against its own store. The token never leaves this machine's disk.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from segmently.store.backends import duckdb_path


@dataclass(frozen=True)
class ServerControl:
    url: str
    token: str
    pid: int


def control_path(db_url: str) -> Path | None:
    path = duckdb_path(db_url)
    return None if path is None else path.with_name(path.name + ".serve.json")


def write_control(db_url: str, url: str) -> ServerControl | None:
    path = control_path(db_url)
    if path is None:
        return None
    control = ServerControl(url=url, token=secrets.token_urlsafe(32), pid=os.getpid())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(control.__dict__, fh)
    return control


def read_control(db_url: str) -> ServerControl | None:
    path = control_path(db_url)
    if path is None or not path.exists():
        return None
    data = json.loads(path.read_text())
    return ServerControl(url=data["url"], token=data["token"], pid=int(data["pid"]))


def remove_control(db_url: str, control: ServerControl | None) -> None:
    path = control_path(db_url)
    if control is not None and path is not None and path.exists():
        current = read_control(db_url)
        if current is not None and current.token == control.token:
            path.unlink()


def remote_call(control: ServerControl, command: str, args: dict[str, Any]) -> Any:
    response = httpx.post(
        f"{control.url}/internal/v1/call",
        json={"command": command, "args": args},
        headers={"Authorization": f"Bearer {control.token}"},
        timeout=None,
    )
    body = response.json()
    if response.status_code != 200:
        raise RuntimeError(body.get("message", response.text))
    return body["result"]


def remote_append(control: ServerControl, project_id: str, body: bytes) -> dict[str, int]:
    """Send rows converted here (an encoded RowBatch) to the server's store."""
    response = httpx.post(
        f"{control.url}/internal/v1/append",
        params={"project_id": project_id},
        content=body,
        headers={"Authorization": f"Bearer {control.token}",
                 "Content-Type": "application/octet-stream"},
        timeout=None,
    )
    if response.status_code != 200:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise RuntimeError(message)
    return response.json()
