"""Which regular expressions a rule may hold: those every engine runs alike, and fast.

A `regex` filter runs on DuckDB (RE2), PostgreSQL (its "advanced" regular expressions) and
Spark (java.util.regex, a backtracking matcher). A pattern one of them refuses would make
every refresh of the project fail, and a pattern that backtracks exponentially would hold
an engine for hours, so a pattern is checked when a rule is parsed, against the subset all
three read the same way:

- literals, `.`, classes `[a-z0-9_]` and `[^...]`, `\\d \\D \\w \\W \\s \\S`, escaped
  punctuation, `^` and `$`, groups `( )` and `(?: )`, alternation `|`, and the quantifiers
  `* + ? {n} {n,} {n,m}` (counts up to 255: PostgreSQL's limit), lazy forms included;
- refused: backreferences, lookahead and lookbehind (RE2 has none), named groups and
  inline flags (PostgreSQL reads `(?P` and mid-pattern flags differently), `\\b` (a word
  boundary elsewhere, a backspace in PostgreSQL), other letter escapes (`\\A \\Z \\u \\x
  \\p`: each engine has its own), POSIX classes `[[:alpha:]]` (not in Java);
- refused as catastrophic on a backtracking engine: a repeated part that itself contains a
  repeat (`(a+)+`, `(\\w*\\s?)*`), and alternatives under a repeat that can begin with the
  same character (`(a|ab)*`): write `a+` or a class `[ab]+` instead;
- at most MAX_PATTERN characters.

The search is unanchored (`contains`-like) unless the pattern says `^`/`$`.
"""

from __future__ import annotations

import re

# The regex parser (Python 3.11+, as requires-python says) is private: its shapes are
# stable within a minor version, and typeshed has no stubs for it.
import re._constants as sre  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
import string
from typing import Any

MAX_PATTERN = 512
MAX_REPEAT = 255
_ALLOWED_ESCAPES = set("dDwWsS") | set("ntrf") | set(string.punctuation)
_UNIVERSAL = object()  # a first character that may be anything


class RegexError(ValueError):
    """A pattern outside the portable subset; the message says what and why."""


def check_regex(pattern: str) -> str:
    """The pattern itself when it is in the subset every engine runs alike, else RegexError."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"a regex may have at most {MAX_PATTERN} characters")
    _check_syntax(pattern)
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise RegexError(f"not a valid regex: {exc}") from None
    _check_tree(list(parsed), inside_repeat=False)
    return pattern


def _check_syntax(pattern: str) -> None:
    """What the parse tree no longer shows: escapes, flags and POSIX classes as written."""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
            if nxt not in _ALLOWED_ESCAPES:
                raise RegexError(f"the escape \\{nxt} is not read alike by every engine "
                                 "(allowed: \\d \\w \\s, their capitals, \\n \\t \\r \\f and "
                                 "escaped punctuation)")
            i += 2
            continue
        if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
            raise RegexError("only (?: ) groups are allowed: lookaround, named groups and "
                             "inline flags are not read alike by every engine")
        if pattern.startswith("[:", i) or pattern.startswith("[=", i) or \
                pattern.startswith("[.", i):
            raise RegexError("POSIX classes such as [[:alpha:]] are not read alike by every "
                             "engine: write [a-zA-Z]")
        if pattern.startswith("{,", i):
            raise RegexError("write {0,n}: {,n} is not read alike by every engine")
        i += 1


def _check_tree(items: list[tuple[Any, Any]], inside_repeat: bool) -> None:
    for op, av in items:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise RegexError("backreferences are not supported")
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            raise RegexError("lookahead and lookbehind are not supported")
        if op is sre.AT and av in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
            raise RegexError("\\b is a word boundary on some engines and a backspace on "
                             "PostgreSQL")
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, high, body = av
            if op is getattr(sre, "POSSESSIVE_REPEAT", None):
                raise RegexError("possessive quantifiers are not supported")
            if low > MAX_REPEAT or (high is not sre.MAXREPEAT and high > MAX_REPEAT):
                raise RegexError(f"repeat counts may be at most {MAX_REPEAT}")
            repeats = high is sre.MAXREPEAT or high > 1
            if repeats and inside_repeat:
                raise RegexError("a repeat inside a repeat, such as (a+)+, can take "
                                 "exponential time: repeat once (a+)")
            _check_tree(list(body), inside_repeat or repeats)
        elif op is sre.SUBPATTERN:
            _check_tree(list(av[-1]), inside_repeat)
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            raise RegexError("atomic groups are not supported")
        elif op is sre.BRANCH:
            branches = [list(b) for b in av[1]]
            if inside_repeat:
                _check_disjoint(branches)
            for branch in branches:
                _check_tree(branch, inside_repeat)


def _check_disjoint(branches: list[list[tuple[Any, Any]]]) -> None:
    seen: set[int] = set()
    for branch in branches:
        first = _first_chars(branch)
        if first is _UNIVERSAL or (seen & first):  # type: ignore[operator]
            raise RegexError("alternatives inside a repeat that can begin with the same "
                             "character, such as (a|ab)*, can take exponential time: "
                             "write a class [ab]* or factor the common start out")
        seen |= first  # type: ignore[arg-type]


def _first_chars(items: list[tuple[Any, Any]]) -> object | set[int]:
    """The characters a part can begin with (_UNIVERSAL when unknown or many)."""
    if not items:
        return _UNIVERSAL
    op, av = items[0]
    if op is sre.LITERAL:
        return {av}
    if op is sre.IN and not any(o is sre.NEGATE for o, _ in av):
        chars: set[int] = set()
        for o, v in av:
            if o is sre.LITERAL:
                chars.add(v)
            elif o is sre.RANGE and v[1] - v[0] < 256:
                chars.update(range(v[0], v[1] + 1))
            else:
                return _UNIVERSAL
        return chars
    if op is sre.SUBPATTERN:
        return _first_chars(list(av[-1]) + items[1:])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] >= 1:
        return _first_chars(list(av[2]))
    return _UNIVERSAL
