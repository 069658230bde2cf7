"""``replayer.archive.diff``: an archive is the same as itself whatever is in it, one changed
value is found at its path, and what differs on every run (times, ports, session ids, nonces,
heartbeat d, compression) is not a difference."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from replayer.archive.diff import MISSING, diff_records, normalize, value_differences
from replayer.archive.records import ConnectionRecord, FrameRecord, FrameType, Query, Record
from replayer.gateway.encoding import Encoding, encode_payload
from replayer.gateway.opcodes import Direction
from tests.unit.archive.strategies import json_value, sessions


@given(sessions())
def test_an_archive_is_the_same_as_itself(records: list[Record]) -> None:
    assert list(diff_records(records, records)) == []


@given(json_value)
def test_a_value_is_the_same_as_itself(value: Any) -> None:
    assert list(value_differences(value, value)) == []


# A path into a JSON value and the value there: (["d", "guilds", 0, "name"], "x").
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    found = [(prefix, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _text_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return copy


@given(st.data())
def test_a_single_changed_value_is_found_at_its_path(data: st.DataObject) -> None:
    d = data.draw(st.dictionaries(st.sampled_from("abcdefgh"), json_value, min_size=1, max_size=4))
    payload = {"op": 0, "d": d, "s": 1, "t": "MESSAGE_CREATE"}
    leaves = [
        (p, v) for p, v in _paths(payload) if p[:1] == ("d",) and not isinstance(v, dict | list)
    ]
    path, old = data.draw(st.sampled_from(leaves)) if leaves else (("d", "a"), d.get("a", MISSING))
    new = data.draw(st.integers(2**60, 2**61) | st.text(min_size=21, max_size=25))  # never `old`
    changed = _replaced(payload, path, new)
    a = _session(payload)
    b = _session(changed)
    found = list(diff_records(a, b))
    assert [(f.path, f.value_a, f.value_b) for f in found] == [(_text_path(path), old, new)]
    assert (found[0].record_a, found[0].record_b) == (2, 2)  # the header is record 0
    assert found[0].direction == Direction.SERVER
    assert found[0].what == "DISPATCH MESSAGE_CREATE"


def _session(
    payload: dict[str, Any],
    *,
    encoding: str = "json",
    compress: str | None = None,
    url: str = "ws://127.0.0.1:1234/",
) -> list[Record]:
    raw = encode_payload(payload, Encoding(encoding))
    return [
        ConnectionRecord(1, 0, url, Query(v=10, encoding=encoding, compress=compress)),
        FrameRecord(
            1,
            5,
            Direction.SERVER,
            FrameType.BINARY if encoding == "etf" else FrameType.TEXT,
            payload=raw,
            op=payload["op"],
            s=payload.get("s"),
            t=payload.get("t"),
            wire_size=len(raw),
        ),
    ]


def test_what_differs_on_every_run_is_ignored() -> None:
    ready = {
        "op": 0,
        "s": 1,
        "t": "READY",
        "d": {
            "session_id": "a1",
            "resume_gateway_url": "ws://127.0.0.1:4000/",
            "user": {"id": "9"},
            "_trace": ["x"],
        },
    }
    other = json.loads(json.dumps(ready))
    other["d"].update(session_id="b2", resume_gateway_url="ws://127.0.0.1:5000/", _trace=["y", "z"])
    a = _session(ready, url="ws://127.0.0.1:4000/?v=10")
    b = _session(other, url="ws://127.0.0.1:5000/?v=10", compress="zstd-stream")
    b = [dataclasses.replace(r, t_ns=r.t_ns + 10**9) for r in b]  # type: ignore[type-var]
    assert list(diff_records(a, b)) == []
    assert list(diff_records(_session({"op": 1, "d": 5}), _session({"op": 1, "d": 9}))) == []
    # The same payloads in ETF: only the connection's asking for ETF differs, no frame.
    [etf] = diff_records(_session(ready), _session(ready, encoding="etf"))
    assert (etf.what, etf.path, etf.value_a, etf.value_b) == (
        "connection",
        "encoding",
        "json",
        "etf",
    )
    nonce_a = {"op": 8, "d": {"guild_id": "1", "nonce": "n1"}}
    nonce_b = {"op": 8, "d": {"guild_id": "1", "nonce": "n2"}}
    assert list(diff_records(_session(nonce_a), _session(nonce_b))) == []
    assert (
        normalize("see https://discord.com:443/api and wss://x.y/")
        == "see https://HOST/api and wss://HOST/"
    )


def test_a_missing_frame_and_a_missing_connection_are_differences() -> None:
    a = _session({"op": 10, "d": {"heartbeat_interval": 1}})
    b = a[:1]
    [missing] = diff_records(a, b)
    assert (missing.what, missing.record_a, missing.record_b, missing.value_b) == (
        "HELLO",
        2,
        None,
        MISSING,
    )
    [conn] = diff_records(a, [])
    assert conn.what == "connection"
    assert conn.value_b == MISSING


def test_voice_frames_go_by_voice_names_and_their_heartbeat_nonces_are_ignored() -> None:
    """On a voice connection op 8 is HELLO (not REQUEST_GUILD_MEMBERS), op 6 HEARTBEAT_ACK
    (its d a nonce, ignored as the gateway's heartbeat d is) and op 4 SESSION_DESCRIPTION."""
    from replayer.archive.reader import read_records
    from replayer.archive.records import ConnectionKind
    from replayer.resources import sample_archive
    from replayer.voice.opcodes import VoiceOp

    _, records = read_records(sample_archive("voice-bot.rpl"))
    voice = {
        r.conn_id
        for r in records
        if isinstance(r, ConnectionRecord) and r.kind is ConnectionKind.VOICE
    }

    def changed(record: Record) -> Record:
        if not (isinstance(record, FrameRecord) and record.conn_id in voice):
            return record
        if record.op in (
            VoiceOp.HELLO,
            VoiceOp.HEARTBEAT_ACK,
            VoiceOp.HEARTBEAT,
            VoiceOp.SESSION_DESCRIPTION,
        ):
            obj = json.loads(record.payload)
            obj["d"] = (
                {"t": 999999}
                if record.op in (VoiceOp.HEARTBEAT, VoiceOp.HEARTBEAT_ACK)
                else {**obj["d"], "x": 1}
            )
            return dataclasses.replace(record, payload=json.dumps(obj).encode())
        return record

    found = list(diff_records(records, [changed(r) for r in records]))
    assert {(d.what, d.path) for d in found} == {("HELLO", "d.x"), ("SESSION_DESCRIPTION", "d.x")}
    assert len([d for d in found if d.what == "HELLO"]) == 2  # both voice connections
    assert list(diff_records(records, [changed(r) for r in records], skip_heartbeats=True)) == found
