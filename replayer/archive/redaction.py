"""Redaction: secrets are replaced before anything reaches the disk.

Every class of Discord secret (docs/archive-format.md §5 lists them with their docs):

* the bot token: IDENTIFY and RESUME ``d.token`` (Events > Gateway Events > Identify /
  Resume), ``Authorization``-like headers, ``?token=`` in URLs;
* interaction tokens: INTERACTION_CREATE ``d.token`` (Interactions > Receiving and
  Responding) and the ``/interactions/<id>/<token>`` and ``/webhooks/<app>/<token>`` paths;
* voice tokens: VOICE_SERVER_UPDATE ``d.token`` (Events > Gateway Events > Voice Server
  Update) and the voice IDENTIFY/RESUME ``token``;
* webhook tokens: ``/webhooks/<id>/<token>`` paths and ``token`` in webhook objects
  (Resources > Webhook);
* OAuth2 (Topics > OAuth2): ``client_secret``, ``code``, ``access_token``,
  ``refresh_token``, ``client_assertion`` in form and JSON bodies and in responses.

Fields are found in the bytes (a ``"...token"`` key in JSON, ``key=`` in a form), so a
payload that does not parse (a string ``s``, a trailing byte, a duplicate key, an
IDENTIFY cut over two messages) is redacted as well as one that does. A safety net scans
everything stored raw or undecoded, what clients send and every HTTP body for the
bot-token shape. Every secret seen once is also scrubbed from every later byte string
the archive gets, wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from replayer.archive.records import (
    CloseRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    Headers,
    HttpRecord,
    Record,
)
from replayer.errors import CodecError
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.opcodes import Direction

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_REDACTED_BYTES = REDACTED.encode()
_UNDECODED = FrameFlag.UNDECODED
_MIN_SECRET_LEN = 8  # shorter strings would scrub innocent bytes
_URL_SECRET = re.compile(
    r"(?P<keep>(?:[?&](?:token|access_token|refresh_token|client_secret|code)=))[^&#]*"
    r"|(?P<path>/(?:webhooks|interactions)/\d+/)[^/?#]+",
    re.IGNORECASE,
)
# A JSON member whose key is a secret: "token", "<anything>_token", "client_secret" (and
# "code" under /oauth2/). The value may run to the end of the bytes unterminated: the
# first half of a payload cut in two.
_KEY = rb"(?:[A-Za-z_]*_)?token|client_secret|client_assertion"
_JSON_VALUE = rb'(?P<head>"(?:' + b"%s" + rb')"[ \t\n\r]*:[ \t\n\r]*")(?P<value>(?:[^"\\]|\\.)*)'
_SECRET_KEY = re.compile(_KEY)
_JSON_SECRET = re.compile(_JSON_VALUE % _KEY)
_JSON_OAUTH_SECRET = re.compile(_JSON_VALUE % (_KEY + rb"|code"))
_FORM_SECRET = re.compile(rb"(?P<head>(?:^|(?<=&))(?:" + _KEY + rb"|code)=)(?P<value>[^&]*)")
# The rest of a JSON string that began in the message before.
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*')
# A bot token: base64url(user id) "." base64url(timestamp) "." HMAC (and any JWT).
_TOKEN_SHAPE = re.compile(rb"[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}")
_OAUTH_PATH = re.compile(r"/oauth2/", re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """The tokens carried in a URL's query or path."""
    return [
        m.group(0)[len(m.group("keep") or m.group("path")) :] for m in _URL_SECRET.finditer(url)
    ]


def redact_url(url: str) -> str:
    """Replace tokens carried in a URL's query or path (for logs and displays too)."""
    return _URL_SECRET.sub(
        lambda m: (m.group("keep") or m.group("path")) + REDACTED,
        url,
    )


def _walk_secrets(obj: Any, oauth: bool, found: Callable[[str], None]) -> Any:
    """A copy of a decoded payload with every secret-keyed string replaced."""
    if isinstance(obj, list):
        return [_walk_secrets(item, oauth, found) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[Any, Any] = {}
    for key, value in obj.items():
        name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        if not isinstance(value, str | bytes) or not _is_secret_key(name, oauth):
            out[key] = _walk_secrets(value, oauth, found)
            continue
        text = value.decode(errors="surrogateescape") if isinstance(value, bytes) else value
        if text != REDACTED:
            found(text)
        out[key] = REDACTED
    return out


def _is_secret_key(name: str, oauth: bool) -> bool:
    return bool(_SECRET_KEY.fullmatch(name.encode(errors="replace"))) or (oauth and name == "code")


class Redactor:
    """Scrubs records; learns secrets as it goes. One per archive writer."""

    def __init__(self) -> None:
        self._secrets: list[bytes] = []
        self._encodings: dict[int, Encoding] = {}
        # Per connection: a client string value cut off at the end of a message (the
        # first half of a secret); its rest opens the next message.
        self._open_secret: dict[int, bytes] = {}

    @property
    def secret_count(self) -> int:
        return len(self._secrets)

    def learn(self, secret: str) -> None:
        """Scrub ``secret`` (and the bare token of ``Bot <token>``) from now on."""
        self._learn_bytes(secret.encode(errors="surrogateescape"))

    def _learn_bytes(self, secret: bytes) -> None:
        for candidate in (secret, secret.split(b" ", 1)[-1]):
            raw = candidate.strip()
            if _REDACTED_BYTES in raw:
                continue
            if len(raw) < _MIN_SECRET_LEN or any(known in raw for known in self._secrets):
                continue  # scrubbing a secret it contains already hides it
            # Keep only secrets that contain no other: one scan per distinct token, which
            # matters for megabyte payloads ("Bot <token>" and "<token>" are one scan).
            self._secrets = [known for known in self._secrets if raw not in known]
            self._secrets.append(raw)

    def scrub(self, data: bytes) -> bytes:
        """``data`` without any learned secret."""
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, _REDACTED_BYTES)
        return data

    def _net(self, data: bytes) -> bytes:
        """The safety net for bytes stored as they came: learned secrets, then anything
        shaped like a bot token (learned too)."""
        data = self.scrub(data)
        if b"." not in data:
            return data

        def hide(match: re.Match[bytes]) -> bytes:
            self._learn_bytes(match.group(0))
            return _REDACTED_BYTES

        return _TOKEN_SHAPE.sub(hide, data)

    def _fields(self, data: bytes, pattern: re.Pattern[bytes]) -> bytes:
        """Secret-keyed values found in the bytes replaced (and learned)."""

        def hide(match: re.Match[bytes]) -> bytes:
            value = match.group("value")
            if value == _REDACTED_BYTES:
                return match.group(0)
            self._learn_bytes(value)
            return match.group("head") + _REDACTED_BYTES

        return pattern.sub(hide, data)

    def _scrub_str(self, text: str, net: bool = False) -> str:
        if not self._secrets and not net:
            return text
        data = text.encode(errors="surrogateescape")
        return (self._net(data) if net else self.scrub(data)).decode(errors="surrogateescape")

    def _headers(self, headers: Headers) -> Headers:
        out = []
        for name, value in headers:
            if name.lower() in SECRET_HEADERS:
                self.learn(value)
                out.append((name, REDACTED))
            else:
                out.append((name, self._scrub_str(value, net=True)))
        return tuple(out)

    def _url(self, url: str) -> str:
        for secret in url_secrets(url):
            self.learn(secret)
        return self._scrub_str(redact_url(url), net=True)

    def redact(self, record: Record) -> Record:
        """The record as it may be written. Headers go first: a secret they reveal is
        scrubbed from the rest of the same record too."""
        if type(record) is FrameRecord:
            return self._frame(record)
        if isinstance(record, ConnectionRecord):
            self._encodings[record.conn_id] = _encoding_or_json(record.query.encoding)
            headers = self._headers(record.headers)
            return replace(record, headers=headers, url=self._url(record.url))
        if isinstance(record, HttpRecord):
            request_headers = self._headers(record.request_headers)
            response_headers = self._headers(record.response_headers)
            path = self._url(record.path)
            oauth = bool(_OAUTH_PATH.search(record.path))
            return replace(
                record,
                path=path,
                request_headers=request_headers,
                response_headers=response_headers,
                request_body=self._body(record.request_body, oauth),
                response_body=self._body(record.response_body, oauth),
            )
        if isinstance(record, CloseRecord):
            self._open_secret.pop(record.conn_id, None)
            if record.reason:
                return replace(record, reason=self._scrub_str(record.reason, net=True))
        return record

    def _body(self, body: bytes, oauth: bool) -> bytes:
        """An HTTP body: JSON members and form fields with secret keys, then the net."""
        if not body:
            return body
        body = self._fields(body, _JSON_OAUTH_SECRET if oauth else _JSON_SECRET)
        body = self._fields(body, _FORM_SECRET)
        return self._net(body)

    def _frame(self, frame: FrameRecord) -> FrameRecord:
        payload = frame.payload
        from_client = frame.direction == Direction.CLIENT
        if from_client:
            payload = self._client_payload(frame.conn_id, payload)
        elif frame.flags & _UNDECODED:
            payload = self._net(self._fields(payload, _JSON_SECRET))
        elif b"token" in payload:  # INTERACTION_CREATE, VOICE_SERVER_UPDATE, webhooks
            payload = self._secret_members(frame.conn_id, payload)
        secrets = self._secrets
        if not secrets and payload is frame.payload:
            return frame  # the common case before any token is known
        payload = self.scrub(payload)
        error = frame.error
        if error is not None and secrets:
            error = self._scrub_str(error)
        changed = payload is not frame.payload and payload != frame.payload
        if not changed and error == frame.error:
            return frame
        flags = frame.flags | FrameFlag.REDACTED if changed else frame.flags
        return replace(frame, payload=payload, flags=flags, error=error)

    def _client_payload(self, conn_id: int, payload: bytes) -> bytes:
        """What a client sent (at most 4096 bytes by Discord's rules, so every check is
        cheap): the rest of a secret cut off in the message before, secret members
        (decoded or not), then the net."""
        head = self._open_secret.pop(conn_id, None)
        if head is not None:
            rest = _STRING_REST.match(payload)
            end = rest.end() if rest else 0
            if end == len(payload):  # the middle of a secret: its end is still to come
                self._open_secret[conn_id] = head + payload
                return _REDACTED_BYTES
            self._learn_bytes(head + payload[:end])
            payload = _REDACTED_BYTES + payload[end:]
        if self._encodings.get(conn_id) is Encoding.ETF:
            return self._net(self._secret_members(conn_id, payload))
        last = None
        for match in _JSON_SECRET.finditer(payload):
            last = match
        cut = None
        if last is not None and last.end() == len(payload) and last.group("value") != REDACTED:
            # Cut off ("token":"MTIz... and no closing quote): the secret's rest opens
            # the next message. The half is not learned: the whole is, then.
            cut = last.group("value")
            payload = payload[: last.start("value")]
        payload = self._fields(payload, _JSON_SECRET)
        if cut is not None:
            self._open_secret[conn_id] = cut
            payload += _REDACTED_BYTES
        return self._net(payload)

    def _secret_members(self, conn_id: int, payload: bytes) -> bytes:
        """Secret-keyed members of a payload in the connection's encoding. JSON is
        changed in place (the peer's other bytes kept); ETF is decoded and re-encoded."""
        encoding = self._encodings.get(conn_id, Encoding.JSON)
        if encoding is Encoding.JSON:
            return self._fields(payload, _JSON_SECRET)
        try:
            obj = decode_payload(payload, encoding)
        except CodecError:
            return self._net(payload)
        found: list[str] = []
        redacted = _walk_secrets(obj, False, found.append)
        if not found:
            return payload
        for secret in found:
            self.learn(secret)
        try:
            return encode_payload(redacted, encoding)
        except CodecError:
            return self._net(self.scrub(payload))


def _encoding_or_json(text: str) -> Encoding:
    try:
        return Encoding.parse(text)
    except CodecError:
        return Encoding.JSON
