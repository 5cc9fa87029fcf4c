"""The rule language: pydantic models, JSON/YAML friendly, every field checked.

A rule is a group or a condition. Groups are written by their key, conditions by `kind`:

    all: [rule, ...]      true when every rule is true; `all: []` is TRUE (nothing fails)
    any: [rule, ...]      true when one rule is true;   `any: []` is FALSE (nothing holds)
    not: rule

    {kind: property, property: plan, op: eq, value: pro}
    {kind: performed, event: report_viewed, where: [...], at_least: 5, window: {last: 30}}
    {kind: not_performed, event: ..., window: ...}
    {kind: active, unit: day, at_least: 10, window: {last: 30}}
    {kind: aggregate, event: paid, property: amount, agg: sum, op: ge, value: 100}
    {kind: first_performed, event: signed_up, window: {last: 7}}
    {kind: last_seen, more_than_days_ago: 30}       (or within_last_days: 7)
    {kind: stopped, event: ..., recent_days: 14, earlier_days: 28}   (and `started`)
    {kind: regularly, event: ..., at_least: 2, period: week, in_at_least: 3, of_last: 4}
    {kind: in_segment, segment: power_users}        (and `not_in_segment`)
    ... and the kinds of conditions.py: metric, used_feature, reached_milestone,
    journey_stage, nps, survey_answer, plan, on_trial, missed_payments, sequence, account

Every condition is a definite true or false for every user: a missing trait, a user with no
events or an aggregate over nothing is false (never SQL NULL), so `not` is plain negation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, \
    model_validator

from segmently.profile.matchers import Filters, Finite, PropertyFilter, Scalar, Values
from segmently.segments import conditions as c
from segmently.segments.errors import RuleError
from segmently.segments.windows import WINDOW_TAGS, Window

PropertyOp = Literal["eq", "ne", "in", "not_in", "contains", "regex", "gt", "ge", "lt", "le",
                     "between", "is_set", "is_not_set", "within_last_days",
                     "more_than_days_ago"]
CompareOp = Literal["eq", "ne", "gt", "ge", "lt", "le", "between"]
EventName = Annotated[str, Field(min_length=1, max_length=1024)]
PropertyName = Annotated[str, Field(min_length=1, max_length=256)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class All(_Strict):
    all: list[Rule]


class Any_(_Strict):
    any: list[Rule]


class Not(_Strict):
    not_: Rule = Field(alias="not")


class PropertyCondition(_Strict):
    """The user's latest value of a trait (see store.views.latest_traits).

    `within_last_days` / `more_than_days_ago` read the trait as an ISO date or timestamp in
    UTC ("2026-03-01", "2026-03-01T10:00:00Z"; an offset other than Z is not applied) and
    take an integer number of days as value. Values are read as the type of the rule's
    value: a number or numeric string for a number, text for a string.
    """

    kind: Literal["property"]
    property: PropertyName
    op: PropertyOp = "eq"
    value: Scalar | Values | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> PropertyCondition:
        if self.op in ("within_last_days", "more_than_days_ago"):
            if not isinstance(self.value, int) or isinstance(self.value, bool) or self.value < 0:
                raise ValueError(f"op {self.op!r} needs a whole number of days as value")
            return self
        PropertyFilter(property=self.property, op=self.op, value=self.value)  # same checks
        return self


class _Events(_Strict):
    event: EventName
    where: Filters = Field(default_factory=list)


class Performed(_Events):
    """Performed the event (passing every `where` filter) a number of times in the window.

    at_least / at_most combine into "between"; `exactly` stands alone; none = at least once.
    """

    kind: Literal["performed"]
    window: Window | None = None
    at_least: Count | None = None
    at_most: Count | None = None
    exactly: Count | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Performed:
        if self.exactly is not None and (self.at_least is not None or self.at_most is not None):
            raise ValueError("use either exactly or at_least/at_most, not both")
        if self.at_least is not None and self.at_most is not None and \
                self.at_least > self.at_most:
            raise ValueError("at_least must not exceed at_most")
        return self

    def bounds(self) -> tuple[int, int | None]:
        """(minimum, maximum or None) number of times."""
        if self.exactly is not None:
            return self.exactly, self.exactly
        if self.at_least is None and self.at_most is None:
            return 1, None
        return self.at_least or 0, self.at_most


class NotPerformed(_Events):
    kind: Literal["not_performed"]
    window: Window | None = None


class Active(_Strict):
    """Active (any track, page or screen event) on at least N distinct UTC days or
    Monday-based weeks in the window."""

    kind: Literal["active"]
    unit: Literal["day", "week"] = "day"
    at_least: Count = 1
    window: Window | None = None


class Aggregate(_Events):
    """sum / avg / min / max / distinct_count of a numeric event property in the window.

    Over no matching events sum and distinct_count are 0; avg, min and max are unknown,
    which makes the condition false.
    """

    kind: Literal["aggregate"]
    property: PropertyName
    agg: Literal["sum", "avg", "min", "max", "distinct_count"]
    op: CompareOp = "ge"
    value: Finite | tuple[Finite, Finite]
    window: Window | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Aggregate:
        if (self.op == "between") != isinstance(self.value, tuple):
            raise ValueError("op 'between' needs [low, high]; other ops need one number")
        return self


class FirstPerformed(_Events):
    """The user's first matching event ever falls inside the window."""

    kind: Literal["first_performed"]
    window: Window


class LastSeen(_Strict):
    """The user's latest event (of any type) is older than N days, or within the last N."""

    kind: Literal["last_seen"]
    more_than_days_ago: Count | None = None
    within_last_days: Count | None = None

    @model_validator(mode="after")
    def _one(self) -> LastSeen:
        if (self.more_than_days_ago is None) == (self.within_last_days is None):
            raise ValueError("give exactly one of more_than_days_ago, within_last_days")
        return self


class _Change(_Events):
    recent_days: int = Field(ge=1, le=100_000)
    earlier_days: int = Field(ge=1, le=100_000)


class Stopped(_Change):
    """Performed the event in the `earlier_days` before the recent window, and not in the
    last `recent_days`."""

    kind: Literal["stopped"]


class Started(_Change):
    """Performed the event in the last `recent_days`, and not in the `earlier_days` before."""

    kind: Literal["started"]


class Regularly(_Events):
    """At least `at_least` times per period in at least `in_at_least` of the last `of_last`
    periods (periods end at as_of: the last one is [as_of - 1 period, as_of))."""

    kind: Literal["regularly"]
    at_least: int = Field(default=1, ge=1, le=1_000_000_000)
    period: Literal["day", "week"] = "week"
    in_at_least: int = Field(ge=1, le=60)
    of_last: int = Field(ge=1, le=60)

    @model_validator(mode="after")
    def _k_of_m(self) -> Regularly:
        if self.in_at_least > self.of_last:
            raise ValueError("in_at_least must not exceed of_last")
        return self


class InSegment(_Strict):
    kind: Literal["in_segment"]
    segment: str = Field(min_length=1, max_length=128)


class NotInSegment(_Strict):
    kind: Literal["not_in_segment"]
    segment: str = Field(min_length=1, max_length=128)


GROUP_TAGS = ("all", "any", "not")
_CLASSES: dict[str, type[BaseModel]] = {
    "all": All, "any": Any_, "not": Not, "property": PropertyCondition,
    "performed": Performed, "not_performed": NotPerformed, "active": Active,
    "aggregate": Aggregate, "first_performed": FirstPerformed, "last_seen": LastSeen,
    "stopped": Stopped, "started": Started, "regularly": Regularly,
    "in_segment": InSegment, "not_in_segment": NotInSegment, **c.EXTRA_CLASSES,
}
CONDITION_KINDS = tuple(k for k in _CLASSES if k not in GROUP_TAGS)
_TAG_OF = {cls: tag for tag, cls in _CLASSES.items()}


def _rule_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "kind" in value:
            kind = value["kind"]
            return kind if isinstance(kind, str) and kind in CONDITION_KINDS else None
        groups = [k for k in GROUP_TAGS if k in value]
        return groups[0] if len(groups) == 1 else None
    return _TAG_OF.get(type(value))


Rule = Annotated[
    Annotated[All, Tag("all")] | Annotated[Any_, Tag("any")] | Annotated[Not, Tag("not")]
    | Annotated[PropertyCondition, Tag("property")] | Annotated[Performed, Tag("performed")]
    | Annotated[NotPerformed, Tag("not_performed")] | Annotated[Active, Tag("active")]
    | Annotated[Aggregate, Tag("aggregate")]
    | Annotated[FirstPerformed, Tag("first_performed")] | Annotated[LastSeen, Tag("last_seen")]
    | Annotated[Stopped, Tag("stopped")] | Annotated[Started, Tag("started")]
    | Annotated[Regularly, Tag("regularly")] | Annotated[InSegment, Tag("in_segment")]
    | Annotated[NotInSegment, Tag("not_in_segment")]
    | Annotated[c.Metric, Tag("metric")] | Annotated[c.UsedFeature, Tag("used_feature")]
    | Annotated[c.ReachedMilestone, Tag("reached_milestone")]
    | Annotated[c.JourneyStage, Tag("journey_stage")] | Annotated[c.Nps, Tag("nps")]
    | Annotated[c.SurveyAnswer, Tag("survey_answer")] | Annotated[c.Plan, Tag("plan")]
    | Annotated[c.OnTrial, Tag("on_trial")]
    | Annotated[c.MissedPayments, Tag("missed_payments")]
    | Annotated[c.Sequence, Tag("sequence")] | Annotated[c.Account, Tag("account")],
    Discriminator(_rule_tag, custom_error_type="rule",
                  custom_error_message="a rule is a group (all: [...], any: [...] or not: "
                                       "rule) or a condition with kind one of "
                                       + ", ".join(CONDITION_KINDS)),
]

for _model in (All, Any_, Not):
    _model.model_rebuild()
c.Account.model_rebuild(_types_namespace={"Rule": Rule})


class RuleModel(BaseModel):
    """Wrapper to validate a bare rule (pydantic needs a field to hang the union on)."""

    rule: Rule


def _where(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a path, without the union tags pydantic inserts."""
    parts: list[str] = []
    expect_rule, expect_window = True, False
    for item in loc:
        if expect_rule and item in _CLASSES:
            expect_rule = False
            continue
        if expect_window and item in WINDOW_TAGS and parts and parts[-1] == ".window":
            expect_window = False
            continue
        expect_rule = item in ("not", "rule") or (isinstance(item, int) and parts
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
        if kind == "account" or (kind is None and any(k in node for k in GROUP_TAGS)):
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
