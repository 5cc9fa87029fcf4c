"""The store as a data lake holds it: one Parquet file per table, read by any Ibis engine.

`export_parquet` writes a store's tables out; `open_lake` registers them on a backend (Spark,
DuckDB, ...) and returns a read-only Store, so every query of the later stages runs there
unchanged. This is how the engine tests run on PySpark in local mode.
"""

from __future__ import annotations

from pathlib import Path

from ibis.backends import BaseBackend

from segmently.store import schema
from segmently.store.store import Store


def export_parquet(store: Store, directory: str | Path, tables: list[str] | None = None) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in tables or list(schema.TABLES):
        store.table(name).to_parquet(directory / f"{name}.parquet")


def open_lake(con: BaseBackend, directory: str | Path, tables: list[str] | None = None) -> Store:
    directory = Path(directory)
    for name in tables or list(schema.TABLES):
        con.read_parquet(directory / f"{name}.parquet", table_name=name)
    return Store.over(con)
