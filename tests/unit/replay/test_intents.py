"""Intents (issue 15 item 5): 4013 for invalid bits, 4014 for privileged intents the
application is not granted, dispatches filtered by the client's intents, message content
emptied without MESSAGE_CONTENT, GUILD_CREATE's members and presences without
GUILD_PRESENCES, and the start-up notice. Discord docs: Events > Gateway > Gateway Intents."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.sequence import rewrite_json_seq
from replayer.replay import intents as I
from replayer.replay.engine import Close, Command, GatewayConnection, Send
from replayer.replay.intents import IntentFilter, IntentsError, parse_grant, recorded_grants

from .conftest import Harness

BOT = {"id": "9", "username": "bot"}
ALICE = {"id": "11", "username": "alice"}
BOB = {"id": "12", "username": "bob"}
GUILD_ID = "1"
CONTENT = {
    "content": "secret",
    "embeds": [{"title": "e"}],
    "attachments": [{"id": "5"}],
    "components": [{"type": 1}],
    "poll": {"question": {"text": "?"}},
}

# Several IDENTIFYs at one instant here: Discord's identify concurrency (one per 5 s
# per bucket, replay/starts.py, tested in test_starts.py) is off in these tests.


def message(
    mid: str, author: dict[str, Any], *, guild: bool = True, **extra: Any
) -> dict[str, Any]:
    d: dict[str, Any] = {"id": mid, "channel_id": "3", "author": author, "mentions": [], **CONTENT}
    if guild:
        d["guild_id"] = GUILD_ID
    return {**d, **extra}


# (event, d) after READY, in order.
DISPATCHES: list[tuple[str, dict[str, Any]]] = [
    (
        "GUILD_CREATE",
        {
            "id": GUILD_ID,
            "name": "g",
            "members": [{"user": BOT}, {"user": ALICE}, {"user": BOB}],
            "presences": [{"user": {"id": ALICE["id"]}}, {"user": {"id": BOB["id"]}}],
            "voice_states": [{"user_id": BOB["id"], "channel_id": "4"}],
        },
    ),
    ("PRESENCE_UPDATE", {"guild_id": GUILD_ID, "user": {"id": ALICE["id"]}, "status": "online"}),
    ("TYPING_START", {"guild_id": GUILD_ID, "channel_id": "3", "user_id": ALICE["id"]}),
    ("TYPING_START", {"channel_id": "7", "user_id": ALICE["id"]}),  # in a DM
    ("MESSAGE_CREATE", message("100", ALICE)),
    ("MESSAGE_CREATE", message("101", ALICE, mentions=[BOT])),
    ("MESSAGE_CREATE", message("102", BOT)),
    ("MESSAGE_CREATE", message("103", ALICE, guild=False)),  # a DM
    ("MESSAGE_UPDATE", message("100", ALICE)),
    ("GUILD_MEMBER_UPDATE", {"guild_id": GUILD_ID, "user": BOT, "roles": []}),
    ("GUILD_MEMBER_UPDATE", {"guild_id": GUILD_ID, "user": ALICE, "roles": []}),
    ("MESSAGE_REACTION_ADD", {"guild_id": GUILD_ID, "message_id": "100", "user_id": "11"}),
    ("INTERACTION_CREATE", {"id": "200", "guild_id": GUILD_ID}),  # no intent: always sent
]


def lines(
    recorded_intents: int | None = 1,
    app_flags: int | None = None,
    dispatches: list[tuple[str, dict[str, Any]]] = DISPATCHES,
) -> list[dict[str, Any]]:
    identify: dict[str, Any] = {"token": "t", "properties": {}}
    if recorded_intents is not None:
        identify["intents"] = recorded_intents
    ready: dict[str, Any] = {
        "v": 10,
        "user": BOT,
        "guilds": [{"id": GUILD_ID, "unavailable": True}],
        "session_id": "sess",
        "resume_gateway_url": "wss://elsewhere",
    }
    out: list[dict[str, Any]] = []
    if app_flags is not None:
        body = json.dumps({"id": "9", "name": "bot", "flags": app_flags})
        out.append(
            {
                "kind": "http",
                "t_ms": 0,
                "method": "GET",
                "host": "discord.com",
                "path": "/api/v10/oauth2/applications/@me",
                "status": 200,
                "response_headers": [["Content-Type", "application/json"]],
                "response_body": body,
            }
        )
    out += [
        {"kind": "connection", "conn": 1, "t_ms": 1},
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 2,
         "payload": {"op": 10, "d": {"heartbeat_interval": 1000}}},
        {"kind": "frame", "conn": 1, "dir": "client", "t_ms": 3,
         "payload": {"op": 2, "d": identify}},
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 4,
         "payload": {"op": 0, "s": 1, "t": "READY", "d": ready}},
    ]  # fmt: skip
    for s, (event, d) in enumerate(dispatches, start=2):
        out.append(
            {
                "kind": "frame",
                "conn": 1,
                "dir": "server",
                "t_ms": 4 + s,
                "payload": {"op": 0, "s": s, "t": event, "d": d},
            }
        )
    return out


def msg(op: int, d: Any = None) -> bytes:
    return json.dumps({"op": op, "d": d}).encode()


def payloads(commands: list[Command]) -> list[dict[str, Any]]:
    out = []
    for c in commands:
        assert isinstance(c, Send), c
        out.append(decode_payload(c.raw, Encoding.JSON))
    return out


def connect(h: Harness, intents: Any, **d: Any) -> tuple[GatewayConnection, list[Command]]:
    conn = h.connect()
    conn.start(0)
    out = conn.receive(msg(2, {"token": "t", "properties": {}, "intents": intents, **d}), 0)
    while (wake := conn.next_wakeup_ns()) is not None and wake <= 0:
        out += conn.tick(0)
    return conn, out


@pytest.mark.parametrize("intents", [1 << 17, 1 << 30, -1, "1", True, 1.0])
def test_invalid_intent_bits_get_4013(intents: Any, harness: Callable[..., Harness]) -> None:
    _, out = connect(harness(lines(), speed=0, identify_concurrency=False), intents)
    [close] = out
    assert isinstance(close, Close)
    assert close.code == 4013


def test_check_intents_off_accepts_invalid_bits(harness: Callable[..., Harness]) -> None:
    _, out = connect(
        harness(lines(), speed=0, identify_concurrency=False, check_intents=False), 1 << 17 | 1
    )
    assert payloads(out)[0]["t"] == "READY"


def test_every_documented_intent_is_valid(harness: Callable[..., Harness]) -> None:
    _, out = connect(harness(lines(), speed=0, identify_concurrency=False), I.VALID_INTENTS)
    assert payloads(out)[0]["t"] == "READY"


@pytest.mark.parametrize(
    ("flags", "asked", "refused"),
    [
        (0, I.GUILD_MEMBERS, I.GUILD_MEMBERS),
        (0, I.GUILD_PRESENCES | I.MESSAGE_CONTENT, I.GUILD_PRESENCES | I.MESSAGE_CONTENT),
        (1 << 15, I.GUILD_MEMBERS | I.GUILD_PRESENCES, I.GUILD_PRESENCES),  # *_LIMITED
        (1 << 12 | 1 << 14 | 1 << 18, I.PRIVILEGED_INTENTS, 0),
        (1 << 19, I.MESSAGE_CONTENT | I.GUILDS, 0),
    ],
)
def test_privileged_intents_not_granted_get_4014(
    flags: int, asked: int, refused: int, harness: Callable[..., Harness]
) -> None:
    """The recorded application flags say what is granted (Resources > Application >
    Application Flags); IDENTIFY with anything more is closed with 4014."""
    _, out = connect(
        harness(lines(recorded_intents=1, app_flags=flags), speed=0, identify_concurrency=False),
        asked,
    )
    if refused:
        assert out == [
            Close(4014, f"disallowed intent(s): {I.names(refused)} (see --grant-intents)")
        ]
    else:
        assert payloads(out)[0]["t"] == "READY"


def test_a_recorded_identify_proves_its_privileged_intents(
    harness: Callable[..., Harness],
) -> None:
    """The recorded session got READY with MESSAGE_CONTENT: it was granted, flags or not."""
    h = harness(
        lines(recorded_intents=1 | I.MESSAGE_CONTENT, app_flags=0),
        speed=0,
        identify_concurrency=False,
    )
    assert payloads(connect(h, I.MESSAGE_CONTENT)[1])[0]["t"] == "READY"
    assert connect(h, I.GUILD_MEMBERS)[1][0] == Close(
        4014, "disallowed intent(s): GUILD_MEMBERS (see --grant-intents)"
    )


def test_without_recorded_flags_everything_is_granted(harness: Callable[..., Harness]) -> None:
    _, out = connect(
        harness(lines(recorded_intents=1), speed=0, identify_concurrency=False),
        I.PRIVILEGED_INTENTS,
    )
    assert payloads(out)[0]["t"] == "READY"


def test_grant_intents_overrides_the_recording(harness: Callable[..., Harness]) -> None:
    h = harness(
        lines(app_flags=1 << 12 | 1 << 14 | 1 << 18),
        speed=0,
        identify_concurrency=False,
        grant_intents=I.GUILD_MEMBERS,
    )
    assert payloads(connect(h, I.GUILD_MEMBERS)[1])[0]["t"] == "READY"
    assert connect(h, I.MESSAGE_CONTENT)[1][0].code == 4014  # type: ignore[union-attr]
    h = harness(lines(app_flags=0), speed=0, identify_concurrency=False, check_intents=False)
    assert payloads(connect(h, I.PRIVILEGED_INTENTS)[1])[0]["t"] == "READY"


def test_readys_application_flags_count_as_recorded_flags() -> None:
    assert recorded_grants([], {"id": "9", "flags": 1 << 13}, []) == I.GUILD_PRESENCES
    assert recorded_grants([I.GUILD_MEMBERS | 1], {"id": "9", "flags": 0}, []) == I.GUILD_MEMBERS
    assert recorded_grants([1], None, []) == I.PRIVILEGED_INTENTS


def by_event(out: list[Command]) -> list[tuple[int, str, Any]]:
    return [(p["s"], p["t"], p["d"]) for p in payloads(out)]


def test_dispatches_follow_the_clients_intents(harness: Callable[..., Harness]) -> None:
    """GUILDS | GUILD_MESSAGES: no presences, typing, DMs or reactions; message content
    emptied except the bot's own and those that mention it; the bot's member update
    only; GUILD_CREATE keeps the bot and the voice-connected member; ``s`` stays
    consecutive; an event of no intent comes anyway."""
    _, out = connect(
        harness(lines(), speed=0, identify_concurrency=False), I.GUILDS | I.GUILD_MESSAGES
    )
    got = by_event(out)
    assert [(s, t) for s, t, _ in got] == [
        (1, "READY"), (2, "GUILD_CREATE"), (3, "MESSAGE_CREATE"), (4, "MESSAGE_CREATE"),
        (5, "MESSAGE_CREATE"), (6, "MESSAGE_UPDATE"), (7, "GUILD_MEMBER_UPDATE"),
        (8, "INTERACTION_CREATE"),
    ]  # fmt: skip
    guild = got[1][2]
    assert [m["user"]["id"] for m in guild["members"]] == [BOT["id"], BOB["id"]]
    assert [p["user"]["id"] for p in guild["presences"]] == [BOB["id"]]
    emptied = {"content": "", "embeds": [], "attachments": [], "components": []}
    for _, _, d in (got[2], got[5]):  # alice's message and its update
        assert {k: d.get(k) for k in CONTENT} == {**emptied, "poll": None}
        assert (d["id"], d["author"]) == ("100", ALICE)
    for _, _, d in (got[3], got[4]):  # mentions the bot; by the bot
        assert {k: d[k] for k in CONTENT} == CONTENT
    assert got[6][2]["user"] == BOT


def test_after_dropped_dispatches_the_rest_keep_their_recorded_bytes(
    harness: Callable[..., Harness],
) -> None:
    """Numbered otherwise than recorded (presences, typing, DMs dropped before them),
    the dispatches the filter passes unchanged go out as their recorded bytes with only
    ``s`` rewritten: not decoded and re-encoded (which would reorder the keys)."""
    h = harness(lines(), speed=0, identify_concurrency=False)
    _, out = connect(h, I.GUILDS | I.GUILD_MESSAGES)
    script = h.replay.script.shards[0]
    recorded = h.payloads.frame(script.offsets[-1], script.size(len(script) - 1)).payload
    last = out[-1]
    assert isinstance(last, Send)
    assert (last.t, last.s) == ("INTERACTION_CREATE", 8)
    assert recorded.startswith(b'{"op":0,"s":14,')  # as the archive holds it
    assert last.raw == recorded.replace(b'"s":14,', b'"s":8,', 1)


def test_an_inspected_dispatch_passed_unchanged_keeps_its_recorded_bytes(
    harness: Callable[..., Harness],
) -> None:
    """Without MESSAGE_CONTENT every message is inspected; a DM keeps its content, so it
    goes out as recorded (``s`` rewritten), not re-encoded; a guild message is changed."""
    h = harness(lines(), speed=0, identify_concurrency=False)
    _, out = connect(h, I.GUILDS | I.GUILD_MESSAGES | I.DIRECT_MESSAGES)
    script = h.replay.script.shards[0]
    sends = {(c.t, json.loads(c.raw)["d"].get("id")): c for c in out if isinstance(c, Send)}
    dm = sends[("MESSAGE_CREATE", "103")]
    index = next(i for i in range(len(script)) if script.events[i] == "MESSAGE_CREATE") + 3
    recorded = h.payloads.frame(script.offsets[index], script.size(index)).payload
    assert json.loads(recorded)["d"]["id"] == "103"
    assert dm.raw == rewrite_json_seq(recorded, dm.s or 0)
    assert dm.raw.startswith(b'{"op":0,')  # the recorded key order: not re-encoded
    guild = sends[("MESSAGE_CREATE", "100")]
    assert json.loads(guild.raw)["d"]["content"] == ""
    assert guild.raw.startswith(b'{"t":"MESSAGE_CREATE",')  # re-encoded


def test_dms_keep_their_content_and_need_direct_messages(harness: Callable[..., Harness]) -> None:
    """DM events need the DIRECT_* intents and keep their content; the bot's own member
    update comes without GUILD_MEMBERS (Gateway > Caveats)."""
    _, out = connect(
        harness(lines(), speed=0, identify_concurrency=False),
        I.DIRECT_MESSAGES | I.DIRECT_MESSAGE_TYPING,
    )
    got = by_event(out)
    assert [t for _, t, _ in got] == [
        "READY", "TYPING_START", "MESSAGE_CREATE", "GUILD_MEMBER_UPDATE", "INTERACTION_CREATE",
    ]  # fmt: skip
    assert "guild_id" not in got[1][2]
    assert (got[2][2]["id"], got[2][2]["content"]) == ("103", "secret")
    assert got[3][2]["user"] == BOT


def test_all_intents_get_the_recorded_bytes(harness: Callable[..., Harness]) -> None:
    h = harness(lines(), speed=0, identify_concurrency=False)
    _, out = connect(h, I.VALID_INTENTS)
    assert [t for _, t, _ in by_event(out)] == ["READY"] + [e for e, _ in DISPATCHES]
    for send, (_, d) in zip(out[1:], DISPATCHES, strict=True):
        assert isinstance(send, Send)
        assert decode_payload(send.raw, Encoding.JSON)["d"] == d


def test_every_intent_needs_no_filter(harness: Callable[..., Harness]) -> None:
    """The hot path's cheapest case: a client with every intent has no filter at all."""
    h = harness(lines(), speed=0, identify_concurrency=False)
    connect(h, I.VALID_INTENTS)
    connect(h, I.VALID_INTENTS & ~I.MESSAGE_CONTENT)
    first, second = h.replay.sessions.values()
    assert first.intent_filter is None
    assert second.intent_filter is not None


def test_filter_intents_off_sends_everything(harness: Callable[..., Harness]) -> None:
    _, out = connect(
        harness(lines(), speed=0, identify_concurrency=False, filter_intents=False), I.GUILDS
    )
    assert [t for _, t, _ in by_event(out)] == ["READY"] + [e for e, _ in DISPATCHES]
    assert by_event(out)[5][2]["content"] == "secret"


def test_a_resume_replays_what_was_sent_filtered_alike(harness: Callable[..., Harness]) -> None:
    h = harness(lines(), speed=0, identify_concurrency=False)
    conn, out = connect(h, I.GUILDS | I.GUILD_MESSAGES)
    first = by_event(out)
    conn.client_closed(4000, 0)
    again = h.connect()
    again.start(0)
    resumed = again.receive(msg(6, {"token": "t", "session_id": "sess", "seq": 2}), 0)
    got = by_event(resumed)
    assert got[:-1] == first[2:]
    assert got[-1][1] == "RESUMED"


def test_intents_beyond_the_recording_are_noticed_once(harness: Callable[..., Harness]) -> None:
    h = harness(
        lines(recorded_intents=I.GUILDS | I.GUILD_MESSAGES), speed=0, identify_concurrency=False
    )
    heard: list[str] = []
    h.replay.on_notice = heard.append
    connect(h, I.GUILDS | I.GUILD_MESSAGES)
    assert heard == []
    connect(h, I.GUILDS | I.GUILD_PRESENCES | I.MESSAGE_CONTENT)
    connect(h, I.GUILDS | I.GUILD_PRESENCES | I.MESSAGE_CONTENT)
    assert heard == [
        "the client asks for intents the recording was made without "
        "(GUILD_PRESENCES|MESSAGE_CONTENT): the archive cannot hold their events nor message content"
    ]


def test_decisions_are_made_once_per_event_name() -> None:
    f = IntentFilter(I.GUILDS | I.GUILD_MESSAGES | I.MESSAGE_CONTENT, "9")
    assert f.decide("MESSAGE_CREATE") is I.Decision.INSPECT  # guild only: DMs dropped
    assert f.decide("PRESENCE_UPDATE") is I.Decision.DROP
    assert f.decide("GUILD_CREATE") is I.Decision.INSPECT
    assert f.decide("INTERACTION_CREATE") is I.Decision.SEND
    assert f.decide("MESSAGE_DELETE_BULK") is I.Decision.SEND
    both = IntentFilter(I.GUILD_MESSAGES | I.DIRECT_MESSAGES | I.MESSAGE_CONTENT, "9")
    assert both.decide("MESSAGE_CREATE") is I.Decision.SEND  # not even decoded


names = st.sampled_from(sorted({**I.INTENT_NAMES, **I.GRANT_ALIASES}))


@given(st.lists(names, min_size=1, max_size=6), st.sampled_from([",", "|", " , "]), st.booleans())
def test_parse_grant_reads_names(chosen: list[str], sep: str, lower: bool) -> None:
    text = sep.join(n.lower() if lower else n for n in chosen)
    expected = 0
    for n in chosen:
        expected |= I.INTENT_NAMES.get(n) or I.GRANT_ALIASES[n]
    assert parse_grant(text) == expected & I.PRIVILEGED_INTENTS


@given(st.integers(min_value=0, max_value=1 << 40))
def test_parse_grant_reads_numbers(value: int) -> None:
    assert parse_grant(str(value)) == value & I.PRIVILEGED_INTENTS


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters=",|"), min_size=1))
def test_parse_grant_refuses_unknown_names_in_one_line(text: str) -> None:
    known = {k.lower() for k in {**I.INTENT_NAMES, **I.GRANT_ALIASES}} | {"all", "none", ""}
    if text.strip().lower() in known or text.strip().isdigit():
        return
    with pytest.raises(IntentsError) as caught:
        parse_grant(text)
    assert str(caught.value).startswith("--grant-intents: unknown intent")


def test_parse_grant_all_and_none() -> None:
    assert parse_grant("all") == I.PRIVILEGED_INTENTS
    assert parse_grant("none") == 0
