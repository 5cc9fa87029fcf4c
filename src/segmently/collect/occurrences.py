"""Which occurrence of its content each id-less row of a file is: the `n` of `imp_<hash>:<n>`.

Identical rows in one file are separate events (four identical purchase lines are four
purchases), yet re-importing the file must store nothing twice. So a row without a message
id gets `imp_` + the MD5 of its content + `:` + n, n being how many times that exact
content has appeared in the file up to and including this row. The same file gives the
same ids; a second version of it with one more copy of a row gives that copy a new id
(n + 1) while the earlier copies keep theirs.

Counting needs, for every content seen so far, how often it was seen. That is kept
compactly: a content is its MD5's first 8 bytes (a uint64), held in a few sorted NumPy
arrays with a uint32 count beside each key, 12 bytes per distinct content (120 MB for a
10-million-row file of distinct rows; nothing per row, nothing in Python objects). Arrays
are merged as they grow (a binary counter), so a lookup is a few binary searches per
batch and merging costs O(n log n) over the file. Two different contents sharing 8
bytes (about 3 in a million for 10 million distinct rows) would only number the later one
from the earlier one's count: its id still holds its full MD5, so it stays unique and the
same on every import of the file.

Callers: `tabular.py` (a batch's good rows, in file order) and `formats.py` (JSON lines).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)  # 16 nibbles, most significant first


def keys_of_hex(digests: pa.Array) -> np.ndarray:
    """uint64 keys (the first 16 hex digits) of an Arrow array of 32-digit MD5 hex texts."""
    if len(digests) == 0:
        return np.empty(0, dtype=np.uint64)
    first = pc.utf8_slice_codeunits(digests, 0, 16)
    if isinstance(first, pa.ChunkedArray):
        first = first.combine_chunks()
    raw = np.frombuffer(first.buffers()[2], dtype=np.uint8)
    offsets = np.frombuffer(first.buffers()[1], dtype=np.int32)[first.offset:first.offset + 1]
    start = int(offsets[0])
    nibbles = _HEX[raw[start:start + 16 * len(first)]].reshape(len(first), 16)
    return (nibbles.astype(np.uint64) << _SHIFTS).sum(axis=1, dtype=np.uint64)


def key_of_digest(digest: bytes) -> int:
    """The same key from a raw MD5 digest (the JSON-line path hashes in Python)."""
    return int.from_bytes(digest[:8], "big")


class OccurrenceCounter:
    """Occurrence numbers of contents, in the order rows are given, across a file."""

    def __init__(self) -> None:
        self._levels: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted keys, counts)

    @property
    def distinct(self) -> int:
        return sum(len(keys) for keys, _ in self._levels)

    @property
    def nbytes(self) -> int:
        return sum(keys.nbytes + counts.nbytes for keys, counts in self._levels)

    def number(self, keys: np.ndarray) -> np.ndarray:
        """For each key (in row order), how many times it has now been seen: 1 the first
        time in the file, 2 the second... Records them."""
        n = len(keys)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        keys = np.asarray(keys, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        group = np.cumsum(first) - 1  # in sorted order
        starts = np.flatnonzero(first)
        unique = ordered[starts]
        counts = np.diff(np.append(starts, n))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[group]
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = group
        prior = np.zeros(len(unique), dtype=np.int64)
        seen = np.zeros(len(unique), dtype=bool)
        for level_keys, level_counts in self._levels:
            pos = np.minimum(np.searchsorted(level_keys, unique), len(level_keys) - 1)
            hit = level_keys[pos] == unique
            prior[hit] = level_counts[pos[hit]]
            level_counts[pos[hit]] += counts[hit].astype(np.uint32)
            seen |= hit
        if not seen.all():
            self._add(unique[~seen], counts[~seen].astype(np.uint32))
        return prior[inverse] + rank + 1

    def _add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """A new sorted level; equal-sized neighbours merged (a binary counter: each key
        is merged about log2(file / batch) times, at most that many levels to search)."""
        self._levels.append((keys, counts))
        while len(self._levels) >= 2 and len(self._levels[-2][0]) <= len(self._levels[-1][0]):
            (k1, c1), (k2, c2) = self._levels.pop(-2), self._levels.pop()
            self._levels.append(_merged(k1, c1, k2, c2))


def _merged(k1: np.ndarray, c1: np.ndarray, k2: np.ndarray,
            c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted levels with no key in common, as one."""
    at = np.searchsorted(k1, k2) + np.arange(len(k2))  # where k2's keys land
    keys = np.empty(len(k1) + len(k2), dtype=np.uint64)
    counts = np.empty(len(keys), dtype=np.uint32)
    mine = np.ones(len(keys), dtype=bool)
    mine[at] = False
    keys[at], counts[at] = k2, c2
    keys[mine], counts[mine] = k1, c1
    return keys, counts
