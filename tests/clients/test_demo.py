"""``replayer demo``, the README's first command, end to end: a real discord.py bot through
the recorder against a replay of the bundled sample, with its two faults judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from replayer.archive.reader import read_records
from replayer.archive.records import FrameRecord


def test_the_demo_records_the_bot_and_passes_its_verdicts(tmp_path: Path) -> None:
    archive = tmp_path / "demo.rpl"
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "demo", "--output", str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reconnect after MESSAGE_CREATE #3" in result.stdout
    assert "invalid-session d=false after MESSAGE_CREATE #6" in result.stdout
    assert " 0 failed" in result.stdout
    _, records = read_records(archive)
    frames = [r for r in records if isinstance(r, FrameRecord)]
    assert any(f.t == "READY" for f in frames)
    assert b"token-that-never-reaches-the-disk" not in archive.read_bytes()
