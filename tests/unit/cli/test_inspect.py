"""``replayer inspect`` (issue 17 item 6): lines fit the width without breaking a field, --json
prints one record per line, filters OR within an option and AND across options, --stats counts
what they select, and on a terminal the timeline goes through $PAGER."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import FrameRecord
from replayer.cli.pager import pager_command
from replayer.gateway.opcodes import Direction
from replayer.resources import sample_archive

SMALL_BOT = sample_archive("small-bot.rpl")


def run(*args: str | Path, columns: int = 80, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": str(columns), **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def frames() -> list[FrameRecord]:
    return [r for r in read_records(SMALL_BOT)[1] if isinstance(r, FrameRecord)]


@pytest.mark.parametrize("columns", [80, 120])
def test_every_line_fits_and_only_the_tail_is_cut(columns: int) -> None:
    lines = run(SMALL_BOT, columns=columns).splitlines()
    assert len(lines) > 20
    for line in lines:
        assert len(line) <= columns, line
    cut = [line for line in lines if line.endswith("…")]
    assert cut  # GUILD_CREATE's payload cannot fit
    for line in cut:  # the fields before the payload are whole
        assert re.search(r" [KMG]?B  \S", line) or "open ws://" in line, line


def test_json_is_one_record_per_line_with_its_payload_whole() -> None:
    lines = run(SMALL_BOT, "--json", "--event", "GUILD_CREATE").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["t"] for r in records] == ["GUILD_CREATE"]
    guild = next(f for f in frames() if f.t == "GUILD_CREATE")
    assert records[0]["payload"] == json.loads(guild.payload)


def test_values_of_one_option_are_alternatives_options_all_hold() -> None:
    both = [
        json.loads(x)
        for x in run(SMALL_BOT, "--json", "--op", "IDENTIFY", "--op", "HEARTBEAT").splitlines()
    ]
    expected = [f for f in frames() if f.op in (1, 2)]
    assert [(r["op"], r["t_ns"]) for r in both] == [(f.op, f.t_ns) for f in expected]
    client_heartbeats = run(
        SMALL_BOT, "--json", "--op", "HEARTBEAT", "--op", "IDENTIFY", "--dir", "server"
    )
    assert client_heartbeats == ""  # the client sends both: no server frame is either
    ready = run(SMALL_BOT, "--json", "--event", "READY", "--event", "GUILD_CREATE").splitlines()
    assert [json.loads(x)["t"] for x in ready] == ["READY", "GUILD_CREATE"]


def test_the_readme_inspect_examples_select_something() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    examples = [
        line.split("#")[0].split()[2:]
        for line in readme.splitlines()
        if line.startswith("replayer inspect ")
    ]
    assert examples
    root = Path(__file__).parents[3]
    for args in examples:
        assert run(*[str(root / a) if a.endswith(".rpl") else a for a in args]).strip(), args


def test_stats_count_what_the_filters_select() -> None:
    text = run(SMALL_BOT, "--stats", "--dir", "client")
    client = [f for f in frames() if f.direction == Direction.CLIENT]
    assert f": {len(client)} frames (" in text
    assert "server DISPATCH" not in text
    assert "(of what the filters select)" in text
    assert "(of what the filters select)" not in run(SMALL_BOT, "--stats")


def _inspect_on_a_terminal(*args: str, env: dict[str, str]) -> str:
    """inspect with its stdout a terminal (a pty), as a user runs it; what reached the pty."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "replayer", "inspect", str(SMALL_BOT), *args],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80", **env},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: every writer of the pty has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@pytest.mark.skipif(not hasattr(pty, "openpty") or sys.platform == "win32", reason="POSIX pty")
def test_a_terminal_gets_the_pager_and_no_pager_turns_it_off(tmp_path: Path) -> None:
    seen = tmp_path / "paged.txt"
    pager = f"{sys.executable} -c \"import sys; open({str(seen)!r}, 'w').write(sys.stdin.read())\""
    shown = _inspect_on_a_terminal("--limit", "5", env={"PAGER": pager})
    assert "HELLO" not in shown  # it went to the pager
    assert len(seen.read_text().splitlines()) == 5
    assert "HELLO" in seen.read_text()
    seen.unlink()
    direct = _inspect_on_a_terminal("--limit", "5", "--no-pager", env={"PAGER": pager})
    assert "HELLO" in direct
    assert not seen.exists()


def test_no_pager_when_piped_or_pager_is_cat() -> None:
    assert "HELLO" in run(SMALL_BOT, "--limit", "5", env={"PAGER": "definitely-not-a-pager"})
    assert pager_command({"PAGER": "cat"}) is None
    assert pager_command({"PAGER": ""}) is None
    assert pager_command({"PAGER": "no-such-pager-program -R"}) is None
    assert pager_command({}) in ("less -FRX", None)  # None where less is not installed


VOICE_BOT = sample_archive("voice-bot.rpl")


def _expected(op_gateway: set[int], op_voice: set[int]) -> list[tuple[int, int | None]]:
    """(conn, op) of the frames an --op filter must select: by each connection's kind."""
    from replayer.archive.records import ConnectionKind, ConnectionRecord

    records = read_records(VOICE_BOT)[1]
    voice = {
        r.conn_id
        for r in records
        if isinstance(r, ConnectionRecord) and r.kind is ConnectionKind.VOICE
    }
    return [
        (r.conn_id, r.op)
        for r in records
        if isinstance(r, FrameRecord) and r.op in (op_voice if r.conn_id in voice else op_gateway)
    ]


@pytest.mark.parametrize(
    ("ops", "gateway", "voice"),
    [
        (["HELLO"], {10}, {8}),  # a name by each connection's table
        (["heartbeat-ack"], {11}, {6}),
        (["READY"], set(), {2}),  # a voice opcode only (on the gateway READY is an event)
        (["VOICE_STATE_UPDATE"], {4}, set()),  # a gateway opcode only
        (["9"], {9}, {9}),  # a number matches the number on either
        (["8", "IDENTIFY"], {8, 2}, {8, 0}),
    ],
)
def test_op_names_go_by_the_connections_kind(
    ops: list[str], gateway: set[int], voice: set[int]
) -> None:
    args = [a for o in ops for a in ("--op", o)]
    lines = [json.loads(line) for line in run(VOICE_BOT, *args, "--json").splitlines()]
    assert [(r["conn"], r["op"]) for r in lines] == _expected(gateway, voice)
    assert lines or not _expected(gateway, voice)


def test_op_hello_on_voice_shows_both_hellos_and_the_stats_count_them() -> None:
    timeline = run(VOICE_BOT, "--op", "HELLO")
    assert [line.split()[1] for line in timeline.splitlines()] == ["c1", "c2", "c3"]
    assert "REQUEST_GUILD_MEMBERS" not in timeline  # voice op 8 is named HELLO
    stats = run(VOICE_BOT, "--op", "HELLO", "--stats")
    assert re.search(r"server voice HELLO\s*│\s*2\b", stats), stats
    assert re.search(r"server HELLO\s*│\s*1\b", stats), stats


def test_an_op_neither_table_has_is_one_line_naming_both() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "inspect", str(VOICE_BOT), "--op", "ZAP"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "unknown opcode 'ZAP'" in result.stderr
    assert "SESSION_DESCRIPTION" in result.stderr  # the voice names offered
    assert "PRESENCE_UPDATE" in result.stderr  # and the gateway's
