"""A case a shipped adapter cannot be asked to do (voice, for hikari) is INFO, "not
applicable", with nothing started; the report reads and renders it like any case."""

from __future__ import annotations

import asyncio
from pathlib import Path

from replayer.conform.catalogue import CATALOGUE
from replayer.conform.reports import write_reports
from replayer.conform.reports.schema import parse_report
from replayer.conform.runner import Client, failed, not_applicable, run_suite

VOICE = [c for c in CATALOGUE if c.voice]
HIKARI = Client("adapter", "hikari", ("false",), "hikari 2.7.0")


def test_voice_cases_are_not_for_hikari_and_nothing_runs(tmp_path: Path) -> None:
    report = asyncio.run(run_suite(VOICE, HIKARI, tmp_path, jobs=4))
    assert [c["result"] for c in report["cases"]] == ["INFO"] * len(VOICE)
    for case in report["cases"]:
        assert case["observed"] == "not applicable: hikari has no voice client (not run)"
        assert case["client_output"] is None
        assert case["timeline"]["connections"] == []
    assert report["summary"]["INFO"] == len(VOICE)
    assert not failed(report, strict=True)
    assert not (tmp_path / "cases").exists()  # no client, no server, no voice CA
    assert not (tmp_path / "voice-ca").exists()
    parse_report(report)
    write_reports(report, tmp_path)
    page = (tmp_path / "cases" / f"{VOICE[0].id}.html").read_text()
    assert "not applicable: hikari has no voice client" in page


def test_only_the_named_adapters_are_left_out() -> None:
    case = VOICE[0]
    assert not_applicable(case, HIKARI) == "hikari has no voice client"
    assert not_applicable(case, Client("adapter", "discord.py", ("x",), "discord.py")) is None
    # A command that happens to be called hikari is run: it may well speak voice.
    assert not_applicable(case, Client("command", "hikari", ("hikari",), "hikari")) is None
    assert all(not_applicable(c, HIKARI) is None for c in CATALOGUE if not c.voice)
