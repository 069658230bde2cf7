"""The main gateway's part in voice (Topics > Voice Connections > Retrieving Voice Server
Information): op 4 answered with VOICE_STATE_UPDATE (GUILD_VOICE_STATES intent) and
VOICE_SERVER_UPDATE (no intent); recorded VOICE_SERVER_UPDATEs pointed at the voice face."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replayer.replay.intents import GUILD_VOICE_STATES
from tests.archives import INTENTS, session_lines
from tests.unit.replay.conftest import Harness
from tests.unit.replay.test_engine import drain, identify, msg, sent
from tests.unit.replay.voice.scripted import ENDPOINTS, GUILD, voice_replay

MS = 1_000_000
JOIN = {"guild_id": GUILD, "channel_id": "77", "self_mute": False, "self_deaf": True}


def streaming(harness: Harness, intents: int) -> Any:
    conn = harness.connect()
    conn.start(0)
    identify(conn, 0, intents=intents)
    drain(conn, 10_000 * MS)
    return conn


def test_op_4_gets_both_voice_updates(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.replay.voice = voice_replay()
    conn = streaming(h, INTENTS | GUILD_VOICE_STATES)
    seq = conn.session.seq
    state, server = sent(conn.receive(msg(4, JOIN), 20_000 * MS))
    assert (state["t"], state["s"], server["t"], server["s"]) == (
        "VOICE_STATE_UPDATE", seq + 1, "VOICE_SERVER_UPDATE", seq + 2,
    )  # fmt: skip
    assert state["d"]["user_id"] == "9"  # the bot's id, from READY
    assert state["d"]["channel_id"] == "77"
    assert state["d"]["self_deaf"] is True
    assert server["d"]["endpoint"] == ENDPOINTS[0]
    assert server["d"]["token"] == h.replay.voice.grants[GUILD].token
    (leave,) = sent(conn.receive(msg(4, {**JOIN, "channel_id": None}), 21_000 * MS))
    assert (leave["t"], leave["d"]["channel_id"]) == ("VOICE_STATE_UPDATE", None)


def test_voice_state_update_needs_its_intent(harness: Callable[..., Harness]) -> None:
    h = harness()
    h.replay.voice = voice_replay()
    conn = streaming(h, INTENTS)  # no GUILD_VOICE_STATES
    (server,) = sent(conn.receive(msg(4, JOIN), 20_000 * MS))
    assert server["t"] == "VOICE_SERVER_UPDATE"  # not intent-gated


def test_without_a_voice_face_op_4_is_a_notice(harness: Callable[..., Harness]) -> None:
    h = harness()
    conn = streaming(h, INTENTS | GUILD_VOICE_STATES)
    assert conn.receive(msg(4, JOIN), 20_000 * MS) == []
    assert any("--voice" in n for n in h.replay.notices)


def recorded_server_update() -> list[dict[str, Any]]:
    d = {"token": "[redacted]", "guild_id": GUILD, "endpoint": "sweetwater-1.discord.media:443"}
    extra = {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 5_000,
             "payload": {"op": 0, "s": 7, "t": "VOICE_SERVER_UPDATE", "d": d}}  # fmt: skip
    return session_lines(extra=[extra])


def test_a_recorded_voice_server_update_never_points_at_discord(
    harness: Callable[..., Harness],
) -> None:
    for face in (True, False):
        h = harness(recorded_server_update())
        if face:
            h.replay.voice = voice_replay()
        conn = h.connect()
        conn.start(0)
        out = sent(identify(conn, 0) + drain(conn, 10_000 * MS))
        (update,) = [m for m in out if m["t"] == "VOICE_SERVER_UPDATE"]
        if face:
            assert update["d"]["endpoint"] == ENDPOINTS[0]
            assert update["d"]["token"] == h.replay.voice.grants[GUILD].token
        else:
            assert update["d"]["endpoint"] is None  # "being reallocated": nowhere to go
        assert "discord.media" not in str(out)
