"""The session generator: a realistic, deterministic archive without a Discord at hand.
``options`` says what to make, ``ids`` mints snowflakes and timestamps, ``guilds`` builds
the world (guilds, members, presences), ``activity`` the event stream's payloads, and
``session`` assembles the connections and writes them. May import ``gateway`` and
``archive``; never ``record``, ``replay`` or ``cli``."""

from __future__ import annotations

from replayer.synth.ids import DISCORD_EPOCH_MS, SESSION_START_MS, iso_time
from replayer.synth.options import SynthOptions, parse_size
from replayer.synth.session import SYNTH_TOKEN, synth_records, write_synth

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
