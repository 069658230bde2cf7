"""Session starts and identify concurrency (#15 item 6): the pure limiter, its parser of
user input, and the engine's IDENTIFY answered by it (Events > Gateway > Identifying;
Sharding > Max Concurrency; Session Start Limit Object)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.archive.records import HttpRecord
from replayer.replay.engine import Close, GatewayConnection, Send, State
from replayer.replay.starts import (
    FIELDS,
    Admission,
    SessionStartLimit,
    SessionStarts,
    StartLimitError,
    limit_for,
    recorded_limit,
)
from replayer.replay.verdicts import Result
from tests.archives import session_lines
from tests.unit.replay.conftest import Harness

MS = 1_000_000
S = 1000 * MS


def gateway_bot(limit: Any, status: int = 200, path: str = "/api/v10/gateway/bot") -> HttpRecord:
    body = json.dumps(
        {"url": "wss://gateway.discord.gg", "shards": 1, "session_start_limit": limit}
    )
    return HttpRecord(0, "GET", "discord.com", path, status, response_body=body.encode())


# --- the limit served ----------------------------------------------------------------------


def test_the_archive_limit_is_served_else_discords_default() -> None:
    recorded = {"total": 1000, "remaining": 998, "reset_after": 86_000_000, "max_concurrency": 16}
    assert recorded_limit([gateway_bot(recorded)]) == SessionStartLimit(1000, 998, 86_000_000, 16)
    assert recorded_limit([gateway_bot(recorded, path="/api/v9/gateway/bot?x=1")]) is not None
    assert recorded_limit([gateway_bot(recorded, status=429)]) is None  # not an answer
    assert recorded_limit([]) is None
    assert limit_for([], None) == SessionStartLimit(1000, 1000, 86_400_000, 1)
    given_limit = SessionStartLimit(5, 5, 0, 2)
    assert limit_for([gateway_bot(recorded)], given_limit) == given_limit


def test_a_recorded_limit_with_bad_fields_keeps_the_defaults_for_them() -> None:
    odd = {"total": "many", "remaining": -1, "max_concurrency": 0}
    assert recorded_limit([gateway_bot(odd)]) == SessionStartLimit(1000, 1000, 86_400_000, 1)


def test_remaining_counts_identifies_and_resets_after_reset_after() -> None:
    starts = SessionStarts(SessionStartLimit(total=10, remaining=3, reset_after_ms=60_000))
    assert starts.current(0).to_json() == {
        "total": 10, "remaining": 3, "reset_after": 60_000, "max_concurrency": 1,
    }  # fmt: skip
    assert starts.identify(1, 0, 1 * S) is Admission.START
    assert starts.current(2 * S).to_json()["remaining"] == 2
    assert starts.current(2 * S).reset_after_ms == 58_000
    # reset_after elapsed: a new 24-hour period with `total` starts.
    assert starts.current(60 * S).to_json() == {
        "total": 10, "remaining": 10, "reset_after": 86_400_000, "max_concurrency": 1,
    }  # fmt: skip


# --- concurrency -----------------------------------------------------------------------------


def test_one_identify_per_5_s_in_each_bucket() -> None:
    starts = SessionStarts(SessionStartLimit(max_concurrency=2))
    assert [starts.bucket(i) for i in range(4)] == [0, 1, 0, 1]
    assert starts.identify(1, 0, 0) is Admission.START
    assert starts.identify(2, 1, 0) is Admission.START  # bucket 1: concurrently
    assert starts.identify(3, 2, 4_999 * MS) is Admission.RATE_LIMITED  # bucket 0 again
    assert starts.identify(3, 2, 5 * S) is Admission.START
    assert starts.remaining == 997  # the refused one spent nothing


def test_the_concurrency_switch_lets_every_identify_through() -> None:
    starts = SessionStarts(concurrency=False)
    assert [starts.identify(n, 0, 0) for n in (1, 2, 3)] == [Admission.START] * 3
    assert [v.name for v in starts.verdicts()] == ["session starts"]  # no concurrency verdict


def test_no_starts_left_is_refused_unless_the_switch_is_off() -> None:
    starts = SessionStarts(SessionStartLimit(remaining=1))
    assert starts.identify(1, 0, 0) is Admission.START
    assert starts.identify(2, 0, 5 * S) is Admission.EXHAUSTED
    lax = SessionStarts(SessionStartLimit(remaining=1), enforce=False)
    assert lax.identify(1, 0, 0) is Admission.START
    assert lax.identify(2, 0, 5 * S) is Admission.START
    assert lax.current(5 * S).remaining == 0  # served as 0, never below


# --- verdicts ------------------------------------------------------------------------------


def test_verdicts_pass_for_a_client_that_keeps_the_rules() -> None:
    starts = SessionStarts(SessionStartLimit(max_concurrency=2))
    assert starts.verdicts() == []  # nothing to judge
    starts.identify(1, 0, 0)
    assert [(v.name, v.result) for v in starts.verdicts()] == [("session starts", Result.PASS)]
    starts.identify(2, 1, 0)
    by_name = {v.name: v for v in starts.verdicts()}
    assert by_name["session starts"].observed == "2 session starts, 998 of 1000 left"
    assert by_name["identify concurrency"].result is Result.PASS
    assert by_name["identify concurrency"].observed == "2 IDENTIFYs, none refused"


def test_verdicts_name_what_a_wrong_client_did() -> None:
    starts = SessionStarts(SessionStartLimit(total=2, remaining=2))
    starts.identify(1, 0, 0)
    starts.identify(2, 0, 1 * S)  # too soon
    starts.identify(3, 0, 6 * S, could_resume="sess1")  # burned where it could RESUME
    starts.identify(4, 0, 12 * S)  # none left
    by_name = {v.name: v for v in starts.verdicts()}
    concurrency = by_name["identify concurrency"]
    assert concurrency.result is Result.NON_STRICT
    assert concurrency.observed == (
        "4 IDENTIFYs, 1 refused with op 9: connection 2 (shard 0, bucket 0, 1.0 s into the replay)"
    )
    session_starts = by_name["session starts"]
    assert session_starts.result is Result.FAIL
    assert session_starts.observed == (
        "2 session starts, 0 of 2 left; 1 where a RESUME would do: connection 3 (shard 0, "
        "session sess1 resumable); 1 with none left, closed 4004 as Discord resets the "
        "token: connection 4"
    )


def test_a_burned_start_alone_is_non_strict_and_examples_are_bounded() -> None:
    starts = SessionStarts(concurrency=False)
    for n in range(1, 9):
        starts.identify(n, 0, n * S, could_resume="s")
    [verdict] = starts.verdicts()
    assert verdict.result is Result.NON_STRICT
    assert verdict.observed.endswith("connection 5 (shard 0, session s resumable) and 3 more")


# --- the user's KEY=N,... ------------------------------------------------------------------

values = st.fixed_dictionaries(
    {},
    optional={
        "total": st.integers(0, 10**9),
        "remaining": st.integers(0, 10**9),
        "reset_after": st.integers(0, 10**12),
        "max_concurrency": st.integers(1, 10**4),
    },
)


@given(values)
def test_overrides_replace_exactly_the_fields_given(given_values: dict[str, int]) -> None:
    base = SessionStartLimit(7, 6, 5, 4)
    text = ",".join(f"{k}={v}" for k, v in given_values.items())
    assert base.with_overrides(text).to_json() == {**base.to_json(), **given_values}


@given(st.text(max_size=40))
def test_any_text_is_a_limit_or_one_error_naming_the_part(text: str) -> None:
    error: StartLimitError | None = None
    try:
        limit = SessionStartLimit().with_overrides(text)
    except StartLimitError as exc:
        error = exc
    if error is not None:
        assert any(name in str(error) for name in FIELDS) or "KEY=" in str(error)
    else:
        assert limit.max_concurrency >= 1
        assert min(limit.total, limit.remaining, limit.reset_after_ms) >= 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("remaining", "'remaining': expected KEY=INTEGER with KEY one of total, remaining, "
         "reset_after, max_concurrency"),
        ("shards=2", "'shards=2': expected KEY=INTEGER"),
        ("remaining=lots", "remaining: 'lots' is not an integer"),
        ("max_concurrency=0", "max_concurrency: 0 is below 1"),
        ("total=-1", "total: -1 is below 0"),
    ],
)  # fmt: skip
def test_bad_overrides_say_which_field(text: str, message: str) -> None:
    with pytest.raises(StartLimitError, match="^" + message.replace("(", r"\(")):
        SessionStartLimit().with_overrides(text)


# --- the engine's IDENTIFY -----------------------------------------------------------------


def hello(h: Harness, now: int = 0) -> GatewayConnection:
    conn = h.connect()
    conn.start(now)
    return conn


def identify(conn: GatewayConnection, now: int, shard: list[int] | None = None) -> list[Any]:
    d: dict[str, Any] = {"token": "t", "properties": {}, "intents": 1}
    if shard is not None:
        d["shard"] = shard
    return conn.receive(json.dumps({"op": 2, "d": d}).encode(), now)


def first(commands: list[Any]) -> tuple[Any, ...]:
    c = commands[0]
    if isinstance(c, Close):
        return ("close", c.code, c.reason)
    assert isinstance(c, Send)
    obj = json.loads(c.raw)
    return (obj["op"], obj["t"], obj["d"] if obj["op"] == 9 else None)


READY = (0, "READY", None)
OP9 = (9, None, False)


def test_an_identify_too_soon_gets_op9_and_may_identify_again(
    harness: Callable[..., Harness],
) -> None:
    h = harness(speed=0)
    assert first(identify(hello(h), 0)) == READY
    second = hello(h, 1 * S)
    assert first(identify(second, 1 * S)) == OP9
    assert second.state is State.AWAIT_IDENTIFY
    assert second.session is None
    assert first(identify(second, 5 * S)) == READY  # the same socket, 5 s after the first
    assert len(h.replay.sessions) == 2
    verdict = {v.name: v for v in h.replay.finish(10 * S)}["identify concurrency"]
    assert verdict.result is Result.NON_STRICT


def test_resumes_spend_no_session_start(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, session_start_limit=SessionStartLimit(remaining=1))
    conn = hello(h)
    identify(conn, 0)
    conn.client_closed(4000, 1 * S)
    for n in range(3):
        again = hello(h, (2 + n) * S)
        resume = {"token": "t", "session_id": "sess1", "seq": 0}
        out = again.receive(json.dumps({"op": 6, "d": resume}).encode(), (2 + n) * S)
        assert any(isinstance(c, Send) and c.t == "RESUMED" for c in out)
        again.client_closed(4000, (2 + n) * S + 1)
    assert h.replay.starts.current(10 * S).remaining == 0
    [verdict] = [v for v in h.replay.finish(10 * S) if v.name == "session starts"]
    assert (verdict.result, verdict.observed) == (Result.PASS, "1 session start, 0 of 1000 left")


def test_an_identify_with_no_starts_left_gets_4004(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, session_start_limit=SessionStartLimit(remaining=1))
    identify(hello(h), 0)
    assert first(identify(hello(h, 5 * S), 5 * S)) == (
        "close", 4004, "no session starts remaining",
    )  # fmt: skip
    off = harness(
        speed=0,
        session_start_limit=SessionStartLimit(remaining=1),
        enforce_session_start_limit=False,
    )
    identify(hello(off), 0)
    assert first(identify(hello(off, 5 * S), 5 * S)) == READY


def test_the_concurrency_switch_turns_op9_off(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, identify_concurrency=False)
    assert [first(identify(hello(h), 0)) for _ in range(3)] == [READY] * 3


def test_shards_in_different_buckets_start_together(harness: Callable[..., Harness]) -> None:
    lines = session_lines(shard=(0, 2)) + session_lines(shard=(1, 2), conn=2, t0_ms=1)
    lines.sort(key=lambda o: o["t_ms"])
    limit = SessionStartLimit(max_concurrency=2)
    h = harness(lines, speed=0, session_start_limit=limit)
    assert first(identify(hello(h), 0, [0, 2])) == READY
    assert first(identify(hello(h), 0, [1, 2])) == READY
    one = harness(lines, speed=0)  # max_concurrency 1: one bucket
    assert first(identify(hello(one), 0, [0, 2])) == READY
    assert first(identify(hello(one), 0, [1, 2])) == OP9


def test_identify_where_a_resume_would_do_is_non_strict(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0)
    conn = hello(h)
    identify(conn, 0)
    conn.client_closed(4000, 1 * S)  # 4000: the session may be resumed
    identify(hello(h, 6 * S), 6 * S)
    verdict = {v.name: v for v in h.replay.finish(20 * S)}["session starts"]
    assert verdict.result is Result.NON_STRICT
    assert "connection 2 (shard 0, session sess1 resumable)" in verdict.observed
    # Nothing to resume once the client ended the session itself with 1000.
    clean = harness(speed=0)
    conn = hello(clean)
    identify(conn, 0)
    conn.client_closed(1000, 1 * S)
    identify(hello(clean, 6 * S), 6 * S)
    verdict = {v.name: v for v in clean.replay.finish(20 * S)}["session starts"]
    assert verdict.result is Result.PASS
