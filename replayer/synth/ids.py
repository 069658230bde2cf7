"""Ids and clocks of a synthetic session: snowflakes (Reference > Snowflakes), Discord's
ISO 8601 timestamps, the fixed wall clock the session starts at, and random hex."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
SESSION_START_MS = 1_748_779_200_000
MS_NS = 1_000_000


# encode_payload's JSON (compact, UTF-8 kept), from one encoder made once: json.dumps
# with options makes a new encoder per call, which cost synth more than the encoding.
# The same text (tests/unit/synth/test_synth_json.py compares it with encode_payload's).
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
#: ``obj`` as compact JSON text; its UTF-8 is what ``encode_payload`` makes of ``obj``.
encode_json = _encoder.encode


def snowflake(ms: int, worker: int, process: int, increment: int) -> int:
    """A snowflake for Unix time ``ms`` (Reference > Snowflakes)."""
    return ((ms - DISCORD_EPOCH_MS) << 22) | (worker << 17) | (process << 12) | (increment & 0xFFF)


def iso_time(ms: int) -> str:
    """ISO 8601 as Discord writes it: ``2025-06-01T12:00:00.123000+00:00``."""
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}000+00:00"


@lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    day, s = divmod(second, 86_400)  # Unix time has no leap seconds: days of 86,400 s
    return f"{_iso_day(day)}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


@lru_cache(maxsize=64)
def _iso_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def random_hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


def below(getrandbits: Callable[[int], int], n: int) -> int:
    """``rng.randrange(n)`` (and ``rng.choice``'s index into ``n`` items) for ``n > 0``,
    from ``rng.getrandbits``: the same draws as CPython's ``Random._randbelow``, one call
    instead of two or three (the hot loops draw several per event). Checked against
    ``random.Random`` in tests/unit/synth/test_synth_fast.py."""
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


def past_ms(rng: random.Random, earliest_ms: int, latest_ms: int) -> int:
    """A moment in ``[earliest_ms, latest_ms)`` (just ``earliest_ms`` if the range is empty)."""
    return rng.randrange(earliest_ms, max(latest_ms, earliest_ms + 1))


def session_ms(t_ns: int) -> int:
    """The wall clock (Unix ms) at ``t_ns`` into the session."""
    return SESSION_START_MS + t_ns // MS_NS


class Mint:
    """Snowflakes of one worker and process, with an increment that wraps at 4096."""

    def __init__(self, rng: random.Random) -> None:
        self.worker = rng.randrange(32)
        self.process = rng.randrange(32)
        self._increment = 0

    def flake(self, ms: int) -> int:
        self._increment = (self._increment + 1) & 0xFFF
        return snowflake(ms, self.worker, self.process, self._increment)
