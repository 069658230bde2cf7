"""Pseudonymisation: an archive of a real bot, made fit to publish (issue #14).

A :class:`Scrubber` maps records to records. Everything it invents comes from a keyed
HMAC-SHA256 (stdlib), so one key gives one mapping, and nobody without the key can
tell which real user, message or guild a pseudonym stands for:

* **snowflakes** (a string of 15-20 digits, or such an int, in any field but the
  bitfields, as values, array items and map keys; inside REST paths; in ``<@id>``-style
  mentions) become other snowflakes with the same timestamp bits (Discord docs:
  Reference > Snowflakes), one-to-one within the archive. Ordering, creation dates and
  the shard of a guild (``(guild_id >> 22) % num_shards``) survive;
* **names** (username, global_name, nick, guild, channel, role and emoji names, ...)
  become a pronounceable word of the same length: the same name gives the same word in
  every frame and REST body;
* **hashes** (avatar, banner, icon, splash, ...) become other hex strings of the shape;
* **text** (message content, embed and attachment text, topics, bios, activity states)
  becomes filler words whose length is the original's rounded up to a power of two
  (at most 2000 for up to 2000): the length class survives, not the words. Mentions,
  channel links, custom emoji and ``<t:...>`` timestamps in it are kept, their ids
  and names mapped;
* **URLs** of attachments and embeds keep Discord's hosts and route words (other hosts
  become ``example.com``, their paths renamed), their ids mapped and the file name
  renamed; the query (CDN signatures) is dropped.

Protocol fields (``op``, ``s``, ``t``, ``session_id``, ``resume_gateway_url``,
``heartbeat_interval``, ``intents``, flags, permissions, types, timestamps) and
everything not named above are kept as they are. A frame that cannot be decoded
(``UNDECODED``) cannot be scrubbed field by field: its payload becomes a placeholder of
the same length. A REST body that is not JSON likewise.

Redaction of secrets (:mod:`replayer.archive.redaction`) is a separate step that runs
first, in the writer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from replayer.archive.records import (
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    Headers,
    HttpRecord,
    Record,
)
from replayer.errors import CodecError
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload

SNOWFLAKE_MIN = 10**14  # 15 digits
SNOWFLAKE_LIMIT = 1 << 64
_TIMESTAMP_SHIFT = 22  # the low 22 bits: worker, process, increment
_LOW_MASK = (1 << _TIMESTAMP_SHIFT) - 1
_DRAWS = 1000  # then a snowflake of another digit count will do
MAX_CONTENT = 2000  # a message's content, at most (Discord docs: Resources > Message)

PLACEHOLDER = b"[SCRUBBED]"
UNDECODABLE = "scrubbed: the payload could not be decoded"

_SNOWFLAKE = re.compile(r"[0-9]{15,20}")
_SNOWFLAKE_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{15,20}(?![0-9])")
# Discord docs: Reference > Message Formatting.
_MARKUP = re.compile(
    r"<(?P<user>@!?|@&|#)(?P<id>[0-9]{15,20})>"
    r"|<(?P<anim>a?):(?P<emoji>\w{1,32}):(?P<emoji_id>[0-9]{15,20})>"
    r"|<t:-?[0-9]{1,16}(?::[tTdDfFR])?>"
    r"|<id:\w+>"
    r"|@everyone|@here"
)

# Never touched, whatever they hold.
PROTOCOL_KEYS = frozenset(
    {"op", "s", "t", "session_id", "resume_gateway_url", "heartbeat_interval", "intents",
     "seq", "shard", "v", "_trace", "token", "type", "timestamp"}
)  # fmt: skip
# Digits that are not ids: bitfields and counts (Discord docs: Topics > Permissions).
NOT_IDS = frozenset(
    {"permissions", "allow", "deny", "permissions_new", "allow_new", "deny_new", "flags",
     "public_flags", "system_channel_flags", "accent_color", "color", "created_at"}
)  # fmt: skip
NAME_KEYS = frozenset(
    {"username", "global_name", "nick", "display_name", "name", "query", "slug",
     "vanity_url_code", "tag"}
)  # fmt: skip
TEXT_KEYS = frozenset(
    {"content", "title", "description", "value", "text", "topic", "bio", "state",
     "details", "summary", "reason", "label", "placeholder", "pronouns", "tags",
     "custom_status"}
)  # fmt: skip
HASH_KEYS = frozenset(
    {"avatar", "banner", "icon", "splash", "discovery_splash", "icon_hash", "asset",
     "image", "cover_image", "badge"}
)  # fmt: skip
# Voice: SELECT_PROTOCOL's `data.address` is the client's public IP (IP discovery).
IP_KEYS = frozenset({"address", "ip"})
URL_KEYS = frozenset({"url", "proxy_url", "icon_url", "proxy_icon_url", "avatar_url"})
# Not personal, and clients may rely on them.
SAFE_NAMES = frozenset({"@everyone", "Custom Status"})
DISCORD_HOSTS = ("discord.com", "discordapp.com", "discordapp.net", "discord.gg", "discord.media")

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_WORDS = (  # noqa: SIM905 - a sentence reads better than 46 quoted words
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur"
).split()
_HEX = frozenset("0123456789abcdef")


def length_class(n: int) -> int:
    """The length a text of ``n`` characters is replaced by: ``n`` rounded up to a power
    of two, but never past 2000 (a message's limit) for a text within it."""
    if n <= 0:
        return 0
    bucket = 1 << (n - 1).bit_length()
    return min(bucket, MAX_CONTENT) if n <= MAX_CONTENT else bucket


def is_snowflake_value(value: object) -> bool:
    """A string of 15-20 digits, or an int of as many, below 2**64."""
    if type(value) is str:
        return _SNOWFLAKE.fullmatch(value) is not None and int(value) < SNOWFLAKE_LIMIT
    return type(value) is int and SNOWFLAKE_MIN <= value < SNOWFLAKE_LIMIT


@dataclass(slots=True)
class ScrubStats:
    records: int = 0
    ids: int = 0  # distinct snowflakes mapped
    names: int = 0  # distinct names replaced
    texts: int = 0  # text fields replaced
    undecoded: int = 0  # payloads and bodies replaced by a placeholder


class Scrubber:
    """Pseudonymises records, consistently across one archive. One per archive."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._ids: dict[int, int] = {}
        self._taken: set[int] = set()
        self._names: dict[str, str] = {}
        self._encodings: dict[int, Encoding] = {}
        self.stats = ScrubStats()

    # --- primitives ------------------------------------------------------------------

    def _digest(self, domain: bytes, data: bytes, counter: int = 0) -> bytes:
        message = domain + b"\0" + counter.to_bytes(4, "big") + data
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _stream(self, domain: bytes, data: bytes) -> Iterator[int]:
        """An endless keyed byte stream for ``data``."""
        counter = 0
        while True:
            yield from self._digest(domain, data, counter)
            counter += 1

    def snowflake(self, old: int) -> int:
        """Another snowflake with ``old``'s timestamp bits; one-to-one within the archive."""
        new = self._ids.get(old)
        if new is not None:
            return new
        high = old & ~_LOW_MASK
        data = old.to_bytes(8, "big")
        digits = len(str(old))
        counter = 0
        while True:
            low = int.from_bytes(self._digest(b"id", data, counter)[:4], "big") & _LOW_MASK
            new = high | low
            # Drawn again: a collision, or (near a power of ten) another digit count,
            # unless the block holds no other id of old's length.
            fresh = new != old and new not in self._taken
            if fresh and (len(str(new)) == digits or counter >= _DRAWS):
                break
            counter += 1
        self._ids[old] = new
        self._taken.add(new)
        self.stats.ids += 1
        return new

    def _snowflake_str(self, text: str) -> str:
        return str(self.snowflake(int(text)))

    def ids_in(self, text: str) -> str:
        """``text`` with every standalone run of 15-20 digits mapped (paths, URLs)."""

        def one(m: re.Match[str]) -> str:
            value = int(m.group(0))
            return str(self.snowflake(value)) if value < SNOWFLAKE_LIMIT else m.group(0)

        return _SNOWFLAKE_IN_TEXT.sub(one, text)

    def name(self, old: str) -> str:
        """A pronounceable lowercase word of ``old``'s length (2 to 32): the same for the
        same name everywhere."""
        if old in SAFE_NAMES or not any(c.isalnum() for c in old):
            return old
        new = self._names.get(old)
        if new is None:
            size = max(2, min(len(old), 32))
            stream = self._stream(b"name", old.encode("utf-8", "surrogatepass"))
            letters = []
            for i in range(size):
                pool = _CONSONANTS if i % 2 == 0 else _VOWELS
                letters.append(pool[next(stream) % len(pool)])
            new = "".join(letters)
            self._names[old] = new
            self.stats.names += 1
        return new

    def hash(self, old: str) -> str:
        """An asset hash of the same shape: ``a_`` (animated) kept, hex for hex."""
        prefix = "a_" if old.startswith("a_") else ""
        body = old[len(prefix) :]
        digest = self._stream(b"hash", old.encode("utf-8", "surrogatepass"))
        if set(body) <= _HEX:
            return (
                prefix
                + "".join(f"{next(digest):02x}" for _ in range((len(body) + 1) // 2))[: len(body)]
            )
        return prefix + self.name(body)

    def _filler(self, size: int, seed: str) -> str:
        """Filler words, exactly ``size`` characters."""
        stream = self._stream(b"text", seed.encode("utf-8", "surrogatepass"))
        words: list[str] = []
        used = 0
        while True:
            room = size - used - (1 if words else 0)
            if room <= 0:
                break
            word = _WORDS[next(stream) % len(_WORDS)][:room]
            used += len(word) + (1 if words else 0)
            words.append(word)
        return " ".join(words).ljust(size, ".")

    def text(self, old: str) -> str:
        """Filler of ``old``'s length class; markup (mentions, emoji, timestamps) kept,
        its ids and names mapped. Each stretch of plain text between markup is replaced
        on its own, its leading and trailing whitespace kept."""
        if not old:
            return old
        self.stats.texts += 1
        out: list[str] = []
        start = 0
        for m in _MARKUP.finditer(old):
            out.append(self._plain(old[start : m.start()], old))
            out.append(self._markup(m))
            start = m.end()
        out.append(self._plain(old[start:], old))
        return "".join(out)

    def _plain(self, stretch: str, whole: str) -> str:
        inner = stretch.strip()
        if not inner:
            return stretch
        lead = stretch[: len(stretch) - len(stretch.lstrip())]
        trail = stretch[len(stretch.rstrip()) :]
        return lead + self._filler(length_class(len(inner)), whole + "\0" + inner) + trail

    def _markup(self, m: re.Match[str]) -> str:
        if m.group("id"):
            return f"<{m.group('user')}{self._snowflake_str(m.group('id'))}>"
        if m.group("emoji_id"):
            emoji = self.name(m.group("emoji"))
            return f"<{m.group('anim')}:{emoji}:{self._snowflake_str(m.group('emoji_id'))}>"
        return m.group(0)

    def filename(self, old: str) -> str:
        """A renamed file, its extension kept."""
        stem, dot, ext = old.rpartition(".")
        if dot and stem and 1 <= len(ext) <= 5 and ext.isalnum():
            return self.name(stem) + "." + ext
        return self.name(old)

    def url(self, old: str) -> str:
        """Discord's hosts and route words kept (others: example.com, every segment
        renamed), ids mapped, the file name renamed, query and fragment dropped. Gateway
        URLs (ws://, wss://) only get their ids mapped."""
        parts = urlsplit(old)
        if parts.scheme not in ("http", "https"):
            return self.ids_in(old)
        host = parts.netloc.lower()
        bare = host.rsplit("@", 1)[-1].split(":", 1)[0]
        discord = any(bare == d or bare.endswith("." + d) for d in DISCORD_HOSTS)
        if not discord:
            host = "example.com"
        segments = parts.path.split("/")
        last = len(segments) - 1
        for i, segment in enumerate(segments):
            if _SNOWFLAKE.fullmatch(segment) and int(segment) < SNOWFLAKE_LIMIT:
                segments[i] = self._snowflake_str(segment)
            elif segment and (i == last or not discord):  # Discord's route words stay
                segments[i] = self.filename(segment)
        return urlunsplit((parts.scheme, host, "/".join(segments), "", ""))

    def ip(self, old: str) -> str:
        """An address of the same family in a range no one routes: IPv4 in 198.18.0.0/15
        (RFC 2544), IPv6 in 2001:db8::/32 (RFC 3849); not an address: a name."""
        try:
            address = ipaddress.ip_address(old)
        except ValueError:
            return self.name(old)
        digest = self._digest(b"ip", address.packed)
        if address.version == 4:
            low = int.from_bytes(digest[:4], "big") & 0x1FFFF
            return str(ipaddress.IPv4Address((198 << 24 | 18 << 16) + low))
        low = int.from_bytes(digest[:12], "big")
        return str(ipaddress.IPv6Address((0x20010DB8 << 96) + low))

    def email(self, old: str) -> str:
        local = old.split("@", 1)[0]
        return f"{self.name(local or old)}@example.com"

    def placeholder(self, size: int) -> bytes:
        """``size`` bytes of ``[SCRUBBED]`` repeated."""
        self.stats.undecoded += 1
        return (PLACEHOLDER * (size // len(PLACEHOLDER) + 1))[:size]

    # --- payloads --------------------------------------------------------------------

    def value(self, obj: Any, key: str = "") -> Any:
        """A decoded JSON or ETF value, scrubbed; ``key`` is the field it sits in (list
        items take their list's key)."""
        if key in PROTOCOL_KEYS:
            return obj
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if type(k) is str and _SNOWFLAKE.fullmatch(k) and int(k) < SNOWFLAKE_LIMIT:
                    out[self._snowflake_str(k)] = self.value(v, k)
                else:
                    out[k] = self.value(v, k if type(k) is str else "")
            return out
        if isinstance(obj, list):
            return [self.value(item, key) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.value(item, key) for item in obj)
        if type(obj) is str:
            return self._string(obj, key)
        if type(obj) is int:
            if key not in NOT_IDS and SNOWFLAKE_MIN <= obj < SNOWFLAKE_LIMIT:
                return self.snowflake(obj)
            return obj
        if type(obj) is bytes and (key in TEXT_KEYS or key in NAME_KEYS) and obj:
            return self.placeholder(length_class(len(obj)))
        return obj

    def _string(self, v: str, key: str) -> str:
        if not v:
            return v
        # A name first: a username may be all digits and look like a snowflake.
        if key in NAME_KEYS:
            return self.name(v)
        if key not in NOT_IDS and _SNOWFLAKE.fullmatch(v) and int(v) < SNOWFLAKE_LIMIT:
            return self._snowflake_str(v)
        if key in TEXT_KEYS:
            return self.text(v)
        if key in HASH_KEYS:
            return self.hash(v)
        if key in URL_KEYS:
            return self.url(v)
        if key == "filename":
            return self.filename(v)
        if key == "email":
            return self.email(v)
        if key in IP_KEYS:
            return self.ip(v)
        return v

    # --- records ---------------------------------------------------------------------

    def scrub(self, record: Record) -> Record:
        """The record, pseudonymised."""
        self.stats.records += 1
        if type(record) is FrameRecord:
            return self._frame(record)
        if isinstance(record, ConnectionRecord):
            try:
                self._encodings[record.conn_id] = Encoding.parse(record.query.encoding)
            except CodecError:
                self._encodings[record.conn_id] = Encoding.JSON
            url = self.ids_in(record.url)
            return record if url == record.url else replace(record, url=url)
        if isinstance(record, HttpRecord):
            return self._http(record)
        return record  # connection_info and close hold nothing personal

    def _frame(self, frame: FrameRecord) -> FrameRecord:
        if frame.flags & FrameFlag.UNDECODED:
            return replace(frame, payload=self.placeholder(len(frame.payload)))
        encoding = self._encodings.get(frame.conn_id, Encoding.JSON)
        try:
            obj = decode_payload(frame.payload, encoding)
            new = self.value(obj)
            if new == obj:
                return frame
            payload = encode_payload(new, encoding)
        except (CodecError, RecursionError):
            return replace(
                frame,
                payload=self.placeholder(len(frame.payload)),
                op=None,
                s=None,
                t=None,
                flags=frame.flags | FrameFlag.UNDECODED,
                error=UNDECODABLE,
            )
        return replace(frame, payload=payload)

    def _body(self, body: bytes) -> bytes:
        if not body:
            return body
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self.placeholder(len(body))
        new = self.value(obj)
        if new == obj:
            return body
        return json.dumps(new, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def _http(self, h: HttpRecord) -> HttpRecord:
        request_body = self._body(h.request_body)
        response_body = self._body(h.response_body)
        return replace(
            h,
            path=self.ids_in(h.path),
            request_body=request_body,
            response_body=response_body,
            request_headers=_content_length(h.request_headers, h.request_body, request_body),
            response_headers=_content_length(h.response_headers, h.response_body, response_body),
        )


def _content_length(headers: Headers, old: bytes, new: bytes) -> Headers:
    """``Content-Length`` following a body that changed size."""
    if len(old) == len(new):
        return headers
    return tuple(
        (k, str(len(new))) if k.lower() == "content-length" else (k, v) for k, v in headers
    )
