"""Small archives for tests, written from JSON Lines objects (the `replayer import` format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replayer.archive.jsonl import Importer
from replayer.archive.writer import ArchiveWriter

__all__ = ["GUILD", "INTENTS", "session_lines", "write_archive"]

GUILD = {"id": "1", "name": "g"}
# GUILDS | DIRECT_MESSAGES: what session_lines' dispatches need (its messages have no
# guild_id: DMs, whose content comes without MESSAGE_CONTENT). Gateway > List of Intents.
INTENTS = 1 | 1 << 12


def session_lines(
    shard: tuple[int, int] | None = None,
    conn: int = 1,
    t0_ms: int = 0,
    extra: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """IDENTIFY, READY, 2 GUILD_CREATEs, 3 MESSAGE_CREATEs 100 ms apart."""
    identify: dict[str, Any] = {"token": "t", "properties": {}, "intents": INTENTS}
    if shard is not None:
        identify["shard"] = list(shard)
    ready_d: dict[str, Any] = {
        "v": 10,
        "user": {"id": "9", "username": "bot"},
        "guilds": [],
        "session_id": f"sess{conn}",
        "resume_gateway_url": "wss://elsewhere",
    }
    if shard is not None:
        ready_d["shard"] = list(shard)
    lines = [
        {"kind": "connection", "conn": conn, "t_ms": t0_ms},
        {
            "kind": "frame",
            "conn": conn,
            "dir": "server",
            "t_ms": t0_ms + 1,
            "payload": {"op": 10, "d": {"heartbeat_interval": 1000}},
        },
        {
            "kind": "frame",
            "conn": conn,
            "dir": "client",
            "t_ms": t0_ms + 2,
            "payload": {"op": 2, "d": identify},
        },
        {
            "kind": "frame",
            "conn": conn,
            "dir": "server",
            "t_ms": t0_ms + 10,
            "payload": {"op": 0, "s": 1, "t": "READY", "d": ready_d},
        },
        {
            "kind": "frame",
            "conn": conn,
            "dir": "server",
            "t_ms": t0_ms + 20,
            "payload": {"op": 0, "s": 2, "t": "GUILD_CREATE", "d": GUILD},
        },
        {
            "kind": "frame",
            "conn": conn,
            "dir": "server",
            "t_ms": t0_ms + 30,
            "payload": {"op": 0, "s": 3, "t": "GUILD_CREATE", "d": {"id": "2"}},
        },
    ]
    for i in range(3):
        lines.append(
            {
                "kind": "frame",
                "conn": conn,
                "dir": "server",
                "t_ms": t0_ms + 130 + 100 * i,
                "payload": {"op": 0, "s": 4 + i, "t": "MESSAGE_CREATE", "d": {"content": f"m{i}"}},
            }
        )
    return lines + (extra or [])


def write_archive(path: Path, lines: list[dict[str, Any]], redact: bool = True) -> Path:
    importer = Importer()
    with ArchiveWriter(path, redact=redact) as writer:
        for obj in lines:
            writer.write(importer.record(obj))
    return path
