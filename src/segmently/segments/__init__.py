"""Segments: the rule language, its lowering to per-user aggregates, evaluation, explain."""

from segmently.segments.errors import RuleError, SegmentReferenceError, UnknownUserError
from segmently.segments.evaluate import Evaluation, evaluate, members
from segmently.segments.explain import Explanation, explain
from segmently.segments.rules import Rule, parse_rule, rule_json

__all__ = ["Evaluation", "Explanation", "Rule", "RuleError", "SegmentReferenceError",
           "UnknownUserError", "evaluate", "explain", "members", "parse_rule", "rule_json"]
