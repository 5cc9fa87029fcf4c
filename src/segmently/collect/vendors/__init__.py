"""Exports of other analytics tools, each mapped field by field to Segmently's messages.

`segmently import --from mixpanel|amplitude|posthog|segment FILE`: one module per vendor,
each a `jsonrows.RowFormat` (rows of JSON lines, CSV or Parquet, whatever the container),
documented in its docstring and in docs/import.md. `VENDORS` names them; `row_format`
makes a fresh one per file and pass (some keep per-file state), with the settings that
name each vendor's account key.
"""

from __future__ import annotations

from collections.abc import Callable

from segmently.collect.jsonrows import RowFormat
from segmently.collect.vendors import amplitude, mixpanel, posthog, segment
from segmently.settings import Settings

VENDORS: dict[str, Callable[[Settings], RowFormat]] = {
    "mixpanel": lambda s: mixpanel.MixpanelRows(s.mixpanel_account_property),
    "amplitude": lambda s: amplitude.AmplitudeRows(s.amplitude_account_group),
    "posthog": lambda s: posthog.PostHogRows(s.posthog_account_group),
    "segment": lambda s: segment.SegmentRows(),
}


def row_format(vendor: str, settings: Settings) -> RowFormat:
    return VENDORS[vendor](settings)
