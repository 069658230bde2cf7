"""The session generator: a realistic, deterministic archive without a Discord at hand."""

from __future__ import annotations

from replayer.synth.session import (
    DISCORD_EPOCH_MS,
    SESSION_START_MS,
    SYNTH_TOKEN,
    SynthOptions,
    iso_time,
    parse_size,
    synth_records,
    write_synth,
)

__all__ = [
    "DISCORD_EPOCH_MS",
    "SESSION_START_MS",
    "SYNTH_TOKEN",
    "SynthOptions",
    "iso_time",
    "parse_size",
    "synth_records",
    "write_synth",
]
