"""The voice part of a synthetic session (``replayer synth --voice``): the bot joins a guild's
voice channel and holds a voice connection until the session ends.

Main gateway (Topics > Voice Connections > Retrieving Voice Server Information): the client
sends op 4 VOICE_STATE_UPDATE; Discord answers VOICE_STATE_UPDATE (Resources > Voice > Voice State
Object, with the voice ``session_id``) and VOICE_SERVER_UPDATE (``token``, ``guild_id``,
``endpoint``; Events > Gateway Events > Voice Server Update). Voice gateway v8 (Voice Connections >
Establishing a Voice Websocket Connection, Heartbeating, Establishing a Voice UDP Connection): HELLO
(op 8), IDENTIFY (op 0), READY (op 2: ssrc, ip, port, modes), SELECT_PROTOCOL (op 1), SESSION
DESCRIPTION (op 4: mode, secret_key, dave_protocol_version), SPEAKING (op 5), heartbeats (op 3
``{t, seq_ack}``) and their ACKs (op 6 ``{t}``). Server messages after HELLO carry ``seq``.

Everything comes from its own ``random.Random``, so adding voice leaves every other draw of the
session as it was. Pure.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameRecord,
    FrameType,
    Query,
    Record,
)
from replayer.gateway.opcodes import Direction
from replayer.synth.ids import JSON, MS_NS, random_hex, session_ms
from replayer.voice.opcodes import VoiceOp

VOICE_HEARTBEAT_INTERVAL_MS = 13_750.0  # what Discord's voice HELLO says
MODES = ["aead_aes256_gcm_rtpsize", "aead_xchacha20_poly1305_rtpsize"]
MODE = "aead_xchacha20_poly1305_rtpsize"  # the mode every client must support
REGIONS = ["us-east", "rotterdam", "singapore", "brazil"]


def _text(obj: JSON) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class VoiceSession:
    """One voice connection of the bot: what it says, in order. Built by the session, which
    schedules :meth:`handshake` and :meth:`heartbeat` and sends the main-gateway part."""

    conn_id: int
    guild_id: str
    channel_id: str
    user_id: str
    rng: random.Random
    seq: int = 0
    session_id: str = ""
    token: str = ""
    endpoint: str = ""
    ssrc: int = 0
    open: bool = False

    def __post_init__(self) -> None:
        rng = self.rng
        self.session_id = random_hex(rng, 32)
        self.token = random_hex(rng, 16)
        region = rng.choice(REGIONS)
        self.endpoint = f"{region}{rng.randrange(1, 10000)}.discord.media:443"
        self.ssrc = rng.randrange(1, 1 << 31)

    # --- main gateway ----------------------------------------------------------------------

    def state_update_request(self) -> JSON:
        """Events > Gateway Events > Update Voice State (op 4 ``d``)."""
        return {
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "self_mute": False,
            "self_deaf": False,
        }

    def voice_state(self) -> JSON:
        """The VOICE_STATE_UPDATE dispatch's ``d`` (Resources > Voice > Voice State Object)."""
        return {
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_stream": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }

    def server_update(self) -> JSON:
        """The VOICE_SERVER_UPDATE dispatch's ``d``."""
        return {"token": self.token, "guild_id": self.guild_id, "endpoint": self.endpoint}

    # --- the voice connection ----------------------------------------------------------------

    def _frame(self, t_ns: int, direction: Direction, obj: JSON) -> FrameRecord:
        if direction is Direction.SERVER and obj["op"] != VoiceOp.HELLO:
            self.seq += 1
            obj = {**obj, "seq": self.seq}
        payload = _text(obj)
        seq = obj.get("seq")
        return FrameRecord(
            self.conn_id, t_ns, direction, FrameType.TEXT, payload, obj["op"], seq, None,
            len(payload),
        )  # fmt: skip

    def _ms(self, low: float, high: float) -> int:
        return round(self.rng.uniform(low, high) * MS_NS)

    def handshake(self, t_ns: int) -> tuple[list[Record], int]:
        """The connection's opening up to SPEAKING, from ``t_ns``; and when its first heartbeat
        is due."""
        self.open = True
        url = f"wss://{self.endpoint}/?v=8"
        records: list[Record] = [
            ConnectionRecord(
                self.conn_id, t_ns, url, Query(v=8),
                (("User-Agent", "Python/3.12 aiohttp/3.14.5"),), kind=ConnectionKind.VOICE,
            )
        ]  # fmt: skip

        def at(gap: tuple[float, float], direction: Direction, op: int, d: Any) -> None:
            nonlocal t_ns
            t_ns += self._ms(*gap)
            records.append(self._frame(t_ns, direction, {"op": int(op), "d": d}))

        server, client = Direction.SERVER, Direction.CLIENT
        at(
            (20, 60),
            server,
            VoiceOp.HELLO,
            {"v": 8, "heartbeat_interval": VOICE_HEARTBEAT_INTERVAL_MS},
        )
        hello_ns = t_ns
        identify = {
            "server_id": self.guild_id, "user_id": self.user_id, "session_id": self.session_id,
            "token": self.token, "max_dave_protocol_version": 0,
        }  # fmt: skip
        at((0.5, 3), client, VoiceOp.IDENTIFY, identify)
        octets = (self.rng.randrange(1, 224), *(self.rng.randrange(256) for _ in range(2)))
        ip = ".".join(map(str, (*octets, self.rng.randrange(1, 255))))
        port = self.rng.randrange(50000, 65536)
        ready = {"ssrc": self.ssrc, "ip": ip, "port": port, "modes": MODES, "experiments": []}
        at((20, 60), server, VoiceOp.READY, ready)
        # IP discovery over UDP happens here (not in the archive): the client's own address.
        own = {
            "address": f"203.0.113.{self.rng.randrange(1, 255)}",
            "port": self.rng.randrange(1024, 65536),
            "mode": MODE,
        }
        at((20, 80), client, VoiceOp.SELECT_PROTOCOL, {"protocol": "udp", "data": own})
        description = {
            "audio_codec": "opus", "video_codec": "H264",
            "media_session_id": random_hex(self.rng, 32),
            "mode": MODE, "secret_key": [self.rng.randrange(256) for _ in range(32)],
            "dave_protocol_version": 0,
        }  # fmt: skip
        at((20, 60), server, VoiceOp.SESSION_DESCRIPTION, description)
        at((1, 20), client, VoiceOp.SPEAKING, {"speaking": 1, "delay": 0, "ssrc": self.ssrc})
        first_beat = hello_ns + round(VOICE_HEARTBEAT_INTERVAL_MS * self.rng.random() * MS_NS)
        return records, max(first_beat, t_ns + 1)

    def heartbeat(self, t_ns: int) -> tuple[list[Record], int]:
        """One heartbeat ``{t, seq_ack}`` and its ACK; when the next is due."""
        nonce = session_ms(t_ns)
        beat = self._frame(
            t_ns,
            Direction.CLIENT,
            {"op": int(VoiceOp.HEARTBEAT), "d": {"t": nonce, "seq_ack": self.seq}},
        )
        ack_ns = t_ns + self._ms(20, 60)
        ack = self._frame(
            ack_ns, Direction.SERVER, {"op": int(VoiceOp.HEARTBEAT_ACK), "d": {"t": nonce}}
        )
        return [beat, ack], t_ns + round(VOICE_HEARTBEAT_INTERVAL_MS * MS_NS) + self._ms(0, 3)

    def close(self, t_ns: int) -> CloseRecord | None:
        """The client leaves (1000) when the session ends, if the connection is open."""
        if not self.open:
            return None
        self.open = False
        return CloseRecord(self.conn_id, t_ns, 1000, "", Closer.CLIENT, True)
