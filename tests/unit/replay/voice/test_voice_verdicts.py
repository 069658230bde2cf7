"""Each voice verdict FAILs with a scripted wrong client and PASSes with a right one."""

from __future__ import annotations

from replayer.replay.verdicts import Result, Verdict
from replayer.replay.voice.engine import VoiceReplay
from replayer.voice.opcodes import VoiceOp
from tests.unit.replay.voice.scripted import MS, Scripted, join, rtp, voice_replay


def verdict(replay: VoiceReplay, prefix: str, now_ms: int = 10_000) -> Verdict:
    (found,) = [v for v in replay.finish(now_ms * MS) if v.name.startswith(prefix)]
    return found


def closed_after_speaking(code: int) -> tuple[VoiceReplay, dict[str, dict[str, str]], Scripted]:
    replay = voice_replay(f"voice-close:{code}@voice-op=SPEAKING")
    grant = join(replay)
    first = Scripted(replay)
    first.connected(grant)
    assert first.closed == code
    first.conn.client_closed(None, 10 * MS)
    return replay, grant, first


def test_4015_pass_resume_with_the_last_seq_ack() -> None:
    replay, grant, first = closed_after_speaking(4015)
    Scripted(replay, 20).resume(grant, first.last_seq, 20)
    v = verdict(replay, "voice: voice-close 4015")
    assert v.result is Result.PASS, v
    assert v.docs.startswith("Topics > Opcodes and Status Codes > Voice Close Event Codes")


def test_4015_fail_a_new_session_instead() -> None:
    replay, _grant, _ = closed_after_speaking(4015)
    Scripted(replay, 20).identify(join(replay), 20)
    assert verdict(replay, "voice: voice-close 4015").result is Result.FAIL


def test_4015_fail_a_stale_seq_ack() -> None:
    replay, grant, first = closed_after_speaking(4015)
    Scripted(replay, 20).resume(grant, first.last_seq - 1, 20)
    v = verdict(replay, "voice: voice-close 4015")
    assert v.result is Result.FAIL, v
    assert "seq_ack" in v.observed, v


def test_4015_fail_no_reconnect_at_all() -> None:
    replay, _, _ = closed_after_speaking(4015)
    assert verdict(replay, "voice: voice-close 4015").result is Result.FAIL


def test_4006_and_4009_pass_a_fresh_identify_fail_a_resume() -> None:
    for code in (4006, 4009):
        replay, grant, _ = closed_after_speaking(code)
        Scripted(replay, 20).identify(grant, 20)
        assert verdict(replay, f"voice: voice-close {code}").result is Result.PASS
        replay, grant, first = closed_after_speaking(code)
        Scripted(replay, 20).resume(grant, first.last_seq, 20)
        assert verdict(replay, f"voice: voice-close {code}").result is Result.FAIL


def test_4014_4021_4022_no_reconnect_unless_a_new_voice_server_update() -> None:
    for code in (4014, 4021, 4022):
        replay, _, _ = closed_after_speaking(code)
        assert verdict(replay, f"voice: voice-close {code}").result is Result.PASS  # stayed away
        replay, grant, _ = closed_after_speaking(code)
        Scripted(replay, 20).identify(grant, 20)  # back with no new VOICE_SERVER_UPDATE
        assert verdict(replay, f"voice: voice-close {code}").result is Result.FAIL
        replay, _, _ = closed_after_speaking(code)
        fresh = join(replay, "another-channel")
        replay.main_sent("VOICE_SERVER_UPDATE", 15 * MS)
        Scripted(replay, 20).identify(fresh, 20)
        assert verdict(replay, f"voice: voice-close {code}").result is Result.PASS


def test_4017_stop() -> None:
    replay, _, _ = closed_after_speaking(4017)
    assert verdict(replay, "voice: voice-close 4017").result is Result.PASS
    replay, grant, _ = closed_after_speaking(4017)
    Scripted(replay, 20).identify(grant, 20)
    assert verdict(replay, "voice: voice-close 4017").result is Result.FAIL


def test_heartbeats_carry_seq_ack() -> None:
    replay = voice_replay()
    client = Scripted(replay)
    client.connected(join(replay))
    client.send(VoiceOp.HEARTBEAT, {"t": 1, "seq_ack": client.last_seq})
    assert verdict(replay, "voice: heartbeats carry seq_ack").result is Result.PASS
    replay = voice_replay()
    client = Scripted(replay)
    client.connected(join(replay))
    client.send(VoiceOp.HEARTBEAT, {"t": 1})  # the v4 habit on a v8 connection
    assert verdict(replay, "voice: heartbeats carry seq_ack").result is Result.FAIL


def test_audio_resumes_after_a_reconnect() -> None:
    for right in (True, False):
        replay = voice_replay("voice-drop@rtp=5")
        first = Scripted(replay)
        ssrc = first.connected(join(replay))
        for i in range(5):
            replay.datagram(rtp(ssrc, i), ("127.0.0.1", 6000), i * MS)
        first.take(first.conn.tick(6 * MS))
        assert first.aborted
        second = Scripted(replay, 10)
        second.resume(join(replay), first.last_seq, 10)
        if right:
            replay.datagram(rtp(ssrc, 6), ("127.0.0.1", 6000), 30 * MS)
        v = verdict(replay, "voice: audio after")
        assert v.result is (Result.PASS if right else Result.FAIL), v
        assert verdict(replay, "voice: voice-drop").result is Result.PASS  # it RESUMEd


def test_transition_ready_after_prepare_transition() -> None:
    for right in (True, False):
        replay = voice_replay("dave-transition:9@voice-op=SPEAKING")
        client = Scripted(replay)
        client.connected(join(replay))
        if right:
            client.send(VoiceOp.DAVE_TRANSITION_READY, {"transition_id": 9})
        else:
            client.send(VoiceOp.DAVE_TRANSITION_READY, {"transition_id": 8})
        v = verdict(replay, "voice: dave-transition")
        assert v.result is (Result.PASS if right else Result.FAIL), v


def test_server_update_null_and_new_endpoint() -> None:
    replay = voice_replay("voice-server-update:null@voice-op=SPEAKING")
    client = Scripted(replay)
    client.connected(join(replay))
    assert verdict(replay, "voice: voice-server-update null").result is Result.NON_STRICT  # stayed
    replay = voice_replay("voice-server-update:null@voice-op=SPEAKING")
    client = Scripted(replay)
    client.connected(join(replay))
    client.conn.client_closed(1000, 5 * MS)
    assert verdict(replay, "voice: voice-server-update null").result is Result.PASS
    replay = voice_replay("voice-server-update:null@voice-op=SPEAKING")
    client = Scripted(replay)
    grant = join(replay)
    client.connected(grant)
    Scripted(replay, 5).identify(grant, 5)
    assert verdict(replay, "voice: voice-server-update null").result is Result.FAIL

    for port, result in ((4002, Result.PASS), (4001, Result.FAIL)):
        replay = voice_replay("voice-server-update:new-endpoint@voice-op=SPEAKING")
        client = Scripted(replay)
        client.connected(join(replay))
        ((event, d),) = replay.take_main_outbox()
        assert event == "VOICE_SERVER_UPDATE"
        assert d["endpoint"].endswith(":4002")
        grant = {"VOICE_SERVER_UPDATE": d, "VOICE_STATE_UPDATE": join(replay)["VOICE_STATE_UPDATE"]}
        Scripted(replay, 5, port=port).identify(grant, 5)
        assert verdict(replay, "voice: voice-server-update new-endpoint").result is result
