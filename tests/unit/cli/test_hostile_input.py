"""Hostile input to the real command line (issue #14): exit 1, one line on stderr naming
the file, the record or line and the field, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest

from replayer.archive.header import Header

from .test_cli import GOLDEN, assert_one_line_error, run

HEADER = Header(created_unix_ns=0).to_map()
NINES = "9" * 400


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    path.write_bytes(data)
    return path


# name -> (file contents, what the one line must name besides the file)
IMPORTS: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "invalid_utf8": (b'{"kind": "connection"}\n\xff\xfe\n', ("line 2", "not UTF-8")),
    "deep_nesting": ('{"kind": "connection", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
                     ("line 1", "nested too deeply")),
    "nan_t_ms": ('{"kind": "connection", "t_ms": NaN}\n', ("line 1", "field 't_ms'")),
    "1e400_t_ms": ('{"kind": "connection", "t_ms": 1e400}\n', ("line 1", "field 't_ms'")),
    "float_conn": ('{"kind": "connection", "conn": 1.9}\n', ("line 1", "field 'conn'")),
    "5000_digits": ('{"kind": "connection", "conn": 1' + "0" * 5000 + "}\n", ("line 1", "4300")),
    "conn_over_64_bits": ('{"kind": "connection", "conn": 1' + "0" * 30 + "}\n",
                          ("line 1", "field 'conn'", "64 bits")),
    "lone_surrogate": ('{"kind": "connection", "url": "\\ud800"}\n', ("line 1", "field 'url'")),
    "s_over_64_bits": ('{"kind": "connection"}\n{"kind": "frame", "conn": 1, "dir": "server", '
                       '"payload": {"op": 0, "s": 1' + "0" * 30 + ', "t": "X", "d": 1}}\n',
                       ("line 2", "field 'payload'")),
    "metadata_over_64_bits": ('{"kind": "header", "metadata": {"n": 1' + "0" * 30 + "}}\n",
                              ("line 1", "field 'metadata.n'")),
}  # fmt: skip


@pytest.mark.parametrize("name", IMPORTS)
def test_import(name: str, tmp_path: Path) -> None:
    contents, needles = IMPORTS[name]
    source = write(tmp_path / f"{name}.jsonl", contents)
    out = tmp_path / "out.rpl"
    assert_one_line_error(run("import", source, "-o", out), str(source), *needles)
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial"))


PLANS: dict[str, tuple[str, tuple[str, ...]]] = {
    "inf_duration": ('[[fault]]\nkind = "stall"\nduration = inf\ndispatch = 1\n',
                     ("fault 1", "field 'duration'")),
    "400_digit_duration": (f'[[fault]]\nkind = "stall"\nduration = "{NINES}s"\ndispatch = 1\n',
                           ("fault 1", "field 'duration'")),
    "400_digit_t": (f'[[fault]]\nkind = "reconnect"\nt = {NINES}\n', ("fault 1", "field 't'")),
    "float_dispatch": ('[[fault]]\nkind = "reconnect"\ndispatch = 1.9\n',
                       ("fault 1", "field 'dispatch'", "1.9")),
    "float_code": ('[[fault]]\nkind = "close"\ncode = 4000.5\ndispatch = 1\n',
                   ("fault 1", "field 'code'")),
    "huge_times": ('[[fault]]\nkind = "reconnect"\ndispatch = 1\ntimes = 100000000000\n',
                   ("fault 1", "field 'times'")),
    "float_seed": ("seed = 1.5\n", ("seed",)),
    "voice_float_rtp": ('[[fault]]\nkind = "reconnect"\ndispatch = 1\n[[fault]]\nkind = "voice-drop"\nrtp = 1.5\n',
                        ("fault 2 (voice-drop)", "rtp", "1.5")),
    "voice_bad_code": ('[[fault]]\nkind = "voice-close"\ncode = 4999\nvoice = "HELLO"\n',
                       ("fault 1 (voice-close)", "4999 is not a voice close code")),
    "not_utf8": ("\udcff\n", ("not valid TOML",)),
    "deep_toml": ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", ("not valid TOML",)),
}  # fmt: skip


@pytest.mark.parametrize("name", PLANS)
def test_replay_plan(name: str, tmp_path: Path) -> None:
    contents, needles = PLANS[name]
    plan = write(tmp_path / f"{name}.toml", contents)
    assert_one_line_error(run("replay", GOLDEN, "--plan", plan), str(plan), *needles)


def test_replay_plan_that_is_a_directory(tmp_path: Path) -> None:
    assert_one_line_error(run("replay", GOLDEN, "--plan", tmp_path), str(tmp_path), "directory")


@pytest.mark.parametrize(
    ("fault", "needles"),
    [
        (f"stall:{NINES}s@dispatch=1", ("field 'duration'",)),
        ("reconnect@dispatch=1.9", ("field 'dispatch'", "1.9")),
        ("reconnect@t=inf", ("field 't'",)),
        ("reconnect@dispatch=" + "9" * 5000, ("field 'dispatch'",)),
        ("reconnect@dispatch=1,times=99999999", ("field 'times'",)),
    ],
)
def test_replay_fault_text(fault: str, needles: tuple[str, ...]) -> None:
    result = run("replay", GOLDEN, "--fault", fault)
    assert_one_line_error(result, "fault", *needles)
    assert len(result.stderr) < 400  # a 5000-digit value is not echoed whole


def archive(path: Path, header: dict[str, object], *rows: list[object]) -> Path:
    return write(path, b"".join(msgpack.packb(o) for o in (header, *rows)))


ARCHIVES: dict[str, Callable[[Path], tuple[Path, tuple[str, ...]]]] = {
    "huge_array": lambda p: (
        write(p, msgpack.packb(HEADER) + b"\xdd\xff\xff\xff\xff" + b"\xc0" * 64),
        ("record 1", "1024 at most"),
    ),
    "kind_as_float": lambda p: (archive(p, HEADER, [2.0, 1]), ("record 1", "field 'kind'")),
    "frame_of_wrong_types": lambda p: (
        archive(p, HEADER, [1, 1, 0, "u", {}, [], None, None, "gateway"],
                [2, 1, 0, 1, 1, "not bin", None, None, None, 0, 0, None]),
        ("record 2", "field 'frame.payload'"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", ARCHIVES)
@pytest.mark.parametrize("command", [["verify"], ["inspect"], ["inspect", "--stats"], ["export"]])
def test_archive_commands(name: str, command: list[str], tmp_path: Path) -> None:
    path, needles = ARCHIVES[name](tmp_path / f"{name}.rpl")
    assert_one_line_error(run(*command, path), str(path), *needles)


@pytest.mark.parametrize("command", [["inspect", "--stats"], ["export"], ["verify"]])
def test_binary_header_metadata_is_shown_not_a_traceback(
    command: list[str], tmp_path: Path
) -> None:
    path = archive(tmp_path / "m.rpl", {**HEADER, "metadata": {"b": b"\xff\x00", b"k": 1}})
    result = run(*command, path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if command != ["verify"]:
        assert '"b": {"$b64": "/wA="}' in result.stdout
        assert '"$b64:aw==": 1' in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", GOLDEN, "--since", NINES],
        ["inspect", GOLDEN, "--until", "99999999999999999999s"],
        ["replay", GOLDEN, "--idle-grace", NINES],
        ["replay", GOLDEN, "--verdict-window", "99999999999999999999s"],
    ],
)
def test_duration_options_too_long_are_usage_errors(args: list[str | Path]) -> None:
    # 400 digits overflowed float() into inf and round() raised; a bad option value is
    # typer's usage error (exit 2, the option named), as for any other bad duration.
    result = run(*args)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert f"Invalid value for {args[2]}" in result.stderr
