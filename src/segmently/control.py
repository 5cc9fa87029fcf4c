"""How CLI commands reach a DuckDB file that `segmently serve` holds.

DuckDB lets one process write a file and no other process open it meanwhile. So `serve`
writes a control file beside the database (`<db>.serve.json`) naming its address and a
random admin token, and removes it on exit. A CLI command that finds the file locked sends
its call to the server instead (`POST /internal/v1/call`), which runs the same core
function against its own store. The token never leaves this machine's disk.

The file holds a credential, and it sits in a directory other people may write to, so:

- it is created exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600): nothing already
  there is opened, truncated or followed, so a planted symlink cannot redirect the token
  into another file and a pre-existing 0644 file cannot keep its mode;
- a file already there is replaced only when it is stale: unreadable as a control file, or
  naming a process that is gone, or a server that does not accept its token. It is
  unlinked (a name, never a target) and created again exclusively. A live server's file,
  a symlink, or anything but a regular file is refused with `ControlFileError`;
- `read_control` never follows a symlink either (`O_NOFOLLOW`, and `O_NONBLOCK` so a FIFO
  cannot hang the CLI) and answers a corrupt file with `ControlFileError` naming the
  file and what to do, never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segmently.errors import UnavailableError
from segmently.store.urls import duckdb_path

MAX_CONTROL_BYTES = 4096  # a real control file is ~150 bytes
PROBE_TIMEOUT = 2.0  # seconds to wait for the server a control file names


class ControlFileError(UnavailableError):
    """The control file cannot be used or replaced; the message says why and what to do."""

    code = "control_file"


@dataclass(frozen=True)
class ServerControl:
    url: str
    token: str
    pid: int


def control_path(db_url: str) -> Path | None:
    path = duckdb_path(db_url)
    return None if path is None else path.with_name(path.name + ".serve.json")


def _create(path: Path) -> int:
    """A new file at `path`, owner-only; FileExistsError if any name (even a dangling
    symlink) is already there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
    return fd


def write_control(db_url: str, url: str) -> ServerControl | None:
    """Write this server's control file; replace a stale one, refuse a live one."""
    path = control_path(db_url)
    if path is None:
        return None
    control = ServerControl(url=url, token=secrets.token_urlsafe(32), pid=os.getpid())
    try:
        fd = _create(path)
    except FileExistsError:
        _remove_stale(path)
        try:
            fd = _create(path)
        except FileExistsError:
            raise ControlFileError(f"{path} was created again by another process while "
                                   "this server was starting; is another `segmently "
                                   "serve` starting on the same database?") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(control.__dict__, fh)
    return control


def _remove_stale(path: Path) -> None:
    """Unlink the file at `path` if no live server holds it, else ControlFileError."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return  # gone meanwhile
    if not stat.S_ISREG(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        raise ControlFileError(f"{path} is {what}, not a control file written by "
                               "`segmently serve`. Refusing to start: remove it after "
                               "checking who put it there.")
    try:
        current: ServerControl | None = _read(path)
    except FileNotFoundError:
        return
    except ControlFileError:
        current = None  # corrupt: no CLI can reach a server through it
    if current is not None and is_live(current):
        raise ControlFileError(f"{path}: a running `segmently serve` (pid {current.pid}, "
                               f"{current.url}) holds this database")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ControlFileError(f"{path} is left by a server that is gone, but it cannot "
                               f"be removed ({exc.strerror}); remove it by hand") from None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def is_live(control: ServerControl) -> bool:
    """Whether the server a control file names is running and accepts its token.

    The pid alone is not enough (pids are reused): the server must also answer the
    internal call route with something other than a refused token. An unknown command is
    the probe: it runs nothing."""
    import httpx  # here, not at the top: a third of the CLI's start

    if not _pid_alive(control.pid):
        return False
    try:
        response = httpx.post(f"{control.url}/internal/v1/call",
                              json={"command": "", "args": {}},
                              headers={"Authorization": f"Bearer {control.token}"},
                              timeout=PROBE_TIMEOUT)
    except (httpx.HTTPError, ValueError):
        return False  # nothing listening there (or not a URL at all)
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return False
    return response.status_code == 400 and code == "unknown_command"


def _read(path: Path) -> ServerControl:
    """Parse the control file at `path` without following a symlink or blocking on a
    FIFO; FileNotFoundError if there is none, ControlFileError if it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ControlFileError(f"{path} is a symbolic link, not a control file "
                                   "written by `segmently serve`.") from None
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(str(path)) from None
        raise ControlFileError(f"{path} cannot be read ({exc.strerror}).") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ControlFileError(f"{path} is not a regular file.")
        raw = fh.read(MAX_CONTROL_BYTES + 1)
    try:
        if len(raw) > MAX_CONTROL_BYTES:
            raise ValueError(f"over {MAX_CONTROL_BYTES} bytes")
        data = json.loads(raw)
        control = ServerControl(url=data["url"], token=data["token"], pid=data["pid"])
        if not (isinstance(control.url, str) and isinstance(control.token, str)
                and type(control.pid) is int):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise ControlFileError(f"{path} is not a valid control file (expected JSON with "
                               "url, token and pid).") from None
    return control


def read_control(db_url: str) -> ServerControl | None:
    """The control file of the server holding this database, or None if there is none.
    ControlFileError (with the file and what to do) if it is corrupt or not a file."""
    path = control_path(db_url)
    if path is None:
        return None
    try:
        return _read(path)
    except FileNotFoundError:
        return None
    except ControlFileError as exc:
        raise ControlFileError(f"{exc} If no `segmently serve` is running on this "
                               "database, delete it.") from None


def remove_control(db_url: str, control: ServerControl | None) -> None:
    """Remove this server's control file (only if it is still ours)."""
    path = control_path(db_url)
    if control is None or path is None:
        return
    try:
        current = _read(path)
    except (FileNotFoundError, ControlFileError):
        return
    if secrets.compare_digest(current.token, control.token):
        path.unlink(missing_ok=True)


def remote_call(control: ServerControl, command: str, args: dict[str, Any]) -> Any:
    import httpx  # here, not at the top: a third of the CLI's start

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
    import httpx  # here, not at the top: a third of the CLI's start

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
