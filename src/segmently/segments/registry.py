"""The condition registry: every condition kind declared once, by the module that holds it.

A kind is a `ConditionKind`: its pydantic model (the `kind` Literal names it, the class
docstring is its semantics), its lowering `(lowerer, condition) -> Node` (the Node carries
the label and the explanation sentence), the words of its docs/rules.md row, builder form
hints and an example rule. Each module of the `segments/kinds/` package calls `register`
when imported, and `kinds()` imports every module of that package, so adding a kind is
adding a file there.

Next hops, all reading `kinds()`: `rules.py` builds the `Rule` union (and so the JSON
Schema and `parse_rule`), `lower.py` looks lowerings up by model, `forms.py` describes the
builder's forms, `rules_doc.py` writes the kinds tables of docs/rules.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel

if TYPE_CHECKING:
    from segmently.segments.lower import Lowerer
    from segmently.segments.nodes import Node

# the docs/rules.md section of each family, in the order kinds are listed everywhere
FAMILIES: Mapping[str, str] = MappingProxyType({
    "events": "Conditions on events and traits",
    "product": "Conditions on the product (the workspace vocabulary)",
    "references": "References",
})
Family = Literal["events", "product", "references"]
Lower = Callable[["Lowerer", Any], "Node"]


@dataclass(frozen=True)
class ConditionKind:
    """One condition kind: everything the language, the compiler, the builder and the docs
    need to know about it."""

    kind: str  # the model's `kind` literal
    model: type[BaseModel]
    lower: Lower  # (lowerer, condition) -> Node: aggregates registered, truth, sentence
    family: Family  # which docs/rules.md table it is listed in
    fields: str  # the docs table's "fields" cell (markdown)
    true_when: str  # the docs table's "true when" cell (markdown)
    example: Mapping[str, Any]  # a valid rule of this kind (tests run every kind with it)
    widgets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # builder hints
    nests: bool = False  # holds a nested rule: counts as a group for the depth limit

    @property
    def help(self) -> str:
        """The first paragraph of the model's docstring, on one line (the builder's help)."""
        doc = (self.model.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(doc.split())


_REGISTERED: dict[str, ConditionKind] = {}
_loaded = False
_ordered: Mapping[str, ConditionKind] | None = None  # kinds(), until the next register


def _kind_of(model: type[BaseModel]) -> str:
    info = model.model_fields.get("kind")
    args = get_args(info.annotation) if info is not None else ()
    if info is None or get_origin(info.annotation) is not Literal or len(args) != 1:
        raise TypeError(f"{model.__name__} needs a field `kind: Literal[\"<name>\"]`")
    return str(args[0])


def register(model: type[BaseModel], lower: Lower, *, family: Family, fields: str,
             true_when: str, example: Mapping[str, Any],
             widgets: Mapping[str, Mapping[str, Any]] | None = None,
             nests: bool = False) -> ConditionKind:
    """Declare a condition kind (called once, by the module that defines it)."""
    kind = _kind_of(model)
    if kind in _REGISTERED and _REGISTERED[kind].model is not model:
        raise ValueError(f"condition kind {kind!r} is registered twice")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    if example.get("kind") != kind:
        raise ValueError(f"the example of {kind!r} must have kind {kind!r}")
    entry = ConditionKind(kind, model, lower, family, fields, true_when,
                          MappingProxyType(dict(example)), MappingProxyType(dict(widgets or {})),
                          nests)
    global _ordered
    _REGISTERED[kind] = entry
    _ordered = None
    return entry


def _load() -> None:
    """Import every module of `segments/kinds/` (alphabetically): each registers its kinds."""
    global _loaded
    if _loaded:
        return
    from segmently.segments import kinds as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    _loaded = True


def kinds() -> Mapping[str, ConditionKind]:
    """Every condition kind by name: by family (FAMILIES' order), then by module name,
    then in the order its module registers them (whatever order modules were imported)."""
    global _ordered
    _load()
    if _ordered is None:
        order = list(FAMILIES)
        ranked = sorted(enumerate(_REGISTERED.values()),
                        key=lambda item: (order.index(item[1].family),
                                          item[1].model.__module__, item[0]))
        _ordered = MappingProxyType({k.kind: k for _, k in ranked})
    return _ordered


def of(condition: BaseModel) -> ConditionKind:
    """The kind of a parsed condition (lower.py's lookup, replacing name mangling)."""
    kind = kinds().get(getattr(condition, "kind", ""))
    if kind is None or not isinstance(condition, kind.model):
        raise TypeError(f"not a registered condition: {type(condition).__name__}")
    return kind
