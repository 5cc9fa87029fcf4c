"""The kinds tables of docs/rules.md, written from the condition registry (registry.py).

Each family's table sits between `<!-- kinds:<family> -->` and `<!-- /kinds:<family> -->`
markers; everything else in the file is prose kept by hand. A kind's row is its
registration's `fields` and `true_when`. tests/segments/test_registry.py fails when the
file and the registry disagree; rewrite the tables with

    python -m segmently.segments.rules_doc docs/rules.md
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from segmently.segments import registry

HEADER = "| kind | fields | true when |\n|---|---|---|\n"


def table(family: str) -> str:
    """The markdown table of one family's kinds, in the registry's order."""
    rows = [f"| `{k.kind}` | {k.fields} | {k.true_when} |"
            for k in registry.kinds().values() if k.family == family]
    return HEADER + "\n".join(rows) + "\n"


def _block(family: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- kinds:{family} -->\n)(.*?)(<!-- /kinds:{family} -->)", re.S)


def _between_markers(rows: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(1) + rows + m.group(3)


def with_tables(text: str) -> str:
    """`text` (docs/rules.md) with every family's table rewritten; a family whose markers
    are missing is an error (its kinds would be documented nowhere)."""
    for family in registry.FAMILIES:
        pattern = _block(family)
        if not pattern.search(text):
            raise ValueError(f"docs/rules.md has no <!-- kinds:{family} --> block")
        text = pattern.sub(_between_markers(table(family)), text)
    return text


def main(argv: list[str]) -> int:
    """Rewrite the file named (default docs/rules.md); `--check`: exit 1 if it drifted."""
    check = "--check" in argv
    path = Path(next((a for a in argv if not a.startswith("--")), "docs/rules.md"))
    text = path.read_text()
    fresh = with_tables(text)
    if check:
        if fresh != text:
            print(f"{path}: the kinds tables differ from the registry", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
