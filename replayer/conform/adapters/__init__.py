"""Shipped conformance clients: a minimal real bot of one library each, run per case as
``python -m replayer.conform.adapters.<name>`` with the case's REPLAYER_* environment
(docs/conformance.md). Each runs until it is stopped (SIGTERM) or its library gives up."""
