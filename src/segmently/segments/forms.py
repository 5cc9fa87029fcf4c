"""What the segment builder needs to draw a form for each condition kind, derived from
the rule language's own pydantic models so a new kind or field appears in the builder
without touching the browser code.

Each field gets a widget: a picker fed by what the project has seen (event, trait,
feature, milestone, segment, metric), a select for a closed set of values, a number,
a window editor, rows of property filters, a nested rule, rows of sequence steps (event,
filters, time limit), or a top / bottom percentage. The browser only draws widgets;
validation stays in `parse_rule`.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from segmently.profile.matchers import FilterOp
from segmently.segments import conditions as c
from segmently.segments.rules import _CLASSES, CONDITION_KINDS

# field name -> picker over the project's vocabulary or what it has seen
PICKERS = {"event": "event", "feature": "feature", "features": "features",
           "milestone": "milestone", "stage": "milestone", "segment": "segment",
           "question": "text", "is": "plan", "in": "plans"}
LIMIT_UNITS = ["minutes", "hours", "days"]  # a sequence step's within_<unit>


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


def _widget(kind: str, name: str, info: FieldInfo) -> dict[str, Any]:
    annotation = info.annotation
    if name == "window":
        return {"widget": "window"}
    if name == "rule":
        return {"widget": "rule"}
    if name == "where":  # rows of property / op / value
        return {"widget": "filters", "options": list(get_args(FilterOp))}
    if name == "steps":  # rows of event, filters, within_<unit> of the previous step
        return {"widget": "steps", "options": list(get_args(FilterOp)), "units": LIMIT_UNITS}
    if name == "percentile":
        return {"widget": "percentile", "options": list(c.Percentile.model_fields)}
    if name == "metric":
        return {"widget": "select", "options": [*c.NUMERIC_METRICS, *c.TEXT_METRICS]}
    if name == "property":
        return {"widget": "event_property" if kind == "aggregate" else "trait"}
    if name in PICKERS:
        return {"widget": PICKERS[name]}
    options = _literal_options(annotation)
    if options is not None:
        return {"widget": "select", "options": options}
    number = _number_widget(annotation)
    if number is not None:
        return {"widget": number}
    if name == "value":
        return {"widget": "value"}
    return {"widget": "text"}


def _fields(kind: str, model: type[BaseModel]) -> list[dict[str, Any]]:
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key == "kind":
            continue
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append({"name": key, "required": info.is_required(),
                    "default": default if isinstance(default, (str, int, float)) else None,
                    **_widget(kind, key, info)})
    return out


def condition_forms() -> list[dict[str, Any]]:
    """[{kind, help, fields: [{name, widget, required, default, options?}]}]."""
    forms = []
    for kind in CONDITION_KINDS:
        model = _CLASSES[kind]
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        forms.append({"kind": kind, "help": " ".join(doc.split()),
                      "fields": _fields(kind, model)})
    return forms
