"""Segmently: open-source, self-hosted product usage segmentation."""

from __future__ import annotations

__version__ = "0.1.0"

from segmently.api import Segmently, connect  # noqa: E402

__all__ = ["Segmently", "__version__", "connect"]
