"""Segments: the rule language, its compiler (lowering to per-user aggregates, evaluation,
explain) and the stored state (definitions, apply, snapshots, refreshes). The layers are
modules of one package, not subpackages: each condition kind is one file of `kinds/`
holding its model, lowering, sentence and form, which a split by layer would cut in two.
Called by `core.Project`, `runtime/`, `insights/` and the read routes of `web/ui_api.py`."""

from segmently.segments.errors import RuleError, SegmentReferenceError, UnknownUserError
from segmently.segments.evaluate import Evaluation, evaluate, members
from segmently.segments.explain import Explanation, explain
from segmently.segments.rules import Rule, parse_rule, rule_json

__all__ = ["Evaluation", "Explanation", "Rule", "RuleError", "SegmentReferenceError",
           "UnknownUserError", "evaluate", "explain", "members", "parse_rule", "rule_json"]
