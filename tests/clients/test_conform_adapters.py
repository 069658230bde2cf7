"""The shipped adapters drive the real libraries through a few conformance cases each
(python -m replayer.conform.adapters.NAME, started and stopped by the runner as for
``replayer conform --client NAME``). The expected results are docs/faults.md's table of
what the libraries do: discord.py and hikari both RESUME after op 7 and stop after 4004,
and both RESUME a session that close 4009 ended."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from replayer.conform.catalogue import CATALOGUE
from replayer.conform.runner import Client, run_suite

pytest.importorskip("discord")
pytest.importorskip("hikari")

EXPECTED = {
    "discord.py": {"3.1": "PASS", "5.5": "PASS", "5.9": "FAIL", "12.1": "PASS"},
    "hikari": {"3.1": "PASS", "4.1": "PASS", "5.5": "PASS", "5.9": "FAIL"},
}
MODULES = {"discord.py": "discordpy", "hikari": "hikari"}


@pytest.mark.parametrize("library", sorted(EXPECTED))
def test_adapter_runs_the_real_library(library: str, tmp_path: Path) -> None:
    expected = EXPECTED[library]
    cases = [c for c in CATALOGUE if c.id in expected]
    command = (sys.executable, "-m", f"replayer.conform.adapters.{MODULES[library]}")
    client = Client("adapter", library, command, library)
    report = asyncio.run(run_suite(cases, client, tmp_path, jobs=len(cases)))
    got = {c["id"]: c["result"] for c in report["cases"]}
    assert got == expected, [(c["id"], c["observed"]) for c in report["cases"]]
    for case in report["cases"]:
        log = (tmp_path / case["client_output"]).read_text()
        assert log.startswith(f"{library} "), log[:200]  # the library's own version line
        assert case["timeline"]["connections"], case["id"]
        fatal = case["id"] == "5.5"  # 4004: the library stops by itself
        assert case["exit"]["stopped_by"] == ("client" if fatal else "replayer"), case["exit"]


# The voice group: the cells whose outcome does not hang on discord.py's UDP reader
# timing (audio after a reconnect, 13.13 and 13.14, does: docs/conformance.md).
VOICE_EXPECTED = {"13.1": "PASS", "13.2": "FAIL", "13.7": "FAIL", "13.9": "PASS",
                  "13.11": "NON-STRICT", "13.12": "FAIL"}  # fmt: skip


def test_discordpy_adapter_joins_voice(tmp_path: Path) -> None:
    """REPLAYER_VOICE=1: the adapter joins the case's voice channel over the face's TLS
    (SSL_CERT_FILE) and plays; its voice verdicts are voice.md's table of discord.py."""
    cases = [c for c in CATALOGUE if c.id in VOICE_EXPECTED]
    command = (sys.executable, "-m", "replayer.conform.adapters.discordpy")
    client = Client("adapter", "discord.py", command, "discord.py")
    report = asyncio.run(run_suite(cases, client, tmp_path, jobs=3))
    got = {c["id"]: c["result"] for c in report["cases"]}
    assert got == VOICE_EXPECTED, [(c["id"], c["observed"]) for c in report["cases"]]
    for case in report["cases"]:
        log = (tmp_path / case["client_output"]).read_text()
        assert "joining voice channel" in log, log[-500:]
        assert any(v["name"].startswith("voice: ") for v in case["verdicts"]), case["id"]


def test_hikari_is_not_asked_to_join_voice(tmp_path: Path) -> None:
    cases = [c for c in CATALOGUE if c.voice]
    command = (sys.executable, "-m", "replayer.conform.adapters.hikari")
    report = asyncio.run(run_suite(cases, Client("adapter", "hikari", command, "hikari"), tmp_path))
    assert {c["result"] for c in report["cases"]} == {"INFO"}
    assert all(c["observed"].startswith("not applicable") for c in report["cases"])
