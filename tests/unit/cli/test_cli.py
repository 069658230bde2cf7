"""The command line end to end, in a subprocess: output, exit status, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from replayer.archive.header import FORMAT_VERSION, Header
from replayer.resources import sample_archive

GOLDEN = Path(__file__).parents[2] / "golden" / "archive-v1.rpl"
GOLDEN_V2 = GOLDEN.with_name("archive-v2.rpl")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replayer", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_inspect_timeline_and_filters() -> None:
    result = run("inspect", GOLDEN)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 17
    assert "HELLO" in lines[2]
    assert "S→C" in lines[2]
    assert "READY" in lines[7]
    assert "s=1" in lines[7]
    ready_only = run("inspect", GOLDEN, "--event", "ready").stdout.splitlines()
    assert len(ready_only) == 1
    assert "READY" in ready_only[0]
    hellos = run("inspect", GOLDEN, "--op", "HELLO", "--op", "11").stdout.splitlines()
    assert [("HELLO" in x, "HEARTBEAT_ACK" in x) for x in hellos] == [
        (True, False),
        (False, True),
        (True, False),
    ]
    client = run("inspect", GOLDEN, "--dir", "client", "-c", "1").stdout.splitlines()
    assert len(client) == 3
    assert all("C→S" in x for x in client)
    window = run(
        "inspect", GOLDEN, "--since", "5ms", "--until", "7ms", "--limit", "2"
    ).stdout.splitlines()
    assert len(window) == 2
    assert "READY" in window[0]
    unknown = run("inspect", GOLDEN, "--op", "99").stdout
    assert " 99 " in unknown


def test_inspect_stats() -> None:
    result = run("inspect", GOLDEN, "--stats")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "format v1" in out
    assert "17 records: 10 frames" in out
    assert "server HELLO" in out
    assert "GUILD_CREATE" in out
    assert "zlib-stream" in out
    assert "4000 UNKNOWN_ERROR by client" in out
    assert "dropped (no close frame)" in out


def test_verify_ok() -> None:
    result = run("verify", GOLDEN)
    assert result.returncode == 0
    assert "ok:" in result.stdout
    assert "17 records" in result.stdout


@pytest.mark.parametrize("golden", [GOLDEN, GOLDEN_V2], ids=["v1", "v2"])
def test_export_import_export(tmp_path: Path, golden: Path) -> None:
    first = tmp_path / "a.jsonl"
    assert run("export", golden, "-o", first).returncode == 0
    rebuilt = tmp_path / "b.rpl"
    result = run("import", first, "-o", rebuilt)
    assert result.returncode == 0, result.stderr
    second = run("export", rebuilt)
    assert second.returncode == 0
    # The header's format_version becomes the importer's (docs/archive-format.md §8).
    first_header, *first_records = first.read_text().splitlines()
    second_header, *second_records = second.stdout.splitlines()
    assert second_records == first_records
    assert json.loads(second_header) == {
        **json.loads(first_header),
        "format_version": FORMAT_VERSION,
    }
    frame = json.loads(first_records[2 if golden == GOLDEN else 1])
    assert frame["payload"]["d"]["heartbeat_interval"] == 41250


def test_bad_inputs_give_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.rpl"
    for command in ("inspect", "verify", "export"):
        assert_one_line_error(run(command, missing), str(missing), "no such file")

    noise = tmp_path / "noise.rpl"
    noise.write_bytes(b"\x89PNG\r\n\x1a\n not an archive at all")
    assert_one_line_error(run("inspect", noise), str(noise), "record 0", "not a replayer archive")

    newer = tmp_path / "newer.rpl"
    newer.write_bytes(msgpack.packb({**Header().to_map(), "format_version": FORMAT_VERSION + 1}))
    assert_one_line_error(run("verify", newer), str(newer), "upgrade replayer")


def test_truncated_archive_shows_what_it_can(tmp_path: Path) -> None:
    cut = tmp_path / "cut.rpl"
    data = GOLDEN.read_bytes()
    cut.write_bytes(data[: len(data) - 7])
    result = run("inspect", cut)
    assert_one_line_error(result, str(cut), "truncated", "16 complete records")
    assert len(result.stdout.splitlines()) == 16
    assert_one_line_error(run("verify", cut), str(cut), "truncated")
    exported = run("export", cut)
    assert_one_line_error(exported, "truncated")
    assert len(exported.stdout.splitlines()) == 17  # header + 16 records


def test_verify_names_the_record(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rpl"
    shutil.copy(GOLDEN, bad)
    with open(bad, "ab") as f:  # a frame on a connection that was closed
        f.write(msgpack.packb([2, 1, 20_000_000, 1, 1, b'{"op":11}', 11, None, None, 9, 0, None]))
    assert_one_line_error(run("verify", bad), str(bad), "record 18", "frame.conn_id", "was closed")


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        (
            '{"kind": "connection"}\n{"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 1}\n',
            2,
            "not JSON",
        ),
        (
            '{"kind": "connection"}\n\n{"kind": "frame", "conn": 1, "dir": "sideways", "payload": {"op": 1}}\n',
            3,
            "field 'dir'",
        ),
        (
            '{"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 1}}\n',
            1,
            "no connection line",
        ),
    ],
)
def test_import_bad_line(tmp_path: Path, content: str, line: int, needle: str) -> None:
    source = tmp_path / "fixture.jsonl"
    source.write_text(content)
    target = tmp_path / "out.rpl"
    assert_one_line_error(run("import", source, "-o", target), f"{source}: line {line}", needle)
    assert not target.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_import_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(
        run("import", tmp_path / "nope.jsonl", "-o", tmp_path / "x.rpl"), "nope.jsonl"
    )


def test_usage_errors_exit_2() -> None:
    result = run("inspect", GOLDEN, "--op", "NOT_AN_OPCODE")
    assert result.returncode == 2
    assert "unknown opcode" in result.stderr


def test_inspect_stats_lists_the_incidents_a_replay_repeats() -> None:
    sample = sample_archive("sample-small.rpl")
    result = run("inspect", sample, "--stats")
    assert result.returncode == 0, result.stderr
    assert "replayed as faults" in result.stdout
    assert "recorded reconnect after dispatch 7" in result.stdout
    plain = run("inspect", sample_archive("small-bot.rpl"), "--stats")
    assert "replayed as faults" not in plain.stdout


def test_inspect_names_voice_opcodes_by_the_voice_table() -> None:
    result = run("inspect", GOLDEN_V2)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    voice = [line for line in lines if " c2 " in line or " c3 " in line]
    assert "open voice wss://golden-voice-1.discord.media:443/?v=8" in voice[0]
    names = [line.split()[3] for line in voice if "S→C" in line or "C→S" in line]
    assert names == [
        "HELLO", "IDENTIFY", "READY", "SELECT_PROTOCOL", "SESSION_DESCRIPTION",
        "DAVE_MLS_EXTERNAL_SENDER", "DAVE_MLS_KEY_PACKAGE", "HEARTBEAT", "HEARTBEAT_ACK",
        "SPEAKING", "HELLO", "RESUME", "RESUMED",
    ]  # fmt: skip
    assert any("close 4015 Voice server crashed by server" in line for line in voice)
    assert any("info voice connection (from its handshake)" in line for line in voice)
    main = [line for line in lines if " c1 " in line and "S→C" in line]
    assert main[0].split()[3] == "HELLO"  # op 10 on the main gateway


def test_inspect_stats_keeps_voice_opcodes_apart() -> None:
    result = run("inspect", GOLDEN_V2, "--stats")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "format v2" in out
    for row in (
        "server HELLO",
        "server voice HELLO",
        "server voice RESUMED",
        "client voice RESUME",
    ):
        assert row in out
    assert "replayed as faults" not in out  # a voice server's close and RESUMED are no incidents
    assert "4015 Voice server crashed by server" in out


def test_verify_v2_ok() -> None:
    result = run("verify", GOLDEN_V2)
    assert result.returncode == 0, result.stderr
    assert "format v2, 29 records (3 connections, 19 frames" in result.stdout
