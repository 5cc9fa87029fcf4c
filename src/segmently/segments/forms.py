"""What the segment builder needs to draw a form for each condition kind, derived from
the registry (registry.py): each kind's pydantic model gives the fields, its `widgets`
hints override what a field's name and type suggest, so a new kind or field appears in the
builder without touching the browser code (web/static/builder.js draws; /api/catalog
serves `condition_forms()`).

Each field gets a widget: a picker fed by what the project has seen (event, trait,
feature, milestone, segment, metric), a select for a closed set of values, a number,
a window editor, rows of property filters, a nested rule, rows of sequence steps (event,
filters, time limit), or a top / bottom percentage. The browser only draws widgets;
validation stays in `parse_rule`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from segmently.profile.matchers import FilterOp
from segmently.segments import registry

# field name -> widget, for any kind (a kind's own hints come first)
BY_NAME: dict[str, dict[str, Any]] = {
    "window": {"widget": "window"}, "rule": {"widget": "rule"},
    "where": {"widget": "filters", "options": list(get_args(FilterOp))},  # property/op/value
    "event": {"widget": "event"}, "property": {"widget": "trait"},
}


def _literal_options(annotation: Any) -> list[Any] | None:
    """The values of a Literal (also inside Optional), else None."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    if get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            found = _literal_options(arg)
            if found is not None:
                return found
    return None


def _number_widget(annotation: Any) -> str | None:
    args = get_args(annotation) if get_origin(annotation) in (typing.Union,
                                                               types.UnionType) else ()
    simple = [get_args(a)[0] if get_origin(a) is typing.Annotated else a
              for a in (args or (annotation,)) if a is not type(None)]
    if simple == [int]:
        return "int"
    if simple == [float]:
        return "number"
    return None


def _widget(name: str, info: FieldInfo, hints: Mapping[str, Mapping[str, Any]]
            ) -> dict[str, Any]:
    if name in hints:
        return dict(hints[name])
    if name in BY_NAME:
        return dict(BY_NAME[name])
    options = _literal_options(info.annotation)
    if options is not None:
        return {"widget": "select", "options": options}
    number = _number_widget(info.annotation)
    if number is not None:
        return {"widget": number}
    if name == "value":
        return {"widget": "value"}
    return {"widget": "text"}


def _fields(model: type[BaseModel], hints: Mapping[str, Mapping[str, Any]]
            ) -> list[dict[str, Any]]:
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key == "kind":
            continue
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append({"name": key, "required": info.is_required(),
                    "default": default if isinstance(default, (str, int, float)) else None,
                    **_widget(key, info, hints)})
    return out


def condition_forms() -> list[dict[str, Any]]:
    """[{kind, help, fields: [{name, widget, required, default, options?}]}], in the
    registry's order."""
    return [{"kind": k.kind, "help": k.help, "fields": _fields(k.model, k.widgets)}
            for k in registry.kinds().values()]
