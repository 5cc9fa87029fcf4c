"""Exports of other analytics tools, each mapped field by field to Segmently's messages.

`segmently import --from mixpanel|amplitude|posthog|segment FILE`: one module per vendor,
each a `jsonrows.RowFormat` (rows of JSON lines, CSV or Parquet, whatever the container),
documented in its docstring and in docs/import.md. `VENDORS` names them; `row_format`
makes a fresh one per file and pass (some keep per-file state).
"""

from __future__ import annotations

from collections.abc import Callable

from segmently.collect.jsonrows import RowFormat
from segmently.collect.vendors import amplitude, mixpanel, posthog, segment

VENDORS: dict[str, Callable[[], RowFormat]] = {
    "mixpanel": mixpanel.MixpanelRows,
    "amplitude": amplitude.AmplitudeRows,
    "posthog": posthog.PostHogRows,
    "segment": segment.SegmentRows,
}


def row_format(vendor: str) -> RowFormat:
    return VENDORS[vendor]()
