"""Replaying: what an archive offers to replay (``script``), the per-connection gateway
state machine (``engine``), faults, the injector, verdicts and REST answers, all pure;
and ``server``, the aiohttp shell that serves them. May import ``gateway`` and
``archive``; never ``record`` or ``cli``. Only ``server`` touches asyncio or aiohttp."""
