"""An unsaved rule, as the segment builder edits it: is it valid, how does it read as
YAML, and how many users would it hold right now.

The builder calls this on every change (debounced), so the size is a count in the engine
(`Evaluation.sizes`), never a member list. References to saved segments resolve against
the project's live definitions, exactly as they would after saving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml

from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments.errors import RuleError
from segmently.segments.evaluate import evaluate
from segmently.segments.rules import parse_rule
from segmently.store import Store

DRAFT = "(draft)"  # not a valid segment name, so it never shadows a saved one


def rule_yaml(rule: Any) -> str:
    """The rule as the workspace file would hold it (block style, keys in order)."""
    return yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, default_flow_style=False)


def preview(store: Store, project_id: str, rule: Any, vocab: Vocabulary,
            as_of: datetime) -> dict[str, Any]:
    """{valid, error, yaml, size, as_of}: the YAML of the rule as written (also when it is
    invalid: the error says why, naming the field), and its size when valid."""
    out: dict[str, Any] = {"valid": False, "error": None, "yaml": rule_yaml(rule),
                           "size": None, "as_of": as_of.isoformat()}
    try:
        parsed = parse_rule(rule)
        live = {n: d.rule for n, d in defs.current(store, project_id).items()}
        ev = evaluate(store, project_id, {**live, DRAFT: parsed}, as_of, only=[DRAFT],
                      vocabulary=vocab)
        out["size"] = ev.sizes()[DRAFT]
    except RuleError as exc:
        out["error"] = str(exc)
        return out
    out["valid"] = True
    return out
