"""Shipped conformance clients: a minimal real bot of one library each, run per case as
``python -m replayer.conform.adapters.<name>`` with the case's REPLAYER_* environment
(docs/conformance.md). Each runs until it is stopped (SIGTERM) or its library gives up."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable


def run_adapter(library: str, version: str, run: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """An adapter's ``main``: log to stderr, say what runs, and run ``run(stop)`` until it
    returns; ``stop`` is set on SIGTERM or SIGINT (how the runner ends a case)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    print(f"{library} {version}, case {os.environ.get('REPLAYER_CASE', '-')}", flush=True)

    async def until_stopped() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run(stop)

    return asyncio.run(until_stopped())
