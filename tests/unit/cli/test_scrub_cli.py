"""``replayer scrub`` end to end, in a subprocess: the summary, determinism for a key,
and one-line refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from replayer.archive.reader import read_records
from replayer.resources import sample_archive
from tests.unit.cli.test_cli import GOLDEN, assert_one_line_error, run

SMALL_BOT = sample_archive("small-bot.rpl")


def test_scrub_summary_and_determinism(tmp_path: Path) -> None:
    first, second, third = tmp_path / "a.rpl", tmp_path / "b.rpl", tmp_path / "c.rpl"
    result = run("scrub", SMALL_BOT, "-o", first, "--key", "k1")
    assert result.returncode == 0, result.stderr
    (summary,) = result.stderr.splitlines()
    assert summary.startswith(f"wrote {first}: 32 records; ")
    assert " ids mapped, " in summary
    assert " 0 undecoded " in summary
    assert run("verify", first).returncode == 0
    env = {**os.environ, "REPLAYER_SCRUB_KEY": "k1"}
    by_env = subprocess.run(
        [sys.executable, "-m", "replayer", "scrub", str(SMALL_BOT), "-o", str(second)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert by_env.returncode == 0, by_env.stderr
    assert first.read_bytes() == second.read_bytes()  # the same key, the same archive
    randomly = run("scrub", SMALL_BOT, "-o", third)
    assert randomly.returncode == 0, randomly.stderr
    assert "random key" in randomly.stderr
    assert third.read_bytes() != first.read_bytes()
    header, records = read_records(first)
    assert header.metadata["scrubbed"] is True
    assert len(records) == 32


def test_scrub_refusals(tmp_path: Path) -> None:
    out = tmp_path / "out.rpl"
    out.write_bytes(b"keep me")
    assert_one_line_error(run("scrub", SMALL_BOT, "-o", out, "--key", "k"), "already exists")
    assert out.read_bytes() == b"keep me"  # nothing overwritten
    forced = run("scrub", SMALL_BOT, "-o", out, "--key", "k", "--force")
    assert forced.returncode == 0, forced.stderr
    assert_one_line_error(
        run("scrub", out, "-o", out, "--key", "k", "--force"), "the output is the input"
    )
    assert_one_line_error(run("scrub", SMALL_BOT, "-o", tmp_path / "x.rpl", "--key", ""), "empty")
    assert_one_line_error(
        run("scrub", tmp_path / "missing.rpl", "-o", tmp_path / "y.rpl", "--key", "k"),
        "missing.rpl",
        "no such file",
    )
    cut = tmp_path / "cut.rpl"
    cut.write_bytes(GOLDEN.read_bytes()[:-5])
    assert_one_line_error(
        run("scrub", cut, "-o", tmp_path / "z.rpl", "--key", "k"), "cut.rpl", "truncated"
    )
    assert not (tmp_path / "z.rpl").exists()
    assert not (tmp_path / "z.rpl.partial").exists()
