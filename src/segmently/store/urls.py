"""Store URLs and the error of a held DuckDB file: what the command line needs before it
opens a store, in a module that imports no engine (`segmently --help` starts fast).
`backends.py` connects."""

from __future__ import annotations

from pathlib import Path

from segmently.errors import UnavailableError

DEFAULT_DB = "segmently.duckdb"


class StoreLockedError(UnavailableError):
    """The DuckDB file is held by another process (usually `segmently serve`)."""

    code = "store_locked"


def normalize_url(url: str | None) -> str:
    url = url or DEFAULT_DB
    if "://" not in url:
        if url == ":memory:":
            return "duckdb://:memory:"
        return f"duckdb://{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def duckdb_path(url: str) -> Path | None:
    """The file behind a DuckDB URL, or None for other engines and in-memory databases."""
    url = normalize_url(url)
    if not url.startswith("duckdb://"):
        return None
    path = url.removeprefix("duckdb://")
    if path in ("", ":memory:", "/:memory:"):
        return None
    return Path(path)

