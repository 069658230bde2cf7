"""replayer: record, replay and break Discord gateway sessions."""

from __future__ import annotations

__version__ = "0.1.0"
