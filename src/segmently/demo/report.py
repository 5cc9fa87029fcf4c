"""A demo run's summary as rows for tables (the CLI prints them; --json dumps them)."""

from __future__ import annotations

from typing import Any

from segmently.demo import planted
from segmently.demo import vocabulary as v
from segmently.demo.generate import DemoReport
from segmently.segments.examples import SegmentExample


def summary_tables(report: DemoReport) -> list[tuple[str, list[dict[str, Any]]]]:
    s = report.summary
    decided = s.trials_converted + s.trials_expired
    rate = f"{s.trials_converted / decided:.0%}" if decided else "-"
    overview = [
        {"what": "project", "value": f"{report.project} ({report.project_id})"},
        {"what": "write key", "value": report.write_key},
        {"what": "secret key", "value": report.secret_key
         or "(shown when the project was created; only its hash is stored)"},
        {"what": "window", "value": f"{report.start:%Y-%m-%d} .. {report.end:%Y-%m-%d} (UTC)"},
        {"what": "users", "value": f"{s.users:,}"},
        {"what": "accounts", "value": f"{s.accounts:,}"},
        {"what": "events", "value": f"{s.events:,}"},
        {"what": "trait assignments", "value": f"{s.traits:,}"},
        {"what": "trials converted", "value": f"{s.trials_converted:,} of {decided:,} decided"
                                              f" ({rate})"},
        {"what": "failed payments", "value": f"{s.payments_failed:,}"},
        {"what": "NPS", "value": ", ".join(f"{s.nps[c]:,} {c}"
                                           for c in ("promoters", "passives", "detractors"))},
        {"what": f"campaign {planted.CAMPAIGN}", "value": f"{s.assigned:,} assigned,"
                                                       f" {s.held_out:,} held out"},
        {"what": "seconds", "value": f"{report.seconds:.1f}"
                                     f" ({s.events / max(report.seconds, 1e-9):,.0f} events/s)"},
    ]
    personas = [{"persona": p, "users": s.personas[p]} for p in v.PERSONAS]
    plans = [{"plan": p, "accounts": s.plans[p]} for p in v.PLANS]
    events = [{"event": name, "count": n} for name, n in s.events_by_name.most_common()]
    return [("demo", overview), ("personas", personas), ("plans (accounts, at the end)", plans),
            ("events", events)]


def segment_rows(examples: list[SegmentExample]) -> list[dict[str, Any]]:
    """One row per segment: its size and an example member."""
    return [{"segment": e.segment, "users": e.size, "example": e.member or "-"}
            for e in examples]


def why_text(example: SegmentExample) -> str:
    """Why the example member is in, as the indented yes/no tree of explain."""
    if example.why is None:
        return f"{example.segment}: no members"
    return f"{example.segment}: why {example.member} is in\n{example.why.text(1)}"
