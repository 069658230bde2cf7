"""The marker's keywords: the plugin's own, and every other one a ReplayOptions field by
name (``options={...}`` the same, and winning), with the documented conversions; an
unknown name is one usage error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from replayer.pytest_plugin import GatewaySettings, replay_options
from replayer.replay.engine import ReplayOptions
from replayer.replay.starts import SessionStartLimit
from replayer.resources import sample_archive

pytest_plugins = ["pytester"]


def options(**marker: Any) -> ReplayOptions:
    return replay_options(GatewaySettings(Path("a.rpl"), options=marker), [])


def test_the_plugin_replays_at_speed_0_and_otherwise_as_replay_options() -> None:
    assert options() == ReplayOptions(speed=0.0)


def test_marker_keys_are_replay_options_by_name() -> None:
    got = options(close_at_end=4000, heartbeat_interval_ms=500, rate_limit=False, token="t")
    assert (got.close_at_end, got.heartbeat_interval_ms, got.rate_limit, got.token) == (
        4000,
        500,
        False,
        "t",
    )


def test_session_start_limit_and_grant_intents_are_taken_as_the_cli_takes_them() -> None:
    got = options(session_start_limit={"remaining": 3}, grant_intents="members")
    assert isinstance(got.session_start_limit, SessionStartLimit)
    assert got.session_start_limit.remaining == 3
    assert got.grant_intents == 1 << 1
    text = options(session_start_limit="remaining=2,max_concurrency=4").session_start_limit
    assert text == SessionStartLimit(remaining=2, max_concurrency=4)  # over Discord's default
    with pytest.raises(pytest.UsageError, match="session_start_limit"):
        options(session_start_limit="remaining=lots")


def test_an_unknown_option_is_one_usage_error() -> None:
    with pytest.raises(pytest.UsageError, match="no such replay option rate_limitt, spede"):
        options(rate_limitt=False, spede=2)


MARKED = """
import pytest

@pytest.mark.replayer(archive={archive!r}, at_end=4000, speed=2, options={{"speed": 3}})
def test_keys(replayer_gateway):
    options = replayer_gateway._server.options
    assert (options.close_at_end, options.speed) == (4000, 3)
"""


def test_the_marker_folds_its_keys_into_options(pytester: pytest.Pytester) -> None:
    archive = sample_archive("small-bot.rpl")
    pytester.makepyfile(MARKED.format(archive=str(archive)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
