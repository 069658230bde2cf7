"""The pseudonymiser: deterministic for a key, unguessable without it, protocol kept."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    HttpRecord,
    Query,
    Record,
)
from replayer.archive.redaction import REDACTED
from replayer.archive.scrub import (
    MAX_CONTENT,
    PLACEHOLDER,
    Scrubber,
    is_snowflake_value,
    length_class,
)
from replayer.archive.verify import ArchiveChecker
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.opcodes import Direction

snowflakes = st.integers(min_value=10**14, max_value=2**64 - 1)
keys = st.binary(min_size=1, max_size=32)
# Plain prose: no markup (<...>, @everyone), no surrounding blanks.
prose = st.text(
    st.characters(codec="utf-8", exclude_characters="<>@"), min_size=1, max_size=300
).filter(lambda s: s.strip() == s and s != "")
names = st.text(st.characters(categories=("L", "Nd")), min_size=1, max_size=40)

GUILD, CHANNEL, USER, MESSAGE = (
    407082463766003713,
    900493394710642694,
    803207031094771712,
    1378704642087600139,
)


UNROUTED = {4: ipaddress.ip_network("198.18.0.0/15"), 6: ipaddress.ip_network("2001:db8::/32")}


def conn(encoding: Encoding = Encoding.JSON, conn_id: int = 1) -> ConnectionRecord:
    url = f"wss://gateway.discord.gg/?v=10&encoding={encoding.value}"
    return ConnectionRecord(conn_id, 0, url, Query(10, encoding.value))


def dispatch(
    t: str, d: Any, s: int = 1, encoding: Encoding = Encoding.JSON, conn_id: int = 1
) -> FrameRecord:
    payload = encode_payload({"t": t, "s": s, "op": 0, "d": d}, encoding)
    ftype = FrameType.BINARY if encoding is Encoding.ETF else FrameType.TEXT
    return FrameRecord(conn_id, 10, Direction.SERVER, ftype, payload, 0, s, t, len(payload))


def message(
    content: str, author: str = "sleepypuffin", *, ids_as: type = str, nick: str | None = None
) -> dict[str, Any]:
    def sf(v: int) -> Any:
        return ids_as(v)

    return {
        "id": sf(MESSAGE),
        "channel_id": sf(CHANNEL),
        "guild_id": sf(GUILD),
        "type": 0,
        "flags": 0,
        "content": content,
        "timestamp": "2025-06-01T12:00:01.767000+00:00",
        "author": {
            "id": sf(USER),
            "username": author,
            "global_name": author.title(),
            "avatar": "a_064d985258aa8ea3788abbc3118332c0",
            "discriminator": "0",
            "public_flags": 4194304,
        },
        "member": {"roles": [sf(GUILD + 1)], "nick": nick, "permissions": "2248473465835073"},
        "mentions": [],
        "attachments": [
            {
                "id": sf(MESSAGE + 1),
                "filename": "holiday photo.png",
                "url": f"https://cdn.discordapp.com/attachments/{CHANNEL}/{MESSAGE + 1}/"
                "holiday_photo.png?ex=abc&is=def&hm=0123",
                "size": 1234,
            }
        ],
        "embeds": [{"title": "A title", "description": "words here", "url": "https://x.org/a"}],
    }


def payload_of(record: Record, encoding: Encoding = Encoding.JSON) -> Any:
    assert isinstance(record, FrameRecord)
    return decode_payload(record.payload, encoding)


def scrub_all(key: bytes, records: list[Record]) -> list[Record]:
    scrubber = Scrubber(key)
    return [scrubber.scrub(r) for r in records]


# --- snowflakes -------------------------------------------------------------------------


@given(key=keys, ids=st.lists(snowflakes, min_size=1, max_size=50, unique=True))
def test_ids_stay_snowflakes_with_their_timestamp_one_to_one(key: bytes, ids: list[int]) -> None:
    scrubber = Scrubber(key)
    mapped = [scrubber.snowflake(i) for i in ids]
    for old, new in zip(ids, mapped, strict=True):
        assert is_snowflake_value(new)
        assert new >> 22 == old >> 22  # Reference > Snowflakes: the timestamp bits
        assert new != old
        assert len(str(new)) == len(str(old))  # (for these: room in every block)
    assert len(set(mapped)) == len(ids)
    assert [scrubber.snowflake(i) for i in ids] == mapped  # stable within the archive
    assert scrubber.stats.ids == len(ids)


def test_collisions_are_drawn_again() -> None:
    """20 000 ids of one millisecond in a 2**22 space: dozens of first draws collide
    (birthday bound); every id still gets its own."""
    base = 1378704642087600139 & ~((1 << 22) - 1)
    ids = [base | i for i in range(20_000)]
    scrubber = Scrubber(b"k")
    mapped = {scrubber.snowflake(i) for i in ids}
    assert len(mapped) == len(ids)
    assert {m >> 22 for m in mapped} == {base >> 22}


@given(key=keys, other=keys, ids=st.lists(snowflakes, min_size=3, max_size=10, unique=True))
def test_different_keys_give_different_ids(key: bytes, other: bytes, ids: list[int]) -> None:
    if key == other:
        return
    a, b = Scrubber(key), Scrubber(other)
    assert [a.snowflake(i) for i in ids] != [b.snowflake(i) for i in ids]


# --- payloads -----------------------------------------------------------------------------


@settings(max_examples=50)
@given(key=keys, content=prose, author=names, encoding=st.sampled_from(list(Encoding)))
def test_deterministic_for_a_key(key: bytes, content: str, author: str, encoding: Encoding) -> None:
    frame = dispatch("MESSAGE_CREATE", message(content, author), encoding=encoding)
    records: list[Record] = [conn(encoding), frame]
    assert scrub_all(key, records) == scrub_all(key, records)


@settings(max_examples=50)
@given(key=keys, other=keys, content=prose)
def test_different_keys_give_different_archives(key: bytes, other: bytes, content: str) -> None:
    if key == other:
        return
    records: list[Record] = [conn(), dispatch("MESSAGE_CREATE", message(content))]
    assert scrub_all(key, records)[1] != scrub_all(other, records)[1]


@settings(max_examples=50)
@given(key=keys, content=prose, author=names)
def test_json_and_etf_map_alike(key: bytes, content: str, author: str) -> None:
    """The same payload, in JSON on one connection and ETF (ids as ints) on another,
    gets the same pseudonyms."""
    scrubber = Scrubber(key)
    scrubber.scrub(conn(Encoding.JSON, 1))
    scrubber.scrub(conn(Encoding.ETF, 2))
    as_json = scrubber.scrub(dispatch("MESSAGE_CREATE", message(content, author)))
    etf_frame = dispatch(
        "MESSAGE_CREATE", message(content, author, ids_as=int), encoding=Encoding.ETF, conn_id=2
    )
    as_etf = scrubber.scrub(etf_frame)
    j, e = payload_of(as_json)["d"], payload_of(as_etf, Encoding.ETF)["d"]
    assert int(j["id"]) == e["id"] != MESSAGE
    assert int(j["author"]["id"]) == e["author"]["id"] != USER
    assert j["author"]["username"] == e["author"]["username"]
    assert j["content"] == e["content"]
    assert isinstance(as_etf, FrameRecord)
    assert as_etf.payload[0] == 131  # still ETF


@given(key=keys, content=prose)
def test_text_keeps_its_length_class(key: bytes, content: str) -> None:
    scrubber = Scrubber(key)
    new = scrubber.text(content)
    assert len(new) == length_class(len(content))
    assert len(content) <= len(new) <= max(2 * len(content), 1)
    assert len(new) <= MAX_CONTENT or len(content) > MAX_CONTENT
    assert scrubber.text(content) == new


@example(key=b"\x00", name="000000000000000")  # all digits: a name, not a snowflake
@given(key=keys, name=names)
def test_names_are_one_word_everywhere(key: bytes, name: str) -> None:
    scrubber = Scrubber(key)
    records: list[Record] = [
        conn(),
        dispatch("MESSAGE_CREATE", message("hi", author=name)),
        dispatch("GUILD_ROLE_CREATE", {"guild_id": str(GUILD), "role": {"name": name}}, s=2),
    ]
    out = [scrubber.scrub(r) for r in records]
    author = payload_of(out[1])["d"]["author"]
    role = payload_of(out[2])["d"]["role"]
    assert author["username"] == role["name"] == scrubber.name(name)
    assert author["username"].isascii()
    assert author["username"].isalpha()
    assert len(author["username"]) == max(2, min(len(name), 32))


def test_a_message_is_scrubbed_and_the_protocol_kept() -> None:
    scrubber = Scrubber(b"key")
    scrubber.scrub(conn())
    content = f"hey <@{USER}>, see <#{CHANNEL}> <:party:{MESSAGE + 7}> <t:1748779201:R> ok"
    frame = dispatch("MESSAGE_CREATE", message(content, nick="Puff"), s=6)
    out = scrubber.scrub(frame)
    assert isinstance(out, FrameRecord)
    assert (out.op, out.s, out.t) == (0, 6, "MESSAGE_CREATE")
    obj = payload_of(out)
    assert (obj["op"], obj["s"], obj["t"]) == (0, 6, "MESSAGE_CREATE")
    d = obj["d"]
    user, channel = scrubber.snowflake(USER), scrubber.snowflake(CHANNEL)
    assert d["author"]["id"] == str(user)
    assert d["channel_id"] == str(channel)
    assert d["member"]["roles"] == [str(scrubber.snowflake(GUILD + 1))]
    assert d["member"]["permissions"] == "2248473465835073"  # a bitfield, not an id
    assert d["member"]["nick"] == scrubber.name("Puff")
    assert (d["type"], d["flags"], d["timestamp"]) == (0, 0, "2025-06-01T12:00:01.767000+00:00")
    assert d["author"]["discriminator"] == "0"
    assert d["author"]["public_flags"] == 4194304
    avatar = d["author"]["avatar"]
    assert avatar.startswith("a_")
    assert len(avatar) == 34
    assert avatar != message("")["author"]["avatar"]
    # Markup survives with its ids mapped; the words around it do not.
    assert f"<@{user}>" in d["content"]
    assert f"<#{channel}>" in d["content"]
    assert f":{scrubber.snowflake(MESSAGE + 7)}>" in d["content"]
    assert "<t:1748779201:R>" in d["content"]
    for word in ("hey", "see", "party", "ok"):
        assert word not in d["content"]
    (attachment,) = d["attachments"]
    assert attachment["filename"].endswith(".png")
    assert "holiday" not in attachment["filename"]
    assert attachment["url"].startswith(
        f"https://cdn.discordapp.com/attachments/{channel}/{scrubber.snowflake(MESSAGE + 1)}/"
    )
    assert "?" not in attachment["url"]
    assert "holiday" not in attachment["url"]
    assert attachment["size"] == 1234
    (embed,) = d["embeds"]
    assert embed["url"].startswith("https://example.com/")
    assert embed["title"] != "A title"
    assert len(embed["title"]) == length_class(len("A title"))
    raw = out.payload.decode()
    for original in (str(USER), str(CHANNEL), str(GUILD), str(MESSAGE), "sleepypuffin", "Puff"):
        assert original not in raw


def test_ready_keeps_what_clients_need() -> None:
    scrubber = Scrubber(b"key")
    scrubber.scrub(conn())
    ready = {
        "v": 10,
        "user": {"id": str(USER), "username": "mybot", "bot": True, "email": "me@mail.org"},
        "session_id": "5a52473afa0186b6c02b1d945ed466b3",
        "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg",
        "guilds": [{"id": str(GUILD), "unavailable": True}],
        "shard": [0, 1],
        "_trace": ['["gateway-prd-us-east1-b-0000",{"micros":108367}]'],
    }
    hello = encode_payload({"op": 10, "d": {"heartbeat_interval": 41250}}, Encoding.JSON)
    hello_frame = FrameRecord(1, 1, Direction.SERVER, FrameType.TEXT, hello, 10, None, None, 9)
    assert scrubber.scrub(hello_frame) is hello_frame  # nothing to scrub: the same bytes
    d = payload_of(scrubber.scrub(dispatch("READY", ready)))["d"]
    for key in ("v", "session_id", "resume_gateway_url", "shard", "_trace"):
        assert d[key] == ready[key]
    assert d["user"]["email"] == scrubber.name("me") + "@example.com"
    assert d["guilds"] == [{"id": str(scrubber.snowflake(GUILD)), "unavailable": True}]
    # The shard of a guild is (guild_id >> 22) % num_shards: unchanged.
    assert scrubber.snowflake(GUILD) >> 22 == GUILD >> 22


def test_identify_keeps_the_redacted_token_and_intents(tmp_path: Path) -> None:
    """In the writer, redaction runs first, then the transform."""
    path = tmp_path / "a.rpl"
    scrubber = Scrubber(b"key")
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789"
    identify = encode_payload(
        {"op": 2, "d": {"token": token, "intents": 53608445, "shard": [0, 1]}}, Encoding.JSON
    )
    with ArchiveWriter(path, transform=scrubber.scrub) as writer:
        writer.write(conn())
        writer.write(
            FrameRecord(1, 1, Direction.CLIENT, FrameType.TEXT, identify, 2, None, None, 9)
        )
        writer.write(dispatch("MESSAGE_CREATE", message("secret words"), s=1))
    _, records = read_records(path)
    d = payload_of(records[1])["d"]
    assert d == {"token": REDACTED, "intents": 53608445, "shard": [0, 1]}
    assert b"secret words" not in path.read_bytes()
    assert scrubber.stats.records == 3
    checker = ArchiveChecker()
    for record in records:
        checker.check(record)


def test_undecoded_frames_become_placeholders() -> None:
    scrubber = Scrubber(b"key")
    scrubber.scrub(conn())
    raw = b'{"op":0,"d":{"content":"private stuff"'  # cut short
    frame = FrameRecord(
        1, 1, Direction.SERVER, FrameType.TEXT, raw, None, None, None, len(raw),
        FrameFlag.UNDECODED, "JSON: Expecting ',' delimiter at char 37",
    )  # fmt: skip
    out = scrubber.scrub(frame)
    assert isinstance(out, FrameRecord)
    assert len(out.payload) == len(raw)
    assert out.payload.startswith(PLACEHOLDER)
    assert out.flags == FrameFlag.UNDECODED
    assert out.error == frame.error
    # One stored as decoded that does not decode in full (the recorder's head parse).
    head = FrameRecord(1, 2, Direction.SERVER, FrameType.TEXT, raw, 0, 5, "X", len(raw))
    out2 = scrubber.scrub(head)
    assert isinstance(out2, FrameRecord)
    assert (out2.op, out2.s, out2.t) == (None, None, None)
    assert out2.flags & FrameFlag.UNDECODED
    assert b"private" not in out2.payload
    assert scrubber.stats.undecoded == 2
    checker = ArchiveChecker()
    for record in (conn(), out, out2):
        checker.check(record)


def test_http_paths_and_bodies_follow_the_frames() -> None:
    scrubber = Scrubber(b"key")
    scrubber.scrub(conn())
    scrubber.scrub(dispatch("MESSAGE_CREATE", message("hi")))
    body = json.dumps({"id": str(MESSAGE + 9), "channel_id": str(CHANNEL), "content": "pong!"})
    http = HttpRecord(
        5, "POST", "discord.com", f"/api/v10/channels/{CHANNEL}/messages?after={MESSAGE}", 200,
        (), (("Content-Type", "application/json"), ("Content-Length", str(len(body)))),
        b'{"content":"pong!"}', body.encode(),
    )  # fmt: skip
    out = scrubber.scrub(http)
    assert isinstance(out, HttpRecord)
    channel = scrubber.snowflake(CHANNEL)
    assert out.path == f"/api/v10/channels/{channel}/messages?after={scrubber.snowflake(MESSAGE)}"
    response = json.loads(out.response_body)
    assert response["channel_id"] == str(channel)
    assert response["content"] != "pong!"
    assert len(response["content"]) == length_class(5)
    assert json.loads(out.request_body)["content"] == response["content"]
    assert dict(out.response_headers)["Content-Length"] == str(len(out.response_body))
    opaque = HttpRecord(6, "GET", "discord.com", "/x", 502, (), (), b"", b"<html>bob</html>")
    out_opaque = scrubber.scrub(opaque)
    assert isinstance(out_opaque, HttpRecord)
    assert len(out_opaque.response_body) == 16
    assert b"bob" not in out_opaque.response_body


def test_recorded_rest_routes_still_match(tmp_path: Path) -> None:
    """A client of the scrubbed archive asks for the scrubbed ids: the replay's REST
    router (replay/rest.py) answers it with the scrubbed recorded exchange."""
    from replayer.replay.rest import RestRouter
    from replayer.replay.script import load_script

    scrubber = Scrubber(b"key")
    path = tmp_path / "s.rpl"
    hello = encode_payload({"op": 10, "d": {"heartbeat_interval": 41250}}, Encoding.JSON)
    body = json.dumps([{"id": str(MESSAGE), "channel_id": str(CHANNEL), "content": "x"}])
    with ArchiveWriter(path, transform=scrubber.scrub) as writer:
        writer.write(conn())
        writer.write(FrameRecord(1, 1, Direction.SERVER, FrameType.TEXT, hello, 10, None, None, 9))
        identify = encode_payload({"op": 2, "d": {"token": "x", "intents": 513}}, Encoding.JSON)
        writer.write(
            FrameRecord(1, 2, Direction.CLIENT, FrameType.TEXT, identify, 2, None, None, 9)
        )
        ready = {"v": 10, "user": {"id": str(USER), "username": "bot"}, "session_id": "abc"}
        writer.write(dispatch("READY", ready, s=1))
        writer.write(dispatch("MESSAGE_CREATE", message("hi"), s=2))
        path_ = f"/api/v10/channels/{CHANNEL}/messages"
        writer.write(HttpRecord(20, "GET", "discord.com", path_, 200, (), (), b"", body.encode()))
    router = RestRouter(load_script(path), "ws://127.0.0.1:1/")
    channel = scrubber.snowflake(CHANNEL)
    answer = router.handle("GET", f"/api/v10/channels/{channel}/messages")
    assert answer.status == 200
    assert json.loads(answer.body)[0]["id"] == str(scrubber.snowflake(MESSAGE))
    assert router.handle("GET", f"/api/v10/channels/{CHANNEL}/messages").status == 404


@given(key=keys, address=st.ip_addresses())
def test_ip_addresses_become_unrouted_addresses_of_their_family(key: bytes, address: Any) -> None:
    scrubber = Scrubber(key)
    select = {"protocol": "udp", "data": {"address": str(address), "port": 50004, "mode": "m"}}
    payload = encode_payload({"op": 1, "d": select}, Encoding.JSON)
    frame = FrameRecord(1, 10, Direction.CLIENT, FrameType.TEXT, payload, 1, None, None, 0)
    scrubber.scrub(conn())
    data = payload_of(scrubber.scrub(frame))["d"]["data"]
    new = ipaddress.ip_address(data["address"])
    assert new.version == address.version
    assert new in UNROUTED[new.version]
    assert data["port"] == 50004
    assert scrubber.ip(str(address)) == data["address"]  # the same address, the same pseudonym
