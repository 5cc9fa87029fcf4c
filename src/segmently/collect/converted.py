"""What converting one batch of a file yields: rows to store and the rows refused.

Shared by both conversion paths (`tabular.py` for tables, `jsonrows.py` for JSON lines
and vendor rows); the importer (`importer.py`) reports the bad rows and hands the rows to
its sink (`Store.append_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

from segmently.store.rows import RowBatch


@dataclass
class BadRow:
    """A refused row: its line as a user counts lines in the file, and why."""

    line: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason}


@dataclass
class Converted:
    rows: RowBatch
    bad: list[BadRow]
