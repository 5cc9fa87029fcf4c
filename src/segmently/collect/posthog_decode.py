"""Decoding PostHog capture bodies: every encoding its SDKs and its server accept.

PostHog's capture endpoints take the same JSON in several envelopes, chosen by the
`compression` query (or form) parameter, else the `Content-Encoding` header:

- plain JSON (posthog-python, most server SDKs);
- gzip (`Content-Encoding: gzip`, `?compression=gzip-js` from posthog-js, or a body that
  simply starts with the gzip magic bytes);
- `lz64`: lz-string's `compressToBase64`, older posthog-js;
- `base64`: base64 of the JSON, also tried when a body is not JSON (as PostHog does);
- a form body `data=<json, base64 or lz64>` (`application/x-www-form-urlencoded`), the
  same values as a `data=` query parameter on GET.

Every decompression is bounded by the caller's limit, so a small body cannot inflate
into a large one. Called by `web/posthog_routes.py`; the JSON goes to `posthog.py`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from segmently.collect.decode import GZIP_MAGIC, gunzip, parse_json
from segmently.collect.errors import InputError

_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)}
_B64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s_-]+$")
FORM_TYPE = "application/x-www-form-urlencoded"
COMPRESSIONS = ("", "gzip", "gzip-js", "lz64", "base64")


@dataclass(slots=True)
class Decoded:
    """A decoded body: the JSON value, its size once decoded, and the form/query fields."""

    payload: Any
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(limit: int) -> InputError:
    return InputError(f"decompressed body is larger than the limit of {limit} bytes",
                      code="payload_too_large", status=413)


class _Bits:
    """lz-string's bit reader over base64 text: 6 bits per character, high bit first."""

    def __init__(self, text: str) -> None:
        try:
            self.values = [_B64_VALUE[c] for c in text]
        except KeyError as exc:
            raise InputError(f"lz64 body holds a character outside base64: {exc.args[0]!r}",
                             code="bad_encoding") from None
        self.index = 1
        self.value = self.values[0] if self.values else 0
        self.position = 32

    def read(self, count: int) -> int:
        bits, power = 0, 1
        for _ in range(count):
            if self.value & self.position:
                bits |= power
            self.position >>= 1
            if self.position == 0:
                self.position = 32
                self.value = self.values[self.index] if self.index < len(self.values) else 0
                self.index += 1
            power <<= 1
        return bits

    @property
    def exhausted(self) -> bool:
        return self.index > len(self.values)


def lz_decompress_base64(text: str, limit: int) -> str:
    """lz-string's `decompressFromBase64`, refusing output longer than `limit` characters.

    lz-string works on UTF-16 code units, so the result is reassembled through UTF-16 to
    join surrogate pairs back into characters.
    """
    text = text.strip().replace(" ", "+")  # form decoding turns '+' into spaces
    if not text:
        raise InputError("lz64 body is empty", code="bad_encoding")
    bits = _Bits(text)
    bad = InputError("body is not valid lz64 (lz-string base64)", code="bad_encoding")
    first = bits.read(2)
    if first == 2:
        return ""
    if first not in (0, 1):
        raise bad
    w = chr(bits.read(8 if first == 0 else 16))
    dictionary = ["", "", "", w]
    out, size = [w], 1
    enlarge_in, num_bits = 4, 3
    while True:
        if bits.exhausted:
            raise bad
        code = bits.read(num_bits)
        if code in (0, 1):
            dictionary.append(chr(bits.read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
        elif code == 2:
            break
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = w + w[0]
        else:
            raise bad
        out.append(entry)
        size += len(entry)
        if size > limit:
            raise _too_large(limit)
        dictionary.append(w + entry[0])
        enlarge_in -= 1
        w = entry
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1
    try:
        return "".join(out).encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeError as exc:
        raise InputError(f"lz64 body decodes to invalid text: {exc}", code="bad_encoding") from exc


def b64_decode(data: bytes | str, limit: int) -> bytes:
    """Lenient base64 as PostHog reads it: spaces were '+', padding may be missing."""
    raw = data.encode() if isinstance(data, str) else data
    raw = re.sub(rb"\s", b"", raw.replace(b" ", b"+")).rstrip(b"=")
    if len(raw) * 3 // 4 > limit:
        raise _too_large(limit)
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"body is not valid base64: {exc}", code="bad_encoding") from exc


def _json_or_base64(data: bytes) -> tuple[Any, int]:
    """JSON, else base64-encoded JSON (some libraries send that without saying so)."""
    try:
        return parse_json(data), len(data)
    except InputError:
        stripped = data.strip()
        if not stripped or not _B64_TEXT.match(stripped) or stripped[:1] in (b"{", b"["):
            raise
    decoded = b64_decode(data, len(data))
    return parse_json(decoded, "base64-decoded body"), len(decoded)


def _decode_data(data: bytes, compression: str, limit: int) -> tuple[Any, int]:
    if compression in ("gzip", "gzip-js") or data[:2] == GZIP_MAGIC:
        if data.strip() == b"undefined":
            raise InputError("body is the literal string 'undefined', not gzip",
                             code="bad_encoding")
        data = gunzip(data, limit)
    elif compression == "lz64":
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise InputError("lz64 body is not ASCII base64 text", code="bad_encoding") from None
        decoded = lz_decompress_base64(text, limit)
        return parse_json(decoded, "lz64-decoded body"), len(decoded)
    elif compression == "base64":
        data = b64_decode(data, limit)
        return parse_json(data, "base64-decoded body"), len(data)
    return _json_or_base64(data)


def _compression(value: str | None) -> str:
    name = (value or "").strip().lower()
    if name not in COMPRESSIONS:
        raise InputError(f"compression {name!r} is not supported; use one of "
                         "gzip, gzip-js, lz64, base64", code="bad_encoding")
    return name


def decode_request(
    body: bytes, *, content_type: str | None, content_encoding: str | None,
    params: dict[str, str], limit: int,
) -> Decoded:
    """Decode a POST body. `params` are the query parameters; form fields join them."""
    fields = dict(params)
    encoding = (content_encoding or "").strip().lower()
    compression = params.get("compression") or (encoding if encoding != "identity" else "")
    if (content_type or "").split(";")[0].strip().lower() == FORM_TYPE:
        if encoding == "gzip" or body[:2] == GZIP_MAGIC:
            body = gunzip(body, limit)
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            raise InputError("form body is not UTF-8", code="bad_encoding") from None
        fields.update(form)
        if not form.get("data"):
            raise InputError("form body has no data field", code="missing_field")
        compression = params.get("compression") or form.get("compression") or ""
        payload, size = _decode_data(form["data"].encode(), _compression(compression), limit)
        return Decoded(payload, size, fields)
    payload, size = _decode_data(body, _compression(compression), limit)
    return Decoded(payload, size, fields)


def decode_query(params: dict[str, str], limit: int) -> Decoded:
    """Decode a GET request: the event travels in the `data` query parameter."""
    data = params.get("data")
    if not data:
        raise InputError("data query parameter is required", code="missing_field")
    payload, size = _decode_data(data.encode(), _compression(params.get("compression")), limit)
    return Decoded(payload, size, dict(params))
