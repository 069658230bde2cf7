"""Nothing overwritten: every command that writes a file refuses an existing one unless
--force (one line, exit 1, before anything starts, the file untouched), and given a
directory writes a new timestamped file in it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from replayer.archive.reader import ArchiveReader
from replayer.cli.output import new_file_in
from tests.unit.cli.test_cli import GOLDEN, assert_one_line_error, run


def existing(path: Path) -> tuple[bytes, int]:
    path.write_bytes(b"a recording that must survive")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    return path.read_bytes(), path.stat().st_mtime_ns


def jsonl(tmp_path: Path) -> Path:
    source = tmp_path / "in.jsonl"
    source.write_text(run("export", GOLDEN).stdout)
    return source


COMMANDS = {
    "record": lambda tmp, out: ("record", "-o", out, "--confdir", tmp / "mitm"),
    "import": lambda tmp, out: ("import", jsonl(tmp), "-o", out),
    "import-mitm": lambda tmp, out: ("import-mitm", tmp / "flows.mitm", "-o", out),
    "synth": lambda tmp, out: ("synth", "-o", out),
    "export": lambda tmp, out: ("export", GOLDEN, "-o", out),
    "replay --transcript": lambda tmp, out: ("replay", GOLDEN, "--transcript", out),
    "replay --report": lambda tmp, out: ("replay", GOLDEN, "--report", out),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_file_is_refused(tmp_path: Path, command: str) -> None:
    out = tmp_path / "taken"
    before = existing(out)
    result = run(*COMMANDS[command](tmp_path, out))
    assert_one_line_error(result, str(out), "already exists", "--force")
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "in.jsonl") == ["taken"]


@pytest.mark.parametrize("command", ["import", "synth", "export"])
def test_force_replaces_it(tmp_path: Path, command: str) -> None:
    out = tmp_path / "taken"
    existing(out)
    result = run(*COMMANDS[command](tmp_path, out), "--force")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() != b"a recording that must survive"


def test_a_directory_gets_a_new_file_each_time(tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    directory.mkdir()
    printed = []
    for _ in range(2):  # within the same second: the second one gets a suffix
        result = run("synth", "-o", directory, "--guilds", "1")
        assert result.returncode == 0, result.stderr
        [match] = re.findall(r"writing (\S+)", result.stderr)
        printed.append(Path(match))
    assert printed[0] != printed[1]
    assert sorted(directory.iterdir()) == sorted(printed)
    for path in printed:
        assert re.fullmatch(r"replayer-\d{8}-\d{6}(-\d+)?\.rpl", path.name)
        with ArchiveReader(path) as reader:
            assert reader.header.metadata["synthetic"] is True


def test_new_file_in_never_names_a_taken_file(tmp_path: Path) -> None:
    first = new_file_in(tmp_path, ".rpl", now_s=0)
    first.touch()
    second = new_file_in(tmp_path, ".rpl", now_s=0)
    assert second.name == first.stem + "-2.rpl"
    second.touch()
    assert new_file_in(tmp_path, ".rpl", now_s=0).name == first.stem + "-3.rpl"
    assert new_file_in(tmp_path, ".json", now_s=0).suffix == ".json"
