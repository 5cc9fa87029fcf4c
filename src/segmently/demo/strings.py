"""Vectorised string building: ids, choices and JSON objects as Arrow string arrays.

Properties are stored as JSON text. Serialising millions of dicts one by one is the slow
part of any generator, so JSON objects are assembled column-wise from templates: every
value is already JSON-encoded text (numbers cast, strings quoted) and the pieces are
joined element-wise by Arrow. Values come from fixed vocabularies without quotes or
backslashes, so quoting is concatenation. Used by the event generators and `rows.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Piece: TypeAlias = pa.Array | str


def const(value: str, n: int) -> pa.Array:
    """`value` repeated n times (a dictionary array decoded in C, no Python list)."""
    return pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([value])).cast(
        pa.string())


def pick(options: Sequence[str], index: np.ndarray) -> pa.Array:
    """options[index] for every element."""
    return pa.array(list(options), pa.string()).take(pa.array(np.asarray(index, np.int64)))


def num(values: np.ndarray) -> pa.Array:
    """Integers as decimal text (also valid JSON numbers)."""
    return pc.cast(pa.array(np.asarray(values, np.int64)), pa.string())


def concat(*pieces: Piece) -> pa.Array:
    """Element-wise concatenation of arrays and constant strings."""
    return pc.binary_join_element_wise(*pieces, "")


def ident(prefix: str, numbers: np.ndarray, width: int = 0) -> pa.Array:
    """prefix + zero-padded number, e.g. usr_0000042."""
    text = num(numbers)
    if width:
        text = pc.utf8_lpad(text, width=width, padding="0")
    return concat(prefix, text)


@overload
def quoted(text: str) -> str: ...
@overload
def quoted(text: pa.Array) -> pa.Array: ...
def quoted(text: Piece) -> Piece:
    return f'"{text}"' if isinstance(text, str) else concat('"', text, '"')


def json_object(fields: Sequence[tuple[str, Piece]]) -> pa.Array:
    """{"k": v, ...} where each v is JSON text (an array, or a constant string)."""
    pieces: list[Piece] = []
    for i, (key, value) in enumerate(fields):
        pieces.append(("{" if i == 0 else ",") + f'"{key}":')
        pieces.append(value)
    pieces.append("}")
    if not any(isinstance(p, pa.Array) for p in pieces):
        raise ValueError("json_object needs at least one array value")
    return concat(*pieces)


def optional_field(key: str, value: pa.Array, present: np.ndarray) -> pa.Array:
    """',"key": value' where present, '' elsewhere: a field only some objects carry."""
    full = concat(f',"{key}":', value)
    return pc.if_else(pa.array(present), full, "")
