"""What every condition model shares: the strict base, the event base and the field types.

A condition kind is one module of `segments/kinds/`: its model derives from `Condition`
(or `EventCondition`, for the kinds that pick events by name and property filters) and
registers itself with `registry.py`, from which `rules.py` builds the `Rule` union.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from segmently.profile.matchers import Filters

PropertyOp = Literal["eq", "ne", "in", "not_in", "contains", "regex", "gt", "ge", "lt", "le",
                     "between", "is_set", "is_not_set", "within_last_days",
                     "more_than_days_ago"]
CompareOp = Literal["eq", "ne", "gt", "ge", "lt", "le", "between"]
EventName = Annotated[str, Field(min_length=1, max_length=1024)]
PropertyName = Annotated[str, Field(min_length=1, max_length=256)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]


class Strict(BaseModel):
    """Unknown fields are errors; aliased fields (`is`, `in`, `not`) read by either name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(Strict):
    """A condition: written with `kind` (a Literal field of the subclass, which names it in
    the registry); its class docstring is its semantics, shown in the builder."""


class EventCondition(Condition):
    """A condition over the events of one name that pass every `where` property filter."""

    event: EventName
    where: Filters = Field(default_factory=list)
