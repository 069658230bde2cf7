"""The reference client's voice part: its RTP packets are what the face counts, and its
close-code table is the docs' (Voice Close Event Codes), each mistake breaking one row."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replayer.conform.reference_voice import VOICE_MISTAKES, ReferenceVoice, rtp_packet
from replayer.voice.close_codes import VOICE_CLOSE_CODES, VoiceReconnect, voice_close_rule
from replayer.voice.rtp import rtp_ssrc


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**40))
def test_an_rtp_packet_carries_its_ssrc(ssrc: int, seq: int) -> None:
    assert rtp_ssrc(rtp_packet(ssrc, seq)) == ssrc


def _next(code: int | None, mistake: str | None = None) -> str:
    return ReferenceVoice(None, lambda _: None, mistake)._after_close(code)


def test_after_a_close_it_follows_the_table() -> None:
    expected = {
        VoiceReconnect.RESUME: "resume",
        VoiceReconnect.NEW_SESSION: "identify",
        VoiceReconnect.WAIT_FOR_SERVER_UPDATE: "wait",
        VoiceReconnect.STOP: "stop",
    }
    for code in VOICE_CLOSE_CODES:
        assert _next(code) == expected[voice_close_rule(code)], code
    assert _next(None) == _next(1006) == "resume"  # gone without a close frame


def test_each_close_mistake_breaks_its_row() -> None:
    assert _next(4015, "voice-identify-not-resume") == "identify"
    assert _next(None, "voice-identify-not-resume") == "identify"
    assert _next(4006, "voice-resume-ended-session") == "resume"
    for code in (4014, 4017, 4021, 4022):
        assert _next(code, "voice-reconnect-always") == "identify"
    assert set(VOICE_MISTAKES) >= {"voice-identify-not-resume", "voice-resume-ended-session",
                                   "voice-reconnect-always"}  # fmt: skip
