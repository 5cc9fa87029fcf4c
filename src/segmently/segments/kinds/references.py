"""Condition kinds that refer to another segment: in_segment and not_in_segment.

They lower to the referenced segment's own node (`Lowerer.segment`: once per name at an
evaluation, unknown names and cycles are errors), so a reference costs no aggregate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from segmently.segments.conditions import Condition
from segmently.segments.nodes import Node
from segmently.segments.registry import register

if TYPE_CHECKING:
    from segmently.segments.lower import Lowerer


class InSegment(Condition):
    kind: Literal["in_segment"]
    segment: str = Field(min_length=1, max_length=128)


class NotInSegment(Condition):
    kind: Literal["not_in_segment"]
    segment: str = Field(min_length=1, max_length=128)


def lower_in_segment(lw: Lowerer, rule: InSegment) -> Node:
    kid = lw.segment(rule.segment)
    return Node("in_segment", f"in segment {rule.segment}", kid.truth, children=[kid])


def lower_not_in_segment(lw: Lowerer, rule: NotInSegment) -> Node:
    kid = lw.segment(rule.segment)
    return Node("not_in_segment", f"not in segment {rule.segment}",
                lambda t: ~kid.truth(t), children=[kid])


PICK = {"segment": {"widget": "segment"}}
register(InSegment, lower_in_segment, family="references", fields="`segment`",
         true_when="the user is in the other segment at the same as_of; unknown names and "
                   "cycles are errors (`segment reference cycle: a -> b -> a`)",
         example={"kind": "in_segment", "segment": "power_users"}, widgets=PICK)
register(NotInSegment, lower_not_in_segment, family="references", fields="`segment`",
         true_when="the user is not in the other segment at the same as_of",
         example={"kind": "not_in_segment", "segment": "power_users"}, widgets=PICK)
