"""Synthetic B2B SaaS product data: accounts, personas, journeys, features, NPS, billing.

`run_demo(store, DemoOptions(...))` fills a project; the vocabulary it uses is in
`segmently.demo.vocabulary` and docs/events.md.
"""

from segmently.demo.generate import (
    DemoError,
    DemoOptions,
    DemoReport,
    Summary,
    default_end,
    generate,
    run_demo,
)

__all__ = ["DemoError", "DemoOptions", "DemoReport", "Summary", "default_end", "generate",
           "run_demo"]
