"""ArchiveStats and ConnectionKinds: voice connections counted and named by the voice tables."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from replayer.archive.inspection import ArchiveStats, ConnectionKinds, parse_op_filter
from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameRecord,
    FrameType,
)
from replayer.gateway.opcodes import Direction, Opcode, parse_opcode
from replayer.voice.opcodes import VoiceOp

V2 = Path(__file__).parents[2] / "golden" / "archive-v2.rpl"


def test_voice_frames_and_closes_are_no_incidents() -> None:
    stats = ArchiveStats()
    for record in read_records(V2)[1]:
        stats.add(record)
    assert stats.incidents == 0  # the voice server's 4015 and RESUMED (op 9) are voice
    assert stats.by_op["server voice RESUMED"] == 1
    assert stats.by_op["server HELLO"] == 1
    assert stats.by_op["server voice HELLO"] == 2
    assert [c.kind for c in stats.connections.values()] == [
        ConnectionKind.GATEWAY, ConnectionKind.VOICE, ConnectionKind.VOICE,
    ]  # fmt: skip


def test_a_connection_info_switches_the_names() -> None:
    kinds = ConnectionKinds()
    hello = FrameRecord(1, 0, Direction.SERVER, FrameType.TEXT, b"{}", 8, None, None, 2)
    kinds.see(ConnectionRecord(1, 0, "wss://x/?v=8"))
    assert kinds.op_name(hello) == "REQUEST_GUILD_MEMBERS"
    assert kinds.close_name(1, 4015) != "Voice server crashed"
    kinds.see(ConnectionInfoRecord(1, 0, kind=ConnectionKind.VOICE))
    assert kinds.op_name(hello) == "HELLO"
    assert kinds.close_name(1, 4015) == "Voice server crashed"
    assert kinds.close_name(1, 1000) == "NORMAL"
    kinds.see(ConnectionInfoRecord(1, 0))  # nothing learned: still voice
    assert kinds.kind(1) is ConnectionKind.VOICE


@given(
    st.lists(
        st.text(max_size=12)
        | st.sampled_from(
            [
                "HELLO",
                "hello",
                "READY",
                "9",
                "-1",
                " 8 ",
                "heartbeat-ack",
                "RESUME",
                "DISPATCH",
                "ZAP",
                "DAVE_MLS_WELCOME",
                "VOICE_SERVER_PING",
                "\u0661",
            ]
        ),
        max_size=4,
    )
)
def test_op_filters_by_kind(texts: list[str]) -> None:
    """--op: a number selects itself on both kinds; a name the opcode of that name in each
    table that has it; anything else is a ValueError naming it."""
    try:
        gateway, voice = parse_op_filter(texts)
    except ValueError as exc:
        if "unknown opcode" not in str(exc) or "\n" in str(exc):
            raise AssertionError(f"not the one-line refusal: {exc}") from exc
        return
    want_gateway: set[int] = set()
    want_voice: set[int] = set()
    for text in texts:
        name = text.strip().upper().replace("-", "_")
        if text.strip().lstrip("-").isdigit():
            want_gateway.add(int(text.strip()))
            want_voice.add(int(text.strip()))
            continue
        if name in VoiceOp.__members__:
            want_voice.add(VoiceOp[name])
        try:
            want_gateway.add(parse_opcode(text))
        except ValueError:
            assert name in VoiceOp.__members__
    assert (set(gateway), set(voice)) == (want_gateway, want_voice)
    if "HELLO" in [t.strip().upper() for t in texts]:
        assert Opcode.HELLO in gateway
        assert VoiceOp.HELLO in voice
