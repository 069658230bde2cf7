from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# --- every class of secret (docs/archive-format.md §5) -----------------------------------

INTERACTION = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OmNhbmFyeQ"
VOICE = "voice0canary0token"
WEBHOOK = "webhook-canary-token-0123456789abcdefghijklmnopqrstuvwxyz"


def server_frame(obj: dict[str, object], encoding: Encoding = Encoding.JSON) -> FrameRecord:
    raw = encode_payload(obj, encoding)
    s, t = obj.get("s"), obj.get("t")
    return FrameRecord(1, 5, Direction.SERVER, FrameType.TEXT, raw, 0, s, t, len(raw))  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize(
    ("event", "secret"), [("INTERACTION_CREATE", INTERACTION), ("VOICE_SERVER_UPDATE", VOICE)]
)
def test_dispatch_tokens_are_replaced_and_learned(
    encoding: Encoding, event: str, secret: str
) -> None:
    redactor = Redactor()
    redactor.redact(conn(encoding.value))
    d = {"id": "7", "token": secret, "guild_id": "1", "endpoint": "x.discord.media"}
    out = redactor.redact(server_frame({"op": 0, "s": 3, "t": event, "d": d}, encoding))
    assert isinstance(out, FrameRecord)
    assert secret.encode() not in out.payload
    assert out.flags & FrameFlag.REDACTED
    assert decode_payload(out.payload, encoding)["d"] == {**d, "token": REDACTED}
    path = f"/api/v10/webhooks/9/{secret}/messages/@original"
    later = redactor.redact(
        HttpRecord(6, "PATCH", "discord.com", path, 200, (), (), secret.encode(), b"")
    )
    assert isinstance(later, HttpRecord)
    assert secret not in later.path
    assert secret.encode() not in later.request_body


def test_oauth2_form_request_and_json_response() -> None:
    redactor = Redactor()
    body = b"grant_type=authorization_code&code=oauth-code-canary1&client_id=1&client_secret=app-secret-canary-value&redirect_uri=http%3A%2F%2Fx"
    response = b'{"access_token": "access-canary-6qrZcUqja7812RVdnEKjpzOL4CvHBFG", "token_type": "Bearer", "expires_in": 604800, "refresh_token": "refresh-canary-D43f5y0ahjqew82jZ4NViEr2YafMKhue", "scope": "identify"}'
    out = redactor.redact(
        HttpRecord(0, "POST", "discord.com", "/api/v10/oauth2/token", 200, (), (), body, response)
    )
    assert isinstance(out, HttpRecord)
    for canary in (b"oauth-code-canary1", b"app-secret-canary-value"):
        assert canary not in out.request_body
    assert b"grant_type=authorization_code&code=[REDACTED]&client_id=1" in out.request_body
    assert json.loads(out.response_body) == {
        "access_token": REDACTED,
        "token_type": "Bearer",
        "expires_in": 604800,
        "refresh_token": REDACTED,
        "scope": "identify",
    }


def test_oauth2_json_request_and_code_only_under_oauth2() -> None:
    redactor = Redactor()
    body = json.dumps({"client_secret": "js-secret-canary", "code": "js-code-canary"}).encode()
    out = redactor.redact(
        HttpRecord(0, "POST", "discord.com", "/api/oauth2/token", 200, (), (), body, b"")
    )
    assert isinstance(out, HttpRecord)
    assert json.loads(out.request_body) == {"client_secret": REDACTED, "code": REDACTED}
    # An invite's code is public and a REST route: kept.
    invite = b'{"code": "abcdefgh", "guild": {"id": "1"}}'
    kept = redactor.redact(
        HttpRecord(1, "GET", "discord.com", "/api/v10/invites/abcdefgh", 200, (), (), b"", invite)
    )
    assert isinstance(kept, HttpRecord)
    assert kept.response_body == invite


def test_a_webhook_token_in_a_create_webhook_response() -> None:
    redactor = Redactor()
    response = json.dumps({"id": "5", "type": 1, "name": "hook", "token": WEBHOOK}).encode()
    out = redactor.redact(
        HttpRecord(
            0, "POST", "discord.com", "/api/v10/channels/1/webhooks", 200, (), (), b"", response
        )
    )
    assert isinstance(out, HttpRecord)
    assert WEBHOOK.encode() not in out.response_body
    later = redactor.redact(ConnectionRecord(2, 1, f"wss://g/?note={WEBHOOK}", Query(10)))
    assert isinstance(later, ConnectionRecord)
    assert WEBHOOK not in later.url


@pytest.mark.parametrize(
    "raw",
    [
        b'{"op": 2, "s": "1", "d": {"token": "%s"}}',  # a string s
        b'{"op": 2.0, "d": {"token": "%s"}}',  # a float op
        b'{"op": 2, "d": {"token": "%s"}}x',  # one trailing byte
        b'{"op": 2, "d": {"token": "%s", "token": "other-canary-value"}}',  # duplicate key
        b'{"op": 2, "d": {"properties": {}, "token": "Bot %s"}',  # unbalanced
        b"op=2&token=%s",  # not JSON at all
    ],
)
def test_a_token_in_a_malformed_identify_is_replaced(raw: bytes) -> None:
    redactor = Redactor()
    redactor.redact(conn())
    payload = raw.replace(b"%s", TOKEN.encode())
    frame = FrameRecord(
        1, 1, Direction.CLIENT, FrameType.TEXT, payload, None, None, None, len(payload),
        FrameFlag.UNDECODED,
    )  # fmt: skip
    out = redactor.redact(frame)
    assert isinstance(out, FrameRecord)
    assert TOKEN.encode() not in out.payload
    assert b"GhIjKl" not in out.payload
    assert b"other-canary-value" not in out.payload
    assert out.flags & FrameFlag.REDACTED


def test_an_etf_identify_that_does_not_decode_still_loses_its_token() -> None:
    redactor = Redactor()
    redactor.redact(conn("etf"))
    raw = encode_payload({"op": 2, "d": {"token": TOKEN}}, Encoding.ETF) + b"\x00"
    frame = FrameRecord(1, 1, Direction.CLIENT, FrameType.BINARY, raw, None, None, None, len(raw))
    out = redactor.redact(frame)
    assert isinstance(out, FrameRecord)
    assert TOKEN.encode() not in out.payload


SPLIT_SECRET = "not-token-shaped-but-secret-0123456789"


@given(st.data())
def test_a_secret_cut_over_two_messages_never_shows(data: st.DataObject) -> None:
    """Wherever an IDENTIFY is cut in two, neither half shows its token: cut inside the
    value, the halves are redacted as one secret; cut elsewhere, the key or the token's
    shape gives it away."""
    token = data.draw(st.sampled_from([TOKEN, SPLIT_SECRET]))
    raw = json.dumps({"op": 2, "d": {"token": token, "intents": 513}}).encode()
    start = raw.index(token.encode())
    lo, hi = (start, start + len(token)) if token == SPLIT_SECRET else (0, len(raw))
    cut = data.draw(st.integers(lo, hi))
    redactor = Redactor()
    redactor.redact(conn())
    written = b""
    for part in (raw[:cut], raw[cut:]):
        frame = FrameRecord(1, 1, Direction.CLIENT, FrameType.TEXT, part, None, None, None, 1)
        out = redactor.redact(frame)
        assert isinstance(out, FrameRecord)
        written += out.payload + b"\n"
    for size in (8, 12):
        pieces = {token[i : i + size] for i in range(len(token) - size + 1)}
        assert not [p for p in pieces if p.encode() in written]
    # The whole secret was learned: it is scrubbed from what comes next.
    echo = redactor.redact(server_frame({"op": 0, "s": 1, "t": "X", "d": token}))
    assert isinstance(echo, FrameRecord)
    assert token.encode() not in echo.payload


def test_the_safety_net_catches_token_shapes_in_raw_frames_and_bodies() -> None:
    redactor = Redactor()
    redactor.redact(conn())
    raw = b"\x00garbage " + TOKEN.encode() + b" more"
    frame = FrameRecord(
        1, 1, Direction.SERVER, FrameType.BINARY, raw, None, None, None, len(raw),
        FrameFlag.UNDECODED,
    )  # fmt: skip
    out = redactor.redact(frame)
    assert isinstance(out, FrameRecord)
    assert out.payload == b"\x00garbage [REDACTED] more"
    body = json.dumps({"content": f"oops {TOKEN}"}).encode()
    http = redactor.redact(
        HttpRecord(2, "POST", "discord.com", "/api/v10/channels/1/messages", 200, (), (), body, b"")
    )
    assert isinstance(http, HttpRecord)
    assert TOKEN.encode() not in http.request_body
    # A decoded server payload is not scanned for shapes (megabytes per GUILD_CREATE), but
    # the token the net learned is scrubbed from it.
    echo = redactor.redact(server_frame({"op": 0, "s": 1, "t": "X", "d": TOKEN}))
    assert isinstance(echo, FrameRecord)
    assert TOKEN.encode() not in echo.payload


def test_innocent_payloads_are_left_alone() -> None:
    redactor = Redactor()
    redactor.redact(conn())
    for obj in (
        {"op": 0, "s": 1, "t": "MESSAGE_CREATE", "d": {"content": "tokens are fun", "id": "1"}},
        {"op": 0, "s": 2, "t": "GUILD_CREATE", "d": {"name": "a.b.c", "icon": "a" * 32}},
    ):
        frame = server_frame(obj)
        assert redactor.redact(frame) is frame
