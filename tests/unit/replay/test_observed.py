"""The frame log (replay/observed.py) that wait_for stands on: a wait is answered by the
nth matching frame of the whole run, one already logged included; each side defaults to
the one that sends what is asked for; a predicate that raises ends its wait with that."""

from __future__ import annotations

import json
from typing import Any

import pytest

from replayer.gateway.encoding import Encoding
from replayer.gateway.opcodes import Direction
from replayer.replay.observed import Frame, FrameLog, client_frame, frame_match


def server(conn: int, op: int, t: str | None = None, s: int | None = None, d: Any = None) -> Frame:
    raw = json.dumps({"op": op, "d": d, "s": s, "t": t}).encode()
    return Frame(Direction.SERVER, conn, op, t, s, raw, Encoding.JSON)


def client(conn: int, op: int, d: Any = None) -> Frame:
    return client_frame(conn, json.dumps({"op": op, "d": d}).encode(), Encoding.JSON)


class Waiter:
    def __init__(self) -> None:
        self.got: list[Frame] = []
        self.errors: list[BaseException] = []


def watch(log: FrameLog, nth: int = 1, **match: Any) -> Waiter:
    waiter = Waiter()
    log.watch(frame_match(**match)[0], waiter.got.append, waiter.errors.append, nth)
    return waiter


def test_a_wait_is_answered_by_a_frame_already_logged_or_by_the_next_match() -> None:
    log = FrameLog()
    log.add(server(1, 10))
    log.add(server(1, 0, "READY", 1, {"session_id": "a"}))
    ready = watch(log, event="READY")
    resumed = watch(log, event="resumed")
    assert [f.d for f in ready.got] == [{"session_id": "a"}]
    assert resumed.got == []
    log.add(server(2, 0, "RESUMED", 2))
    assert [(f.conn, f.index) for f in resumed.got] == [(2, 2)]
    assert log.waiting == 0


def test_nth_counts_matches_over_the_whole_run() -> None:
    log = FrameLog()
    log.add(server(1, 0, "GUILD_CREATE", 2))
    second = watch(log, nth=2, event="GUILD_CREATE")
    log.add(server(1, 0, "MESSAGE_CREATE", 3))
    assert second.got == []
    log.add(server(1, 0, "GUILD_CREATE", 4))
    assert [f.s for f in second.got] == [4]
    with pytest.raises(ValueError, match="at least 1"):
        watch(log, nth=0, event="READY")


@pytest.mark.parametrize(
    ("match", "hits"),
    [
        ({"op": 1}, ["client 1"]),  # heartbeats: the client's by default
        ({"op": "HEARTBEAT", "direction": "server"}, ["server 1"]),
        ({"op": 1, "direction": "any"}, ["server 1", "client 1"]),
        ({"op": "RECONNECT"}, ["server 7"]),
        ({"op": "RESUME"}, ["client 6"]),
        ({"predicate": lambda f: True}, ["client 1", "client 6"]),  # the client's payloads
        ({"predicate": lambda f: f.op == 7, "direction": "server"}, ["server 7"]),
        ({"op": 99}, []),
    ],
)
def test_each_wait_looks_at_the_side_that_sends_what_it_asks_for(
    match: dict[str, Any], hits: list[str]
) -> None:
    log = FrameLog()
    frames = [server(1, 1), client(1, 1), server(1, 7), client(1, 6, {"seq": 3})]
    for frame in frames:
        log.add(frame)
    matcher, _ = frame_match(**match)
    assert [f"{f.direction.label} {f.op}" for f in frames if matcher(f)] == hits


def test_a_wait_that_could_never_match_is_refused() -> None:
    with pytest.raises(ValueError, match="needs event=, op= or predicate="):
        frame_match()
    with pytest.raises(ValueError, match="clients send no dispatches"):
        frame_match(event="READY", direction="client")
    with pytest.raises(ValueError, match="expected 'server', 'client' or 'any'"):
        frame_match(op=1, direction="up")
    with pytest.raises(ValueError, match="BOGUS"):
        frame_match(op="BOGUS")


def test_a_predicate_that_raises_ends_its_wait_with_the_error() -> None:
    log = FrameLog()
    waiter = Waiter()
    log.watch(
        frame_match(predicate=lambda f: f.d["missing"])[0], waiter.got.append, waiter.errors.append
    )
    log.add(client(1, 1))
    assert [type(e) for e in waiter.errors] == [TypeError]
    assert log.waiting == 0


def test_unwatch_and_describe() -> None:
    log = FrameLog()
    assert log.describe() == "no frames yet (no client connected?)"
    waiter = Waiter()
    handle = log.watch(frame_match(event="READY")[0], waiter.got.append, waiter.errors.append)
    log.unwatch(handle)
    log.add(server(1, 0, "READY", 1))
    log.add(client(2, 1))
    assert waiter.got == []
    assert log.describe() == "2 frames on 2 connections; the last: client HEARTBEAT on connection 2"


def test_an_undecodable_client_payload_is_logged_with_no_op() -> None:
    frame = client_frame(1, b'{"op": 0, "d', Encoding.JSON)
    assert (frame.op, frame.payload, frame.d) == (None, None, None)
    assert frame.describe() == "client undecodable payload on connection 1"
