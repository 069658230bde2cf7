"""What ``replayer synth`` generates (:class:`SynthOptions`) and the size parser of ``--size``."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_BOT_ID = 123456789012345678  # the id hikari decodes from the token's first segment


@dataclass(frozen=True)
class SynthOptions:
    """What to generate. ``members_per_guild`` does not count the bot (it is in every guild
    too); ``roles_per_guild`` counts @everyone and the bot's managed role;
    ``channels_per_guild`` counts a category and a voice channel (from 3 channels on).
    With ``target_bytes``, events go on (in the proportions of ``messages``,
    ``presence_updates`` and ``typing``) until the frames' payloads reach that many bytes.
    ``voice``: the bot joins the voice channel of the first guild that has one (so it needs a
    guild and 3 channels per guild) and holds a voice connection to the end."""

    guilds: int = 3
    channels_per_guild: int = 5
    roles_per_guild: int = 4
    members_per_guild: int = 20
    messages: int = 30
    presence_updates: int = 10
    typing: int = 5
    shards: int = 1
    member_chunk_requests: int = 1
    encoding: str = "json"
    compress: str | None = None
    seed: int = 0
    bot_id: int = DEFAULT_BOT_ID
    heartbeat_interval_ms: int = 41_250
    message_interval_ms: int = 200
    target_bytes: int | None = None
    end_with_close: bool = True
    voice: bool = False

    def __post_init__(self) -> None:
        minimums = {
            "guilds": 0,
            "channels_per_guild": 1,
            "roles_per_guild": 1,
            "members_per_guild": 0,
            "messages": 0,
            "presence_updates": 0,
            "typing": 0,
            "shards": 1,
            "member_chunk_requests": 0,
            "heartbeat_interval_ms": 1,
            "message_interval_ms": 0,
        }
        for name, least in minimums.items():
            value = getattr(self, name)
            if type(value) is not int or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.encoding not in ("json", "etf"):
            raise ValueError(f"encoding must be 'json' or 'etf', got {self.encoding!r}")
        if self.compress not in (None, "zlib-stream", "zstd-stream"):
            raise ValueError(
                f"compress must be None, 'zlib-stream' or 'zstd-stream', got {self.compress!r}"
            )
        if not 0 < self.bot_id < 1 << 63:
            raise ValueError(f"bot_id must be a snowflake (1 .. 2**63-1), got {self.bot_id!r}")
        if self.voice is not True and self.voice is not False:
            raise ValueError(f"voice must be True or False, got {self.voice!r}")
        if self.voice and (self.guilds < 1 or self.channels_per_guild < 3):
            raise ValueError(
                "voice needs a guild with a voice channel: guilds >= 1 and "
                f"channels_per_guild >= 3, got {self.guilds} and {self.channels_per_guild}"
            )
        if self.target_bytes is not None:
            if type(self.target_bytes) is not int or self.target_bytes < 0:
                raise ValueError(f"target_bytes must be >= 0, got {self.target_bytes!r}")
            if self.target_bytes > 0 and self.guilds == 0:
                raise ValueError("target_bytes needs at least one guild to send events in")


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``500``, ``64KB``, ``200MB``, ``1.5GB``, ``1GiB`` -> bytes. Units are binary: 1 KB is
    1024 bytes (as ``replayer inspect --stats`` shows sizes); ``KiB`` is accepted too."""
    m = _SIZE.fullmatch(text)
    if not m or (m.group(3)[:1].lower() == "i" and not m.group(2)):
        raise ValueError(f"{text!r} is not a size like 200MB, 1GB or 1048576")
    scale = 1 << (10 * " kmgt".index(m.group(2).lower() or " "))
    return int(float(m.group(1)) * scale)
