"""``replayer conform`` and ``replayer test`` as a user runs them: the catalogue listing,
--client-cmd with a small program that reads the environment, the report directory, the
exit status, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from replayer.conform.catalogue import CATALOGUE
from replayer.conform.runner import FAKE_TOKEN
from replayer.resources import sample_archive

ENV_CLIENT = Path(__file__).with_name("env_client.py")
ROOT = Path(__file__).parents[3]
SMALL = sample_archive("small-bot.rpl")


def replayer(
    *args: str, env_out: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    if env_out is not None:
        env["REPLAYER_ENV_OUT"] = str(env_out)
    return subprocess.run(
        [sys.executable, "-m", "replayer", *args],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip


def client_cmd(*extra: str) -> str:
    return " ".join([sys.executable, str(ENV_CLIENT), *extra])


def test_list_prints_the_catalogue_in_80_columns() -> None:
    done = replayer("conform", "--list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == f"{len(CATALOGUE)} cases"
    assert max(map(len, lines)) <= 80
    assert "3.1   op 7 RECONNECT right after READY" in done.stdout
    assert "plan: reconnect@event=READY" in done.stdout
    listed = replayer("conform", "--list", "--cases", "5.*", "--exclude", "5.1")
    ids = [
        line.split()[0]
        for line in listed.stdout.splitlines()
        if line[:1].isdigit() and "." in line.split()[0]
    ]
    assert ids == [c.id for c in CATALOGUE if c.group == 5 and c.id != "5.1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cases", "3.x"), "--cases: '3.x' is not a case pattern"),
        (("--exclude", "1..2", "--client", "reference"), "--exclude: '1..2' is not a case pattern"),
        (("--client", "nope"), "--client: 'nope' is not one of discord.py, hikari, reference"),
        ((), "give one of --client"),
        (("--client", "reference", "--client-cmd", "x"), "give one of --client"),
        (("--client-cmd", "'unclosed"), '--client-cmd: "\'unclosed" cannot be split'),
        (("--client", "reference", "--cases", "99"), "no case selected"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    done = replayer("conform", "--report-dir", str(tmp_path / "r"), *args)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def _results(report_dir: Path) -> dict[str, Any]:
    return json.loads((report_dir / "results.json").read_text())


def test_client_cmd_gets_the_environment_and_passes(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    env_out = tmp_path / "env"
    done = replayer(
        "conform", "--client-cmd", client_cmd(), "--cases", "3.1,5.5", "-j", "2",
        "--report-dir", str(report_dir), "--agent", "env client 1.0", env_out=env_out,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = _results(report_dir)
    assert report["agent"] == "env client 1.0"
    assert report["client"]["kind"] == "command"
    assert report["client"]["command"] == [sys.executable, str(ENV_CLIENT)]
    assert [c["id"] for c in report["cases"]] == ["3.1", "5.5"]
    assert [c["result"] for c in report["cases"]] == ["PASS", "PASS"]
    assert report["summary"]["PASS"] == 2
    for case in ("3.1", "5.5"):
        seen = json.loads(Path(f"{env_out}.{case}").read_text())
        assert seen["problems"] == []
        assert seen["env"]["REPLAYER_TOKEN"] == FAKE_TOKEN
        assert seen["env"]["REPLAYER_CASE"] == case
        log = (report_dir / "cases" / case / "client.log").read_text()
        assert f"env client: case {case}, problems []" in log
    # The summary table on the terminal, one row per case.
    assert "3.1" in done.stdout
    assert "env client 1.0: 2 PASS" in done.stdout
    # An existing report is not written over without --force.
    again = replayer("conform", "--client-cmd", client_cmd(), "--cases", "3.1",
                     "--report-dir", str(report_dir), env_out=env_out)  # fmt: skip
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert _results(report_dir)["agent"] == "env client 1.0"


def test_a_failing_case_exits_1_and_strict_counts_non_strict(tmp_path: Path) -> None:
    env_out = tmp_path / "env"
    failing = replayer("conform", "--client-cmd", client_cmd("--mistake", "twin"), "--cases", "3.1",
                       "--report-dir", str(tmp_path / "a"), env_out=env_out)  # fmt: skip
    assert failing.returncode == 1
    assert _results(tmp_path / "a")["cases"][0]["result"] == "FAIL"
    # 8.1's twin RESUMEs on the gateway URL: NON-STRICT, a failure only with --strict.
    lenient = replayer("conform", "--client-cmd", client_cmd("--mistake", "twin"), "--cases", "8.1",
                       "--report-dir", str(tmp_path / "b"), env_out=env_out)  # fmt: skip
    assert lenient.returncode == 0, lenient.stdout
    assert _results(tmp_path / "b")["cases"][0]["result"] == "NON-STRICT"
    strict = replayer("conform", "--client-cmd", client_cmd("--mistake", "twin"), "--cases", "8.1",
                      "--strict", "--report-dir", str(tmp_path / "c"), env_out=env_out)  # fmt: skip
    assert strict.returncode == 1
    assert _results(tmp_path / "c")["strict"] is True


def test_the_report_dir_holds_junit_and_html_and_runs_merge(tmp_path: Path) -> None:
    env_out = tmp_path / "env"
    right = replayer("conform", "--client-cmd", client_cmd(), "--cases", "3.1", "--agent", "right",
                     "--report-dir", str(tmp_path / "a"), env_out=env_out)  # fmt: skip
    wrong = replayer("conform", "--client-cmd", client_cmd("--mistake", "twin"), "--cases", "3.1",
                     "--agent", "wrong", "--report-dir", str(tmp_path / "b"), env_out=env_out)  # fmt: skip
    assert (right.returncode, wrong.returncode) == (0, 1), right.stderr + wrong.stderr
    suite = ElementTree.parse(tmp_path / "b" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert "expected:" in failure.get("message", "")
    assert (tmp_path / "a" / "cases" / "3.1.html").is_file()
    merged = replayer("conform", "--merge", str(tmp_path / "a"), str(tmp_path / "b"),
                      "-o", str(tmp_path / "m"))  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    page = (tmp_path / "m" / "index.html").read_text()
    assert "right" in page
    assert "wrong" in page
    assert "FAIL" in page
    assert "PASS" in page
    # -o without --merge, and --merge without directories: one line each, exit 1.
    for args in (("-o", str(tmp_path / "x")), ("--merge", "-o", str(tmp_path / "x"))):
        bad = replayer("conform", *args)
        assert bad.returncode == 1
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr


# --- replayer test ---------------------------------------------------------------------


def test_replayer_test_runs_the_command_until_the_verdicts_are_in(tmp_path: Path) -> None:
    env_out = tmp_path / "env"
    args = ("test", str(SMALL), "--speed", "0", "--heartbeat-interval", "1s",
            "-f", "reconnect@event=READY", "--check", "--report", str(tmp_path / "v.json"))  # fmt: skip
    done = replayer(*args, "--", sys.executable, str(ENV_CLIENT), env_out=env_out)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(Path(f"{env_out}.test").read_text())
    assert seen["problems"] == []
    assert "the command stopped by SIGTERM (when the verdicts were in)" in done.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["verdicts"][0]["name"] == "reconnect after READY #1"
    assert report["verdicts"][0]["result"] == "PASS"
    # The same with a client that IDENTIFYs where it must RESUME: --check fails the run.
    wrong = replayer(*args[:-2], "--", sys.executable, str(ENV_CLIENT), "--mistake",
                     "identify-instead-of-resume", env_out=env_out)  # fmt: skip
    assert wrong.returncode == 1
    assert "IDENTIFY instead of RESUME" in wrong.stderr


def test_replayer_test_reports_the_commands_own_exit(tmp_path: Path) -> None:
    done = replayer("test", str(SMALL), "--", sys.executable, "-c", "import sys; sys.exit(7)")
    assert "the command exited with 7 (by itself)" in done.stderr
    assert "never connected" in done.stderr
    missing = replayer("test", str(SMALL), "--", str(tmp_path / "no-such-program"))
    assert missing.returncode == 1
    assert "no such command" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_stops_the_clients_too(sig: signal.Signals, tmp_path: Path) -> None:
    """The clients run in sessions of their own (a Ctrl-C at the terminal does not reach
    them): an interrupted run (SIGINT, SIGTERM) stops them itself, says so in one line
    and exits 130."""
    env_out = tmp_path / "env"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPLAYER_ENV_OUT": str(env_out)}
    # 1.2: HELLO never comes, and the wrong twin waits for it for ever.
    args = ["conform", "--client-cmd", client_cmd("--mistake", "twin"), "--cases", "1.2",
            "--report-dir", str(tmp_path / "r")]  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-m", "replayer", *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as process:  # fmt: skip
        seen = Path(f"{env_out}.1.2")
        deadline = time.monotonic() + 30
        while not seen.exists() or not seen.read_text():
            assert time.monotonic() < deadline, "the client never started"
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)  # polling a file another process writes: nothing to wait on
        pid = json.loads(seen.read_text())["pid"]
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted: no report written" in stderr
    assert "Traceback" not in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the client is gone
    assert not (tmp_path / "r" / "results.json").exists()
