"""NPS per user: the latest answer and its category (promoter 9-10, passive 7-8, detractor
0-6). Columns of the profile (`build.py`)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from segmently.profile.jsonvalues import int_at
from segmently.profile.vocabulary import NPS_EVENT, NPS_SCORE


def nps_category(score: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases((score >= 9, "promoter"), (score >= 7, "passive"), else_="detractor")


def nps(events: ir.Table) -> ir.Table:
    """person_id -> latest score, its category, when, and how many valid answers.

    Answers whose score is not an integer from 0 to 10 (a number or a numeric string) are ignored.
    """
    answers = events.filter(events.event == NPS_EVENT)
    answers = answers.mutate(score=int_at(answers.properties, NPS_SCORE))
    answers = answers.filter(answers.score.between(0, 10))
    latest_key = answers.timestamp.epoch_seconds()
    per_user = answers.group_by("person_id").aggregate(
        nps_score=answers.score.argmax(latest_key),
        nps_at=answers.timestamp.max(),
        nps_responses=answers.count(),
    )
    return per_user.mutate(nps_category=nps_category(per_user.nps_score))
