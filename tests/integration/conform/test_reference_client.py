"""Each case can FAIL and can PASS: the reference client (replayer/conform/reference_client.py),
which follows the docs, PASSes every case; its wrong twin (one mistake, the one the case
catches) does not. Both runs go through the runner (a ReplayServer and a client process per
case), all cases at once: the whole catalogue twice in about half a minute."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from replayer.conform.catalogue import CATALOGUE, Case
from replayer.conform.reference_client import MISTAKES, WRONG_TWIN
from replayer.conform.runner import SCHEMA, Client, failed, run_suite

JOBS = 12  # cases at once: they mostly wait (for a reaction, a window, a heartbeat)
IDS = [c.id for c in CATALOGUE]
REFERENCE = (sys.executable, "-m", "replayer.conform.reference_client")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    right = Client("command", "reference", REFERENCE, "reference")
    wrong = Client("command", "reference", (*REFERENCE, "--mistake", "twin"), "wrong twin")
    base = tmp_path_factory.mktemp("conform")

    async def both() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                run_suite(CATALOGUE, right, base / "right", jobs=JOBS // 2),
                run_suite(CATALOGUE, wrong, base / "wrong", jobs=JOBS // 2),
            )
        )

    right_report, wrong_report = asyncio.run(both())
    return {"right": right_report, "wrong": wrong_report, "dirs": {"base": str(base)}}


def _case(report: dict[str, Any], case_id: str) -> dict[str, Any]:
    [case] = [c for c in report["cases"] if c["id"] == case_id]
    return case


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_the_right_client_passes(case: Case, runs: dict[str, Any]) -> None:
    result = _case(runs["right"], case.id)
    assert result["result"] == "PASS", result["observed"]
    # It was still running when the case ended, unless a fatal close code stopped it.
    stopped_itself = case.expected.startswith("no reconnect")
    assert result["exit"]["stopped_by"] == ("client" if stopped_itself else "replayer")
    assert result["exit"]["code"] == (0 if stopped_itself else None)


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_the_wrong_twin_does_not(case: Case, runs: dict[str, Any]) -> None:
    result = _case(runs["wrong"], case.id)
    # A broken SHOULD is NON-STRICT at worst; a broken MUST is FAIL.
    assert result["result"] in ("FAIL", "NON-STRICT"), result["observed"]
    mistake = WRONG_TWIN[case.id]
    assert mistake in MISTAKES
    log = Path(runs["dirs"]["base"]) / "wrong" / result["client_output"]
    assert f"mistake {mistake}" in log.read_text()


def test_the_report_dict(runs: dict[str, Any]) -> None:
    report = runs["right"]
    assert report["schema"] == SCHEMA
    assert report["agent"] == "reference"
    assert report["client"] == {"kind": "command", "name": "reference", "command": list(REFERENCE)}
    assert [c["id"] for c in report["cases"]] == IDS  # catalogue order, whatever finished first
    assert report["summary"]["PASS"] == len(CATALOGUE)
    assert sum(report["summary"].values()) == len(CATALOGUE)
    assert not failed(report, strict=True)
    assert failed(runs["wrong"], strict=False)
    case = _case(report, "3.1")  # op 7 after READY: a RESUME on a second connection
    assert case["plan"] == ["reconnect@event=READY"]
    assert case["rules"] == ["reconnect after READY #1"]
    timeline = case["timeline"]
    first, second = timeline["connections"][:2]
    assert first["close"]["by"] == "client"
    assert first["close"]["code"] == 4000
    assert any(f["op"] == 7 and f["dir"] == "server" for f in first["frames"])
    assert sorted(f["op"] for f in second["frames"] if f["dir"] == "client")[:2] == [1, 6]
    [fault] = timeline["faults"]
    assert fault["conn"] == 1
    assert fault["fault"] == "reconnect after READY #1"
    assert first["opened_ms"] <= fault["t_ms"] <= first["closed_ms"]
    reactions = [(r["conn"], r["what"]) for r in timeline["reactions"]]
    assert reactions[:3] == [(1, "IDENTIFY"), (1, "close 4000"), (2, "RESUME")]
    assert case["verdicts"][0]["name"] == "reconnect after READY #1"
    frames_t = [f["t_ms"] for f in first["frames"]]
    assert frames_t == sorted(frames_t)
