from __future__ import annotations

import json
from pathlib import Path

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    HttpRecord,
    Query,
)
from replayer.archive.redaction import REDACTED, Redactor, redact_url
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.opcodes import Direction

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789"


def conn(encoding: str = "json") -> ConnectionRecord:
    return ConnectionRecord(
        1, 0, f"wss://gateway.discord.gg/?v=10&encoding={encoding}", Query(10, encoding)
    )


def client_frame(obj: dict[str, object], encoding: Encoding = Encoding.JSON) -> FrameRecord:
    raw = encode_payload(obj, encoding)
    return FrameRecord(
        1, 1, Direction.CLIENT, FrameType.TEXT, raw, int(obj["op"]), None, None, len(raw)
    )  # type: ignore[call-overload]


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize("op", [2, 6])
def test_identify_and_resume_tokens_are_replaced(encoding: Encoding, op: int) -> None:
    redactor = Redactor()
    redactor.redact(conn(encoding.value))
    d = {"token": TOKEN, "properties": {"os": "linux"}, "session_id": "abc", "seq": 5}
    frame = client_frame({"op": op, "d": d, "s": None, "t": None}, encoding)
    out = redactor.redact(frame)
    assert isinstance(out, FrameRecord)
    assert TOKEN.encode() not in out.payload
    assert out.flags & FrameFlag.REDACTED
    decoded = decode_payload(out.payload, encoding)
    assert decoded["d"] == {**d, "token": REDACTED}


def test_json_keeps_client_bytes_except_token() -> None:
    redactor = Redactor()
    redactor.redact(conn())
    raw = b'{"op": 2, "d": {"token": "%s", "intents": 513}}' % TOKEN.encode()
    frame = FrameRecord(1, 0, Direction.CLIENT, FrameType.TEXT, raw, 2, None, None, len(raw))
    out = redactor.redact(frame)
    assert isinstance(out, FrameRecord)
    assert out.payload == b'{"op": 2, "d": {"token": "[REDACTED]", "intents": 513}}'


def test_learned_token_is_scrubbed_everywhere_later() -> None:
    redactor = Redactor()
    redactor.redact(conn())
    redactor.redact(client_frame({"op": 2, "d": {"token": TOKEN}}))
    echo = json.dumps(
        {"op": 0, "t": "X", "s": 1, "d": {"content": f"my token is {TOKEN}!"}}
    ).encode()
    out = redactor.redact(FrameRecord(1, 2, Direction.SERVER, FrameType.TEXT, echo, 0, 1, "X", 9))
    assert isinstance(out, FrameRecord)
    assert TOKEN.encode() not in out.payload
    assert out.flags & FrameFlag.REDACTED
    http = HttpRecord(3, "POST", "discord.com", "/api/v10/x", 200, (), (), TOKEN.encode(), b"")
    out_http = redactor.redact(http)
    assert isinstance(out_http, HttpRecord)
    assert out_http.request_body == REDACTED.encode()


def test_authorization_header_is_replaced_and_learned() -> None:
    redactor = Redactor()
    http = HttpRecord(
        0, "GET", "discord.com", "/api/v10/users/@me", 200,
        (("Authorization", f"Bot {TOKEN}"), ("User-Agent", "DiscordBot")),
        (("Set-Cookie", "__dcfduid=abcdefgh1234; HttpOnly"),),
        b"", b'{"id": "1"}',
    )  # fmt: skip
    out = redactor.redact(http)
    assert isinstance(out, HttpRecord)
    assert out.request_headers == (("Authorization", REDACTED), ("User-Agent", "DiscordBot"))
    assert out.response_headers == (("Set-Cookie", REDACTED),)
    later = redactor.redact(client_frame({"op": 1, "d": TOKEN}))
    assert isinstance(later, FrameRecord)
    assert TOKEN.encode() not in later.payload


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://g/?v=10&token=abc.def", "wss://g/?v=10&token=[REDACTED]"),
        ("/api/v10/webhooks/123/tok-en_x?wait=true", "/api/v10/webhooks/123/[REDACTED]?wait=true"),
        ("/api/v10/interactions/9/aW50ZXJ/callback", "/api/v10/interactions/9/[REDACTED]/callback"),
        ("/api/v10/gateway/bot", "/api/v10/gateway/bot"),
    ],
)
def test_url_tokens(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_token_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.rpl"
    with ArchiveWriter(path) as writer:
        writer.write(
            HttpRecord(
                0,
                "GET",
                "discord.com",
                "/api/v10/gateway/bot",
                200,
                (("authorization", f"Bot {TOKEN}"),),
                (),
                b"",
                b"{}",
            )
        )
        writer.write(
            ConnectionRecord(1, 1, f"wss://gateway.discord.gg/?v=10&token={TOKEN}", Query(10))
        )
        writer.write(client_frame({"op": 2, "d": {"token": TOKEN, "shard": [0, 1]}}))
        writer.write(client_frame({"op": 6, "d": {"token": TOKEN, "session_id": "s", "seq": 3}}))
    data = path.read_bytes()
    assert TOKEN.encode() not in data
    assert b"GhIjKl" not in data
    _, records = read_records(path)
    assert len(records) == 4


def test_redaction_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "a.rpl"
    with ArchiveWriter(path, redact=False) as writer:
        writer.write(conn())
        writer.write(client_frame({"op": 2, "d": {"token": TOKEN}}))
    assert TOKEN.encode() in path.read_bytes()


def test_url_tokens_are_learned_and_close_reasons_scrubbed() -> None:
    from replayer.archive.records import CloseRecord

    redactor = Redactor()
    redactor.redact(ConnectionRecord(1, 0, f"wss://g/?v=10&token={TOKEN}", Query(10)))
    out = redactor.redact(CloseRecord(1, 1, 4004, f"bad token {TOKEN}"))
    assert isinstance(out, CloseRecord)
    assert out.reason == f"bad token {REDACTED}"


def test_a_bot_token_and_its_bare_form_are_one_secret() -> None:
    redactor = Redactor()
    redactor.redact(conn())
    redactor.redact(client_frame({"op": 2, "d": {"token": f"Bot {TOKEN}"}}))
    redactor.learn(TOKEN)  # again, bare: nothing new to scan for
    assert redactor.secret_count == 1  # one scan per payload, not two
    for text in (f"Bot {TOKEN}", f"bare {TOKEN}", f"{TOKEN}{TOKEN}"):
        payload = json.dumps({"op": 0, "t": "X", "s": 1, "d": text}).encode()
        frame = FrameRecord(1, 2, Direction.SERVER, FrameType.TEXT, payload, 0, 1, "X", 9)
        out = redactor.redact(frame)
        assert isinstance(out, FrameRecord)
        assert TOKEN.encode() not in out.payload
