"""``replayer synth --voice``: the voice join on the main gateway and a voice connection that
follows Voice Connections; the option leaves every session without it as it was."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from replayer.archive.reader import ArchiveReader, read_records
from replayer.archive.records import (
    CloseRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    Record,
)
from replayer.archive.verify import ArchiveChecker
from replayer.cli import app
from replayer.gateway.opcodes import Direction, Opcode
from replayer.synth import SynthOptions, synth_records, write_synth
from replayer.voice.opcodes import VoiceOp

VOICE = SynthOptions(voice=True, messages=120, heartbeat_interval_ms=5000)


def check(records: list[Record]) -> ArchiveChecker:
    checker = ArchiveChecker()
    for record in records:
        checker.check(record)
    return checker


def test_a_voice_session_follows_the_voice_gateway() -> None:
    records = list(synth_records(VOICE))
    checker = check(records)  # voice frames by the voice rules, seq going forward
    assert checker.connections == 2
    voice_conn = next(
        r for r in records if isinstance(r, ConnectionRecord) and r.kind is ConnectionKind.VOICE
    )
    voice = [r for r in records if isinstance(r, FrameRecord) and r.conn_id == voice_conn.conn_id]
    ops = [(f.direction, f.op) for f in voice]
    server, client = Direction.SERVER, Direction.CLIENT
    assert ops[:6] == [
        (server, VoiceOp.HELLO), (client, VoiceOp.IDENTIFY), (server, VoiceOp.READY),
        (client, VoiceOp.SELECT_PROTOCOL), (server, VoiceOp.SESSION_DESCRIPTION),
        (client, VoiceOp.SPEAKING),
    ]  # fmt: skip
    beats = ops[6:]
    assert beats, "the session is long enough for voice heartbeats"
    assert beats == [(client, VoiceOp.HEARTBEAT), (server, VoiceOp.HEARTBEAT_ACK)] * (
        len(beats) // 2
    )
    payloads = [json.loads(f.payload) for f in voice]
    for f, p in zip(voice, payloads, strict=True):
        assert f.s == p.get("seq")
        assert (f.s is None) == (f.direction is client or f.op == VoiceOp.HELLO)
    heartbeat = payloads[6]["d"]
    assert heartbeat["seq_ack"] == voice[5 - 1].s  # the last seq before it (SESSION DESCRIPTION)
    assert payloads[7]["d"] == {"t": heartbeat["t"]}  # the ACK echoes t
    description = payloads[4]["d"]
    assert description["mode"] in payloads[2]["d"]["modes"]
    assert description["mode"] == payloads[3]["d"]["data"]["mode"]
    assert len(description["secret_key"]) == 32
    assert description["dave_protocol_version"] == 0

    main = [r for r in records if isinstance(r, FrameRecord) and r.conn_id == 1]
    request = next(f for f in main if f.op == Opcode.VOICE_STATE_UPDATE)
    state = next(f for f in main if f.t == "VOICE_STATE_UPDATE")
    update = next(f for f in main if f.t == "VOICE_SERVER_UPDATE")
    assert request.t_ns < state.t_ns < update.t_ns < voice_conn.t_ns
    d_state, d_update = json.loads(state.payload)["d"], json.loads(update.payload)["d"]
    identify = payloads[1]["d"]
    assert identify["session_id"] == d_state["session_id"]
    assert identify["token"] == d_update["token"]
    assert (
        identify["server_id"]
        == d_update["guild_id"]
        == json.loads(request.payload)["d"]["guild_id"]
    )
    assert voice_conn.url == f"wss://{d_update['endpoint']}/?v=8"
    closes = [r for r in records if isinstance(r, CloseRecord)]
    assert [c.conn_id for c in closes] == [voice_conn.conn_id, 1]  # voice leaves first


def test_the_voice_token_is_redacted_on_disk(tmp_path: Path) -> None:
    records = list(synth_records(VOICE))
    update = next(r for r in records if isinstance(r, FrameRecord) and r.t == "VOICE_SERVER_UPDATE")
    token = json.loads(update.payload)["d"]["token"]
    path = tmp_path / "v.rpl"
    write_synth(path, VOICE)
    assert token.encode() not in path.read_bytes()
    _, written = read_records(path)
    identify = next(
        r for r in written if isinstance(r, FrameRecord) and r.conn_id == 2 and r.op == 0
    )
    assert identify.flags & FrameFlag.REDACTED
    with ArchiveReader(path) as reader:
        assert reader.header.metadata["options"]["voice"] is True


@pytest.mark.parametrize(
    "options",
    [SynthOptions(), SynthOptions(shards=3, guilds=7, encoding="etf", compress="zlib-stream")],
)
def test_voice_adds_to_a_session_and_leaves_the_rest_before_it(
    options: SynthOptions, tmp_path: Path
) -> None:
    without = list(synth_records(options))
    with_voice = list(synth_records(replace(options, voice=True)))
    join = next(
        i
        for i, r in enumerate(with_voice)
        if isinstance(r, FrameRecord)
        and r.op == Opcode.VOICE_STATE_UPDATE
        and r.direction is Direction.CLIENT
    )
    assert with_voice[:join] == without[:join]
    assert len(with_voice) > len(without)
    path = tmp_path / "s.rpl"
    write_synth(path, options)
    with ArchiveReader(path) as reader:
        assert "voice" not in reader.header.metadata["options"]  # as before --voice existed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"guilds": 0}, "voice needs a guild with a voice channel"),
        ({"channels_per_guild": 2}, "channels_per_guild >= 3"),
        ({"voice": 1}, "voice must be True or False"),
    ],
)
def test_voice_needs_a_voice_channel(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthOptions(**{"voice": True, **kwargs})  # type: ignore[arg-type]


def test_the_command_line_option(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "voice.rpl"
    result = runner.invoke(app, ["synth", "-o", str(out), "--voice", "--guilds", "1"])
    assert result.exit_code == 0, result.output
    assert "a voice connection" in result.output
    _, records = read_records(out)
    assert [r.kind for r in records if isinstance(r, ConnectionRecord)] == [
        ConnectionKind.GATEWAY, ConnectionKind.VOICE,
    ]  # fmt: skip
    bad = runner.invoke(
        app, ["synth", "-o", str(tmp_path / "bad.rpl"), "--voice", "--channels", "2"]
    )
    assert bad.exit_code == 1
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert lines == [
        "error: --voice needs a guild with a voice channel: --guilds 1 or more, --channels 3 or more"
    ]
    assert not (tmp_path / "bad.rpl").exists()
