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


MAX_PARTS = 50  # per-condition counts beyond these are not given (rules may hold 500)


def parts(rule: Any, path: str = "rule") -> list[tuple[str, Any]]:
    """(path, sub-rule) of every condition and group below the root, in the builder's
    path notation (`rule.all[0]`, `rule.any[1].not`): what each count is shown beside."""
    out: list[tuple[str, Any]] = []
    if not isinstance(rule, dict):
        return out
    for key in ("all", "any"):
        children = rule.get(key)
        for i, child in enumerate(children if isinstance(children, list) else []):
            here = f"{path}.{key}[{i}]"
            out += [(here, child), *parts(child, here)]
    if isinstance(rule.get("not"), dict):
        out += [(f"{path}.not", rule["not"]), *parts(rule["not"], f"{path}.not")]
    return out


def preview(store: Store, project_id: str, rule: Any, vocab: Vocabulary,
            as_of: datetime) -> dict[str, Any]:
    """{valid, error, yaml, size, parts, as_of}: the YAML of the rule as written (also
    when it is invalid: the error says why, naming the field); when valid, its size and
    each condition's and group's alone (path -> users, as PostHog and Amplitude show
    beside each condition), all counted in the same evaluation pass: the conditions
    share the aggregates the whole rule reads."""
    out: dict[str, Any] = {"valid": False, "error": None, "yaml": rule_yaml(rule),
                           "size": None, "parts": {}, "as_of": as_of.isoformat()}
    try:
        parsed = parse_rule(rule)
        named = {f"{DRAFT}{path}": parse_rule(sub) for path, sub in parts(rule)[:MAX_PARTS]}
        live = {n: d.rule for n, d in defs.current(store, project_id).items()}
        ev = evaluate(store, project_id, {**live, DRAFT: parsed, **named}, as_of,
                      only=[DRAFT, *named], vocabulary=vocab)
        sizes = ev.sizes()
    except RuleError as exc:
        out["error"] = str(exc)
        return out
    out.update(valid=True, size=sizes[DRAFT],
               parts={n.removeprefix(DRAFT): sizes[n] for n in named})
    return out
