"""Segmently: open-source, self-hosted product usage segmentation.

`segmently.connect(url)` / `segmently.Segmently` (the Python API, `api.py`) are imported on
first use, so the command line does not pay for pandas and the query layers on every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from segmently.api import Segmently, connect

__all__ = ["Segmently", "__version__", "connect"]


def __getattr__(name: str) -> Any:
    if name in ("Segmently", "connect"):
        from segmently import api

        return getattr(api, name)
    raise AttributeError(f"module 'segmently' has no attribute {name!r}")
