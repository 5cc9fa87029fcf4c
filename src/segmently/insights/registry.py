"""The one registry of analyses (retention, stickiness, segment flow, campaign results...):
each module of `insights/` declares its analyses with `@analysis`, naming its parameters
as a pydantic model, and every shell reaches them the same way:

    core.Project.insight("retention", {"period": "week"})   # -> JSON-able dict
    GET /api/insights/retention?period=week                  # web/insights_api.py
    segmently insights retention period=week                 # cli/insights.py
    /ui/insights/retention                                   # its page, when it has one

An analysis is a function `(Context, Params) -> dict`: it reads the store through Ibis
expressions (the same on DuckDB, PostgreSQL and Spark) and the members of segments
through `Context.members_of` (the core's: a snapshot or a live evaluation, decided
there), and returns plain data (ISO 8601 instants, numbers, lists). Parameters arrive as
text from query strings and command lines: `Csv` reads "a,b" as a list. A parameter that
does not fit is an `InsightError` (400) naming it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import ibis.expr.types as ir
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from segmently.errors import NotFoundError, SegmentlyError, validation_message
from segmently.profile.config import Vocabulary
from segmently.store import Store


class InsightError(SegmentlyError, ValueError):
    code = "invalid_insight"


class UnknownInsightError(NotFoundError):
    code = "unknown_insight"


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Csv = Annotated[list[str], BeforeValidator(_csv)]  # "a,b" or ["a", "b"]


class Params(BaseModel):
    """Base of every analysis's parameters: unknown names are refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Context:
    """What an analysis may read: the store and project, the stored vocabulary, the
    members of segments (segment, user_id) as the core reads them, and now."""

    store: Store
    project_id: str
    vocabulary: Vocabulary
    members_of: Callable[[list[str]], ir.Table]
    segments: Callable[[], list[str]]  # the live segment names
    now: datetime


P = TypeVar("P", bound=Params)
Run = Callable[[Context, Any], dict[str, Any]]


@dataclass(frozen=True)
class Analysis:
    name: str
    summary: str
    params: type[Params]
    run: Run
    page: bool = True  # has a UI page (templates/insights/<name>.html)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "page": self.page,
                "params": self.params.model_json_schema()}


REGISTRY: dict[str, Analysis] = {}


def analysis(name: str, summary: str, params: type[P], page: bool = True
             ) -> Callable[[Callable[[Context, P], dict[str, Any]]],
                           Callable[[Context, P], dict[str, Any]]]:
    """Register `fn(ctx, params) -> dict` as the analysis `name`."""
    def register(fn: Callable[[Context, P], dict[str, Any]]
                 ) -> Callable[[Context, P], dict[str, Any]]:
        if name in REGISTRY:
            raise RuntimeError(f"two analyses named {name!r}")
        REGISTRY[name] = Analysis(name, summary, params, fn, page)
        return fn
    return register


def load_all() -> dict[str, Analysis]:
    """Every analysis: each module of this package is imported on first use (the ones
    that declare analyses register them as they load)."""
    import segmently.insights as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return REGISTRY


def find(name: str) -> Analysis:
    found = load_all().get(name)
    if found is None:
        raise UnknownInsightError(f"no analysis named {name!r}; known: "
                                  f"{', '.join(sorted(REGISTRY))}")
    return found


def parse_params(found: Analysis, raw: dict[str, Any]) -> Params:
    try:
        return found.params.model_validate(raw)
    except ValidationError as exc:
        raise InsightError(validation_message(exc, f"{found.name}: ")) from None
