"""The replay engine fed arbitrary client payloads: it answers with commands (a close
with Discord's codes for what it cannot take) and never raises."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event
from hypothesis import strategies as st

from replayer.archive.jsonl import LineError
from replayer.errors import ArchiveError
from replayer.gateway.encoding import Encoding
from replayer.gateway.etf import etf_encode
from replayer.replay.engine import Abort, Close, GatewayConnection, Replay, ReplayOptions, Send
from replayer.replay.faults import FaultPlan, parse_fault
from replayer.replay.script import ArchivePayloads, load_script
from tests.archives import session_lines, write_archive

from .conftest import fuzz_pair, fuzz_target

_tmp = tempfile.TemporaryDirectory()
SCRIPT = load_script(write_archive(Path(_tmp.name) / "s.rpl", session_lines()))
PAYLOADS = ArchivePayloads(SCRIPT.path)
PLANS = [
    FaultPlan(),
    FaultPlan((parse_fault("reconnect@dispatch=2"), parse_fault("zombie@client-op=1#2"))),
    FaultPlan((parse_fault("invalid-session:true@phase=identify"),)),
    FaultPlan((parse_fault("stall:1s@dispatch=1"), parse_fault("latency:20ms@dispatch=2"))),
    FaultPlan((parse_fault("rate-limited@client-op=8"), parse_fault("withhold@phase=resume"))),
]

anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(2**63 - 2, 2**64 + 2)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["tok", "t", "sess1", "\ud800"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
# The fields the engine reads, with values of any type.
d_field = st.dictionaries(
    st.sampled_from(["token", "session_id", "seq", "shard", "properties", "intents",
                     "guild_id", "query", "limit", "nonce", "user_ids", "presences"]),
    anything | st.sampled_from([[0, 1], [0, 2], [5, 2], [-1, 1], "sess1", "tok", 1, 0]),
    max_size=5,
)  # fmt: skip
random_payload = st.fixed_dictionaries(
    {"op": st.sampled_from([1, 2, 3, 4, 6, 8, 31, 0, 7, 99, -1]) | anything},
    optional={"d": d_field | anything, "s": anything, "t": anything},
)
# Well-formed ones too, so that sessions get as far as streaming, resuming and faults.
good_payload = st.one_of(
    st.builds(lambda extra: {"op": 2, "d": {**extra, "token": "tok", "properties": {},
                                            "intents": 1}}, d_field),
    st.builds(lambda seq: {"op": 6, "d": {"token": "tok", "session_id": "sess1", "seq": seq}},
              st.integers(0, 8) | anything),
    st.builds(lambda d: {"op": 1, "d": d}, st.none() | st.integers(0, 8) | anything),
    st.builds(lambda d: {"op": 8, "d": {"guild_id": "1", "query": "", "limit": 0, **d}}, d_field),
)  # fmt: skip
# 8 in 10 well-formed: one bad payload closes the connection (4002), which ends the case.
payload = st.tuples(st.integers(0, 9), good_payload, random_payload).map(
    lambda t: t[1] if t[0] < 8 else t[2]
)


def wire(obj: Any, encoding: Encoding) -> bytes | str:
    if encoding is Encoding.ETF:
        try:
            return etf_encode(obj)
        except Exception:  # lone surrogates: the client sends something else
            return b"\x83junk"
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


message = st.tuples(
    st.sampled_from(["payload"] * 8 + ["bytes", "text"]), payload, st.binary(max_size=40)
)


@fuzz_target()
def client_session(
    encoding: Encoding,
    plan_index: int,
    path: str,
    messages: list[tuple[str, dict[str, Any], bytes]],
    gaps_ms: list[int],
    close_code: int | None,
) -> None:
    replay = Replay(SCRIPT, ReplayOptions(speed=0, token="tok"), PLANS[plan_index])
    conn = GatewayConnection(replay, encoding, PAYLOADS, path=path)
    now = 0
    commands = conn.start(now)
    for i, (how, obj, raw) in enumerate(messages):
        data: bytes | str = {"payload": wire(obj, encoding), "bytes": raw}.get(how, raw.hex())
        commands += conn.receive(data, now)
        now += gaps_ms[i % len(gaps_ms)] * 1_000_000 if gaps_ms else 1_000_000
        while (wake := conn.next_wakeup_ns()) is not None and wake <= now:
            commands += conn.tick(now)
    conn.client_closed(close_code, now)
    replay.finish(now + 60_000_000_000)
    event("READY sent" if any(getattr(c, "t", None) == "READY" for c in commands) else "no READY")
    for command in commands:
        assert isinstance(command, Send | Close | Abort), command
        if isinstance(command, Close):
            assert 1000 <= command.code <= 4999


test_client_session, test_client_session_long = fuzz_pair(
    client_session,
    encoding=st.sampled_from(list(Encoding)),
    plan_index=st.integers(0, len(PLANS) - 1),
    path=st.sampled_from(["/", "/resume/1", "/resume/x", "/resume/99"]),
    messages=st.lists(message, max_size=8),
    gaps_ms=st.lists(st.integers(0, 5000), max_size=3),
    close_code=st.none() | st.integers(1000, 4999),
)


def _recorded_session(d_ready: Any, d_dispatch: Any, d_identify: Any, etf: bool) -> list[Any]:
    lines = session_lines()
    if etf:
        lines[0]["url"] = "wss://gateway.discord.gg/?v=10&encoding=etf"
    lines[2]["payload"]["d"] = d_identify
    lines[3]["payload"]["d"] = d_ready
    lines[4]["payload"]["d"] = d_dispatch
    return lines


@fuzz_target(ArchiveError, LineError)
def recorded_values(
    d_ready: Any, d_dispatch: Any, d_identify: Any, etf: bool, client_etf: bool
) -> None:
    # Whatever the recording holds, a client that does everything right gets commands.
    path = Path(_tmp.name) / "r.rpl"
    path.unlink(missing_ok=True)  # one file, rewritten for each example
    write_archive(path, _recorded_session(d_ready, d_dispatch, d_identify, etf))
    script = load_script(path)
    encoding = Encoding.ETF if client_etf else Encoding.JSON
    payloads = ArchivePayloads(path)
    try:
        replay = Replay(script, ReplayOptions(speed=0))
        conn = GatewayConnection(replay, encoding, payloads)
        commands = conn.start(0)
        good = {"op": 2, "d": {"token": "t", "properties": {}, "intents": 1}}
        commands += conn.receive(wire(good, encoding), 0)
        commands += conn.receive(wire({"op": 1, "d": 1}, encoding), 1)
        while (wake := conn.next_wakeup_ns()) is not None and wake <= 10**10:
            commands += conn.tick(wake)
        replay.finish(10**11)
    finally:
        payloads.close()
    assert all(isinstance(c, Send | Close | Abort) for c in commands)


test_recorded_values, test_recorded_values_long = fuzz_pair(
    recorded_values,
    d_ready=anything | d_field,
    d_dispatch=anything | d_field,
    d_identify=anything | d_field,
    etf=st.booleans(),
    client_etf=st.booleans(),
)
