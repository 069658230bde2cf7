"""Sharding, sans-I/O: which IDENTIFY ``shard`` values are valid, and the recorded stream
of a shard the recording does not have as such (another ``num_shards``).

Discord docs, Events > Gateway > Sharding: ``shard_id = (guild_id >> 22) % num_shards``;
events without a ``guild_id`` go to shard 0 only; several sessions may hold the same
``[shard_id, num_shards]``, and sessions may use different ``num_shards``. Topics >
Opcodes and Status Codes: 4010 (Invalid shard), 4011 (Sharding required).
"""

from __future__ import annotations

from array import array
from typing import Any, Protocol

from replayer.archive.records import FrameRecord
from replayer.errors import CodecError
from replayer.gateway.close_codes import CloseCode
from replayer.gateway.encoding import decode_payload
from replayer.replay.script import ReplayScript, ShardScript

# The guild of these events is their ``d.id``, not ``d.guild_id``.
GUILD_EVENTS = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})


class _Frames(Protocol):
    def frame(self, offset: int, size: int = 0) -> FrameRecord: ...


def shard_of(guild_id: int, num_shards: int) -> int:
    """Events > Gateway > Sharding > Sharding Formula."""
    return (guild_id >> 22) % num_shards


def shard_refusal(shard: list[int] | None, *, require: bool, check: bool) -> tuple[int, str] | None:
    """IDENTIFY's ``shard`` refused: (close code, reason), or None.

    ``check``: a shard_id outside ``0 <= shard_id < num_shards`` gets 4010. ``require``
    (``--require-sharding``): an IDENTIFY that handles every guild (no ``shard``, or
    ``num_shards`` 1) gets 4011, as Discord does for a bot in too many guilds."""
    if check and shard is not None:
        shard_id, num_shards = shard
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            return CloseCode.INVALID_SHARD, f"invalid shard {shard}: shard_id >= num_shards"
    if require and (shard is None or shard[1] == 1):
        return CloseCode.SHARDING_REQUIRED, "sharding required (--require-sharding)"
    return None


def _snowflake(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def guild_of(event: str, d: Any) -> int | None:
    """The guild a dispatch belongs to; None: a guild-less event (DMs, entitlements...)."""
    if not isinstance(d, dict):
        return None
    return _snowflake(d.get("id") if event in GUILD_EVENTS else d.get("guild_id"))


def routed_script(
    script: ReplayScript, frames: _Frames, shard_id: int, num_shards: int
) -> ShardScript:
    """The stream of ``[shard_id, num_shards]`` made of every recorded shard's dispatches:
    those of its guilds, plus the guild-less ones on shard 0, in recorded time order.
    READY is the first recorded shard's, with the guilds of every READY that route here.

    Left out: recorded incidents (op 7, op 9, closes: they belonged to other
    connections) and dispatches recorded in another encoding than the first shard's."""
    recorded = [script.shards[k] for k in sorted(script.shards)]
    base = recorded[0]
    items: list[tuple[int, int, int, int, str, tuple[int, int] | None]] = []
    guilds: list[Any] = []
    for order, shard in enumerate(recorded):
        if shard.encoding is not base.encoding:
            continue
        for index in range(len(shard)):
            record = frames.frame(shard.offsets[index], shard.size(index))
            try:
                obj = decode_payload(record.payload, shard.encoding)
            except CodecError:
                continue
            d = obj.get("d") if isinstance(obj, dict) else None
            if index == 0:  # READY: its unavailable guilds
                for guild in d.get("guilds", []) if isinstance(d, dict) else []:
                    gid = _snowflake(guild.get("id")) if isinstance(guild, dict) else None
                    if gid is not None and shard_of(gid, num_shards) == shard_id:
                        guilds.append(guild)
                continue
            event = shard.events[index]
            gid = guild_of(event, d)
            target = 0 if gid is None else shard_of(gid, num_shards)
            if target == shard_id:
                answer = shard.answers.get(index)
                offset, size = shard.offsets[index], shard.size(index)
                items.append((shard.t_ns[index], order, offset, size, event, answer))
    items.sort(key=lambda item: (item[0], item[1]))
    out = ShardScript(shard_id, num_shards, base.encoding, base.heartbeat_interval_ms)
    out.intents = base.intents
    out.ready_guilds = guilds
    out.offsets = array("q", [base.offsets[0]])
    out.sizes = array("I", [base.size(0)])
    out.t_ns = array("q", [base.t_ns[0]])
    out.events = [base.events[0]]
    for t_ns, _, offset, size, event, answer in items:
        if answer is not None:
            out.answers[len(out.offsets)] = answer
        out.offsets.append(offset)
        out.sizes.append(size)
        out.t_ns.append(max(t_ns, base.t_ns[0]))
        out.events.append(event)
    return out


class ShardRouter:
    """Which stream each IDENTIFY's shard gets, the re-routed ones built once a run."""

    def __init__(self, script: ReplayScript, reroute: bool) -> None:
        self.script = script
        self.reroute = reroute
        self._routed: dict[tuple[int, int], ShardScript] = {}

    def stream(self, shard: list[int] | None, frames: _Frames) -> ShardScript | None:
        """The stream for IDENTIFY's ``shard`` (None: unsharded, as ``[0, 1]``); None
        when there is none to serve (re-routing off and the shard not recorded)."""
        shard_id, num_shards = shard if shard is not None else (0, 1)
        recorded = self.script.shards.get(shard_id)
        if not self.reroute:
            return recorded
        if recorded is not None and num_shards == self.script.num_shards:
            return recorded
        key = (shard_id, num_shards)
        routed = self._routed.get(key)
        if routed is None:
            routed = self._routed[key] = routed_script(self.script, frames, shard_id, num_shards)
        return routed
