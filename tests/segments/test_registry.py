"""The condition registry is the one list of kinds: the Rule union, the JSON Schema, the
builder's forms and the docs/rules.md tables all hold exactly the registered kinds, and
every kind's example validates, round-trips and lowers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from segmently.profile.config import Vocabulary
from segmently.segments import parse_rule, registry, rule_json, rules_doc
from segmently.segments.aggregates import Aggregates
from segmently.segments.forms import condition_forms
from segmently.segments.lower import Lowerer
from segmently.segments.rules import CONDITION_KINDS, check_size
from segmently.segments.workspace import json_schema

AS_OF = datetime(2026, 3, 31)
DOCS = Path(__file__).parents[2] / "docs" / "rules.md"
KINDS = registry.kinds()
# names the registered examples refer to (docs/rules.md's and the poison test's)
VOCABULARY = Vocabulary.model_validate({
    "features": [{"name": "buying", "events": [{"event": "purchase"}]}],
    "milestones": [{"name": "bought", "events": [{"event": "purchase"}]},
                   {"name": "answered", "events": [{"event": "answered"}]}]})


def test_the_rule_union_is_the_registry() -> None:
    assert CONDITION_KINDS == tuple(KINDS)
    assert len(set(k.model for k in KINDS.values())) == len(KINDS)
    with pytest.raises(Exception, match="kind one of " + ", ".join(CONDITION_KINDS)):
        parse_rule({"kind": "nope"})


@pytest.mark.parametrize("kind", CONDITION_KINDS)
def test_every_example_validates_round_trips_and_lowers(kind: str) -> None:
    entry = KINDS[kind]
    rule = parse_rule(dict(entry.example))
    assert isinstance(rule, entry.model) and registry.of(rule) is entry
    assert parse_rule(rule_json(rule)) == rule
    lowerer = Lowerer(Aggregates(AS_OF, vocabulary=VOCABULARY),
                      {"power_users": parse_rule({"all": []})})
    node = lowerer.lower(rule)
    assert node.kind == kind and node.label


def test_the_json_schema_has_every_kind_with_its_fields() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    for kind, entry in KINDS.items():
        props = defs[entry.model.__name__]["properties"]
        assert props["kind"]["const"] == kind
        assert set(props) == {f.alias or n for n, f in entry.model.model_fields.items()}
    rule_refs = {ref["$ref"].rsplit("/", 1)[1] for ref in
                 defs["SegmentDefinition"]["properties"]["rule"]["oneOf"]}
    assert rule_refs == {e.model.__name__ for e in KINDS.values()} | {"All", "Any_", "Not"}


def test_the_builder_has_a_form_per_kind() -> None:
    forms = condition_forms()
    assert [f["kind"] for f in forms] == list(CONDITION_KINDS)
    for form in forms:
        model = KINDS[form["kind"]].model
        names = [f.alias or n for n, f in model.model_fields.items() if n != "kind"]
        assert [f["name"] for f in form["fields"]] == names
        assert form["help"] == KINDS[form["kind"]].help


def test_docs_tables_are_the_registry() -> None:
    """Fails when docs/rules.md's kinds tables drift from the registry: rewrite them with
    `python -m segmently.segments.rules_doc docs/rules.md`."""
    text = DOCS.read_text()
    assert rules_doc.with_tables(text) == text
    for kind in CONDITION_KINDS:
        assert f"| `{kind}` |" in text


def test_nesting_kinds_count_as_groups_for_the_depth_limit() -> None:
    nested: dict = {"kind": "on_trial"}
    for _ in range(33):
        nested = {"kind": "account", "rule": nested}
    with pytest.raises(Exception, match="nested more than 32 deep"):
        check_size(nested)
    check_size({"kind": ["unhashable"], "all": []})  # a bad kind is pydantic's to refuse


class _Nameless(BaseModel):
    kind: str


def test_register_refuses_what_it_cannot_list() -> None:
    entry = KINDS["performed"]
    with pytest.raises(TypeError, match="kind: Literal"):
        registry.register(_Nameless, entry.lower, family="events", fields="", true_when="",
                          example={"kind": "x"})
    with pytest.raises(ValueError, match="unknown family"):
        registry.register(entry.model, entry.lower, family="other",  # type: ignore[arg-type]
                          fields="", true_when="", example={"kind": "performed"})
    model = KINDS["not_performed"].model
    twin = type(model)("NotPerformedTwin", (model,), {"__module__": __name__})
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(twin, entry.lower, family="events", fields="", true_when="",
                          example={"kind": "not_performed"})
