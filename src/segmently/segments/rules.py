"""The rule language: pydantic models, JSON/YAML friendly, every field checked.

A rule is a group or a condition. Groups are written by their key, conditions by `kind`:

    all: [rule, ...]      true when every rule is true; `all: []` is TRUE (nothing fails)
    any: [rule, ...]      true when one rule is true;   `any: []` is FALSE (nothing holds)
    not: rule

    {kind: property, property: plan, op: eq, value: pro}
    {kind: performed, event: report_viewed, where: [...], at_least: 5, window: {last: 30}}
    ... one kind per entry of the condition registry (registry.py; each kind's module in
    segments/kinds/ holds its model, whose docstring is its semantics, and its lowering).

`Rule` is built here from the registry: the groups and every registered condition model,
one tagged union with a callable discriminator (a group by its key, a condition by
`kind`), so pydantic validates, reports errors by field and writes the JSON Schema
(`workspace.json_schema`) for every kind without a list of kinds in this file.

Every condition is a definite true or false for every user: a missing trait, a user with no
events or an aggregate over nothing is false (never SQL NULL), so `not` is plain negation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError

from segmently.segments import registry
from segmently.segments.conditions import Condition, Strict
from segmently.segments.errors import RuleError
from segmently.segments.kinds.events import (  # noqa: F401  (the language's names, as before)
    Active,
    Aggregate,
    FirstPerformed,
    LastSeen,
    NotPerformed,
    Performed,
    PropertyCondition,
    Regularly,
    Started,
    Stopped,
)
from segmently.segments.kinds.references import InSegment, NotInSegment  # noqa: F401
from segmently.segments.windows import WINDOW_TAGS


class All(Strict):
    all: list[Rule]


class Any_(Strict):
    any: list[Rule]


class Not(Strict):
    not_: Rule = Field(alias="not")


GROUP_TAGS = ("all", "any", "not")
_GROUPS: dict[str, type[BaseModel]] = {"all": All, "any": Any_, "not": Not}
KINDS = registry.kinds()
CONDITION_KINDS = tuple(KINDS)
NESTING_KINDS = frozenset(k.kind for k in KINDS.values() if k.nests)  # groups, for limits
_TAGS = frozenset({*GROUP_TAGS, *CONDITION_KINDS})
_TAG_OF: dict[type[BaseModel], str] = {
    **{cls: tag for tag, cls in _GROUPS.items()}, **{k.model: k.kind for k in KINDS.values()}}


def _rule_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "kind" in value:
            kind = value["kind"]
            return kind if isinstance(kind, str) and kind in KINDS else None
        groups = [k for k in GROUP_TAGS if k in value]
        return groups[0] if len(groups) == 1 else None
    return _TAG_OF.get(type(value))


if TYPE_CHECKING:  # what mypy sees: a group or any condition model
    Rule = All | Any_ | Not | Condition
else:  # what pydantic sees: the tagged union of the groups and every registered kind
    Rule = Annotated[
        Union[tuple(Annotated[model, Tag(tag)] for model, tag in _TAG_OF.items())],  # noqa: UP007
        Discriminator(_rule_tag, custom_error_type="rule",
                      custom_error_message="a rule is a group (all: [...], any: [...] or "
                                           "not: rule) or a condition with kind one of "
                                           + ", ".join(CONDITION_KINDS)),
    ]

for _model in (All, Any_, Not):
    _model.model_rebuild()
for _kind in KINDS.values():  # kinds holding a nested rule (account) name `Rule` lazily
    if not _kind.model.__pydantic_complete__:
        _kind.model.model_rebuild(_types_namespace={"Rule": Rule})


class RuleModel(BaseModel):
    """Wrapper to validate a bare rule (pydantic needs a field to hang the union on)."""

    rule: Rule


def _where(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a path, without the union tags pydantic inserts."""
    parts: list[str] = []
    expect_rule, expect_window = True, False
    for item in loc:
        if expect_rule and item in _TAGS:
            expect_rule = False
            continue
        if expect_window and item in WINDOW_TAGS and parts and parts[-1] == ".window":
            expect_window = False
            continue
        expect_rule = item in ("not", "rule") or (isinstance(item, int) and bool(parts)
                                                  and parts[-1] in (".all", ".any"))
        expect_window = item == "window"
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts).lstrip(".")


MAX_DEPTH = 32  # groups (all, any, not, account) nested in one another
MAX_CONDITIONS = 500  # conditions in one rule, wherever they are
_MAX_NESTING = 4 * MAX_DEPTH + 16  # JSON levels of any kind (a group is two: {all: [...]})


def check_size(data: Any, where: str = "rule") -> None:
    """Refuse a rule too deep or too large before pydantic (or the compiler) recurses
    through it: a `not` nested 200 deep or an `all` of 1,000 conditions would exhaust the
    stack or build an expression no engine compiles. Iterative, so any input is safe."""
    stack: list[tuple[Any, int, int]] = [(data, 0, 0)]
    conditions = 0
    while stack:
        node, groups, nesting = stack.pop()
        if nesting > _MAX_NESTING:
            raise RuleError(f"{where}: nested more than {_MAX_NESTING} levels deep")
        if isinstance(node, list):
            stack.extend((item, groups, nesting + 1) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("kind")
        conditions += kind is not None
        nests = isinstance(kind, str) and kind in NESTING_KINDS  # account holds a rule
        if nests or (kind is None and any(k in node for k in GROUP_TAGS)):
            groups += 1
        if groups > MAX_DEPTH:
            raise RuleError(f"{where}: groups are nested more than {MAX_DEPTH} deep (the "
                            "limit; docs/rules.md, Limits)")
        if conditions > MAX_CONDITIONS:
            raise RuleError(f"{where}: more than {MAX_CONDITIONS} conditions (the limit; "
                            "docs/rules.md, Limits)")
        stack.extend((value, groups, nesting + 1) for value in node.values())


def parse_rule(data: Any, where: str = "rule") -> Rule:
    """Validate a rule from JSON/YAML data; RuleError lists each problem by field path."""
    if not isinstance(data, BaseModel):
        check_size(data, where)
    try:
        return RuleModel.model_validate({"rule": data}).rule
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            path = _where(tuple(err["loc"])[1:])
            lines.append(f"{where}{'.' + path if path and not path.startswith('[') else path}: "
                         f"{err['msg'].removeprefix('Value error, ')}")
        raise RuleError("\n".join(lines)) from exc


def rule_json(rule: Rule) -> dict[str, Any]:
    """The rule as JSON-ready data (what parse_rule accepts), group keys as written."""
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)
