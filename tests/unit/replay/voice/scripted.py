"""A scripted voice client for the pure voice engine: right or wrong on purpose."""

from __future__ import annotations

import json
from typing import Any

from replayer.replay.engine import Abort, Close
from replayer.replay.voice.engine import VoiceCommand, VoiceConnection, VoiceReplay, VoiceSend
from replayer.replay.voice.faults import VoicePlan, parse_voice_fault
from replayer.voice.ip_discovery import REQUEST, build_discovery
from replayer.voice.opcodes import VoiceOp

GUILD = "41771983423143937"
CHANNEL = "127121515262115840"
USER = "104694319306248192"
ENDPOINTS = ("127.0.0.1:4001", "127.0.0.1:4002")
UDP = ("127.0.0.1", 5001)
MS = 1_000_000


def voice_replay(*faults: str, window_ms: int = 1_000) -> VoiceReplay:
    plan = VoicePlan(tuple(parse_voice_fault(f) for f in faults))
    return VoiceReplay(ENDPOINTS, UDP, plan, window_ms=window_ms)


def join(replay: VoiceReplay, channel: str = CHANNEL) -> dict[str, dict[str, Any]]:
    """The client's op 4: the two dispatches the main gateway answers with, by name."""
    answers = replay.state_update({"guild_id": GUILD, "channel_id": channel}, USER, "main-1")
    return dict(answers)


def rtp(ssrc: int, seq: int = 0) -> bytes:
    return bytes([0x80, 0x78]) + seq.to_bytes(2, "big") + bytes(4) + ssrc.to_bytes(4, "big") + b"x"


class Scripted:
    """One voice connection, driven by hand; ``sent`` collects the server's messages."""

    def __init__(self, replay: VoiceReplay, now_ms: int = 0, port: int = 4001) -> None:
        self.replay = replay
        self.conn = VoiceConnection(replay, version=8, port=port)
        self.messages: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.aborted = False
        self.take(self.conn.start(now_ms * MS))

    def take(self, commands: list[VoiceCommand]) -> list[dict[str, Any]]:
        got = []
        for c in commands:
            if isinstance(c, VoiceSend):
                assert isinstance(c.data, str)
                got.append(json.loads(c.data))
            elif isinstance(c, Close):
                self.closed = c.code
            elif isinstance(c, Abort):
                self.aborted = True
        self.messages += got
        return got

    def send(self, op: int, d: Any, now_ms: int = 0) -> list[dict[str, Any]]:
        return self.take(self.conn.receive(json.dumps({"op": op, "d": d}), now_ms * MS))

    @property
    def last_seq(self) -> int:
        return max((m["seq"] for m in self.messages if "seq" in m), default=-1)

    def identify(self, grant: dict[str, dict[str, Any]], now_ms: int = 0) -> dict[str, Any]:
        server, state = grant["VOICE_SERVER_UPDATE"], grant["VOICE_STATE_UPDATE"]
        d = {"server_id": server["guild_id"], "user_id": state["user_id"],
             "session_id": state["session_id"], "token": server["token"],
             "max_dave_protocol_version": 0}  # fmt: skip
        (ready,) = self.send(VoiceOp.IDENTIFY, d, now_ms)
        return ready

    def select(
        self, mode: str = "aead_xchacha20_poly1305_rtpsize", now_ms: int = 0
    ) -> list[dict[str, Any]]:
        data = {"address": "127.0.0.1", "port": 6000, "mode": mode}
        return self.send(VoiceOp.SELECT_PROTOCOL, {"protocol": "udp", "data": data}, now_ms)

    def resume(
        self, grant: dict[str, dict[str, Any]], seq_ack: int | None, now_ms: int = 0
    ) -> list[dict[str, Any]]:
        server, state = grant["VOICE_SERVER_UPDATE"], grant["VOICE_STATE_UPDATE"]
        d: dict[str, Any] = {"server_id": server["guild_id"], "session_id": state["session_id"],
                             "token": server["token"]}  # fmt: skip
        if seq_ack is not None:
            d["seq_ack"] = seq_ack
        return self.send(VoiceOp.RESUME, d, now_ms)

    def connected(self, grant: dict[str, dict[str, Any]], now_ms: int = 0) -> int:
        """IDENTIFY, IP discovery, SELECT_PROTOCOL: the ssrc."""
        ready = self.identify(grant, now_ms)
        ssrc: int = ready["d"]["ssrc"]
        assert self.replay.datagram(
            build_discovery(REQUEST, ssrc), ("127.0.0.1", 6000), now_ms * MS
        )
        self.select(now_ms=now_ms)
        self.send(VoiceOp.SPEAKING, {"speaking": 1, "delay": 0, "ssrc": ssrc}, now_ms)
        return ssrc
