"""The voice engine against scripted clients: the session as Topics > Voice Connections
describes it, and the close codes of Opcodes and Status Codes > Voice."""

from __future__ import annotations

import json

import pytest

from replayer.replay.voice.engine import FIRST_SSRC
from replayer.voice.ip_discovery import REQUEST, RESPONSE, build_discovery, parse_discovery
from replayer.voice.opcodes import VoiceOp
from tests.unit.replay.voice.scripted import (
    CHANNEL,
    ENDPOINTS,
    GUILD,
    MS,
    UDP,
    USER,
    Scripted,
    join,
    rtp,
    voice_replay,
)


def test_op_4_is_answered_with_both_voice_updates() -> None:
    replay = voice_replay()
    grant = join(replay)
    assert list(grant) == ["VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE"]
    state, server = grant["VOICE_STATE_UPDATE"], grant["VOICE_SERVER_UPDATE"]
    assert (state["guild_id"], state["channel_id"], state["user_id"]) == (GUILD, CHANNEL, USER)
    assert server["endpoint"] == ENDPOINTS[0]
    assert server["guild_id"] == GUILD
    assert len(server["token"]) == 16
    # the same channel again: the same voice server and token (the session stays valid)
    assert join(replay)["VOICE_SERVER_UPDATE"] == server
    # another channel: a new token ("you cannot re-use the previous session")
    assert join(replay, "1")["VOICE_SERVER_UPDATE"]["token"] != server["token"]
    leave = replay.state_update({"guild_id": GUILD, "channel_id": None}, USER, "main-1")
    assert [e for e, _ in leave] == ["VOICE_STATE_UPDATE"]
    assert leave[0][1]["channel_id"] is None
    assert GUILD not in replay.grants


def test_the_whole_session() -> None:
    replay = voice_replay()
    client = Scripted(replay)
    (hello,) = client.messages
    assert hello == {"op": VoiceOp.HELLO, "d": {"heartbeat_interval": 13_750}}
    ready = client.identify(join(replay))
    assert ready["op"] == VoiceOp.READY
    assert ready["seq"] == 1
    assert ready["d"]["ssrc"] == FIRST_SSRC
    assert (ready["d"]["ip"], ready["d"]["port"]) == UDP
    assert ready["d"]["modes"] == ["aead_aes256_gcm_rtpsize", "aead_xchacha20_poly1305_rtpsize"]
    answer = replay.datagram(build_discovery(REQUEST, FIRST_SSRC), ("127.0.0.1", 6543), 0)
    assert answer is not None
    found = parse_discovery(answer)
    assert found is not None
    assert (found.type, found.ssrc, found.address, found.port) == (
        RESPONSE,
        FIRST_SSRC,
        "127.0.0.1",
        6543,
    )
    (description,) = client.select("aead_aes256_gcm_rtpsize")
    assert description["op"] == VoiceOp.SESSION_DESCRIPTION
    assert description["seq"] == 2
    d = description["d"]
    assert d["mode"] == "aead_aes256_gcm_rtpsize"
    assert d["dave_protocol_version"] == 0
    assert len(d["secret_key"]) == 32
    assert all(0 <= b <= 255 for b in d["secret_key"])
    (ack,) = client.send(VoiceOp.HEARTBEAT, {"t": 99, "seq_ack": 2})
    assert ack == {"op": VoiceOp.HEARTBEAT_ACK, "d": {"t": 99}}  # no seq: not buffered
    assert client.send(VoiceOp.SPEAKING, {"speaking": 1, "delay": 0, "ssrc": FIRST_SSRC}) == []
    for i in range(3):
        assert replay.datagram(rtp(FIRST_SSRC, i), ("127.0.0.1", 6543), 0) is None
    assert replay.rtp_packets[FIRST_SSRC] == 3
    assert client.closed is None


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (lambda c, g: c.send(VoiceOp.SELECT_PROTOCOL, {}), 4003),  # before IDENTIFY
        (lambda c, g: c.send(99, {}), 4001),
        (lambda c, g: c.take(c.conn.receive("{not json", 0)), 4002),
        (lambda c, g: c.send(VoiceOp.IDENTIFY, {**_identify(g), "token": "wrong"}), 4004),
        (lambda c, g: (c.identify(g), c.send(VoiceOp.IDENTIFY, _identify(g))), 4005),
        (lambda c, g: c.send(VoiceOp.RESUME, {**_identify(g), "session_id": "unknown"}), 4006),
        (lambda c, g: (c.identify(g), c.select("xsalsa20_poly1305")), 4016),
        (
            lambda c, g: (c.identify(g), c.send(VoiceOp.SELECT_PROTOCOL, {"protocol": "webrtc"})),
            4012,
        ),
    ],
    ids=["4003", "4001", "4002", "4004", "4005", "4006", "4016", "4012"],
)
def test_protocol_errors_close_with_their_code(script: object, code: int) -> None:
    replay = voice_replay()
    grant = join(replay)
    client = Scripted(replay)
    script(client, grant)  # type: ignore[operator]
    assert client.closed == code


def _identify(grant: dict[str, dict[str, str]]) -> dict[str, str]:
    return {"server_id": GUILD, "user_id": USER, "session_id": grant["VOICE_STATE_UPDATE"]["session_id"],
            "token": grant["VOICE_SERVER_UPDATE"]["token"]}  # fmt: skip


def test_buffered_resume_resends_what_came_after_seq_ack() -> None:
    """Buffered Resume: RESUMED, then every numbered message after seq_ack, in order."""
    replay = voice_replay("voice-close:4015@voice=SESSION_DESCRIPTION")
    grant = join(replay)
    first = Scripted(replay)
    first.identify(grant)
    first.select()
    assert first.closed == 4015
    second = Scripted(replay, port=4001)
    got = second.resume(grant, seq_ack=1)  # READY seen, SESSION_DESCRIPTION lost
    assert [m["op"] for m in got] == [VoiceOp.RESUMED, VoiceOp.SESSION_DESCRIPTION]
    assert got[0]["d"] is None
    assert "seq" not in got[0]
    assert got[1]["seq"] == 2
    third_try = Scripted(replay)
    third_try.resume(grant, seq_ack=2)  # the session is owned by the second now: taken over
    assert second.conn.closed
    assert not third_try.closed


def test_resume_after_leaving_is_4006() -> None:
    replay = voice_replay()
    grant = join(replay)
    client = Scripted(replay)
    client.identify(grant)
    replay.state_update({"guild_id": GUILD, "channel_id": None}, USER, "main-1")
    assert client.take(client.conn.tick(0)) == []
    assert client.closed == 4014
    again = Scripted(replay)
    again.resume(grant, seq_ack=1)
    assert again.closed == 4006


def test_an_rtp_triggered_fault_waits_for_the_next_tick() -> None:
    replay = voice_replay("voice-drop@rtp=3")
    woken = []
    replay.on_change = lambda: woken.append(1)
    client = Scripted(replay)
    ssrc = client.connected(join(replay))
    for i in range(3):
        replay.datagram(rtp(ssrc, i), ("127.0.0.1", 6000), i * MS)
    assert woken
    assert not client.aborted
    client.take(client.conn.tick(5 * MS))
    assert client.aborted


def test_dave_transition_and_server_update_faults() -> None:
    replay = voice_replay(
        "dave-transition:7@voice-op=SPEAKING",
        "voice-server-update:new-endpoint@voice-op=SPEAKING#2",
    )
    client = Scripted(replay)
    ssrc = client.connected(join(replay))
    (prepare,) = [m for m in client.messages if m["op"] == VoiceOp.DAVE_PREPARE_TRANSITION]
    assert prepare["d"] == {"transition_id": 7, "protocol_version": 0}
    assert "seq" in prepare
    client.send(VoiceOp.SPEAKING, {"speaking": 0, "delay": 0, "ssrc": ssrc})
    (update,) = replay.take_main_outbox()
    assert update[0] == "VOICE_SERVER_UPDATE"
    assert update[1]["endpoint"] == ENDPOINTS[1]
    assert update[1]["token"] == replay.grants[GUILD].token


def test_recorded_server_update_points_at_the_face() -> None:
    replay = voice_replay()
    d = {"token": "[redacted]", "guild_id": GUILD, "endpoint": "sweetwater-1234.discord.media:443"}
    rewritten = replay.recorded_server_update(d)
    assert rewritten["endpoint"] == ENDPOINTS[0]
    assert rewritten["token"] == replay.grants[GUILD].token
    gone = replay.recorded_server_update({**d, "endpoint": None})
    assert gone["endpoint"] is None
    assert json.dumps(rewritten).count("discord.media") == 0
