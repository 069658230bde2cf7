"""docs/pytest.md runs as pasted: each ```python and ```ini block that names its file on
its first line (``# conftest.py``) is written into a fresh pytester project, with the
sample archive where the page's setup puts it, and pytest runs them all: every test
passes. Then the first discord.py example with a bot that cannot RESUME (it IDENTIFYs
instead) must fail with the verdicts, not a bare TimeoutError."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from replayer.resources import sample_archive

pytest_plugins = ["pytester"]

DOC = Path(__file__).parents[2] / "docs" / "pytest.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# The page's setup step, as it says it (the test does the same copy).
COPY = "shutil.copy(sample_archive('small-bot.rpl'), 'recordings/')"
# A bot that cannot RESUME: discord.py IDENTIFYs where it would RESUME.
BROKEN = """

import discord.gateway


async def _identify_instead(self):
    await self.identify()


discord.gateway.DiscordWebSocket.resume = _identify_instead
"""


def documented_files() -> dict[str, str]:
    """File name -> content, for every block whose first line is ``# NAME``."""
    files: dict[str, str] = {}
    for lang, body in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        first = body.split("\n", 1)[0]
        if lang in ("python", "ini") and re.fullmatch(r"# [\w./-]+\.(py|ini)", first):
            assert first[2:] not in files, f"{first[2:]} twice in {DOC.name}"
            files[first[2:]] = body
    return files


def project(pytester: pytest.Pytester) -> dict[str, str]:
    assert COPY in DOC.read_text(encoding="utf-8")
    files = documented_files()
    for name, body in files.items():
        (pytester.path / name).write_text(body, encoding="utf-8")
    (pytester.path / "recordings").mkdir()
    shutil.copy(sample_archive("small-bot.rpl"), pytester.path / "recordings")
    return files


def test_the_page_documents_settings_a_conftest_and_examples() -> None:
    files = documented_files()
    assert {"pytest.ini", "conftest.py", "test_discordpy.py", "test_hikari.py"} <= set(files)
    for name, body in files.items():
        compile(body, name, "exec")  # every python block is whole
        assert "lambda" not in body or "subscribe" not in body  # hikari wants typed callbacks


def test_every_example_passes_as_pasted(pytester: pytest.Pytester) -> None:
    files = project(pytester)
    tests = sum(body.count("\nasync def test_") for body in files.values())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=tests)
    assert tests >= 3


def test_a_bot_that_cannot_resume_fails_with_the_verdicts(pytester: pytest.Pytester) -> None:
    files = project(pytester)
    (pytester.path / "conftest.py").write_text(files["conftest.py"] + BROKEN, encoding="utf-8")
    example = pytester.path / "test_discordpy.py"
    example.write_text(
        files["test_discordpy.py"].replace("timeout=30", "timeout=5"), encoding="utf-8"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_discordpy.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *WaitTimeout: replayer_gateway.wait_for: no dispatch RESUMED (sent by the replay) within 5 s; *",
            "E *verdicts so far:",
            "E *reconnect after MESSAGE_CREATE #2: expected a new connection that RESUMEs*",
            "*- replayer verdicts -*",
            "FAIL reconnect after MESSAGE_CREATE #2: *",
        ]
    )
