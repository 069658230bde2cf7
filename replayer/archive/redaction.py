"""Redaction: secrets are replaced before anything reaches the disk.

What counts as a secret: ``d.token`` of IDENTIFY and RESUME (Discord docs: Events >
Gateway Events > Identify / Resume), ``Authorization``-like headers, tokens in URLs
(``?token=``, webhook and interaction paths). Every secret seen once is also scrubbed from
every later byte string the archive gets, wherever it appears.
"""

from __future__ import annotations

import re
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
from replayer.gateway.opcodes import Direction, Opcode

REDACTED = "[REDACTED]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_REDACTED_BYTES = REDACTED.encode()
_UNDECODED = FrameFlag.UNDECODED
_MIN_SECRET_LEN = 8  # shorter strings would scrub innocent bytes
_TOKEN_OPS = frozenset({Opcode.IDENTIFY, Opcode.RESUME})
_URL_SECRET = re.compile(
    r"(?P<keep>(?:[?&](?:token|access_token|refresh_token|client_secret|code)=))[^&#]*"
    r"|(?P<path>/(?:webhooks|interactions)/\d+/)[^/?#]+",
    re.IGNORECASE,
)


def url_secrets(url: str) -> list[str]:
    """The tokens carried in a URL's query or path."""
    return [
        m.group(0)[len(m.group("keep") or m.group("path")) :] for m in _URL_SECRET.finditer(url)
    ]


def redact_url(url: str) -> str:
    """Replace tokens carried in a URL's query or path."""
    return _URL_SECRET.sub(
        lambda m: (m.group("keep") or m.group("path")) + REDACTED,
        url,
    )


class Redactor:
    """Scrubs records; learns secrets as it goes. One per archive writer."""

    def __init__(self) -> None:
        self._secrets: list[bytes] = []
        self._encodings: dict[int, Encoding] = {}

    @property
    def secret_count(self) -> int:
        return len(self._secrets)

    def learn(self, secret: str) -> None:
        """Scrub ``secret`` (and the bare token of ``Bot <token>``) from now on."""
        for candidate in (secret, secret.split(" ", 1)[-1]):
            raw = candidate.strip().encode()
            if REDACTED.encode() in raw:
                continue
            if len(raw) < _MIN_SECRET_LEN or any(known in raw for known in self._secrets):
                continue  # scrubbing a secret it contains already hides it
            # Keep only secrets that contain no other: one scan per distinct token, which
            # matters for megabyte payloads ("Bot <token>" and "<token>" are one scan).
            self._secrets = [known for known in self._secrets if raw not in known]
            self._secrets.append(raw)

    def scrub(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, REDACTED.encode())
        return data

    def _scrub_str(self, text: str) -> str:
        if not self._secrets:
            return text
        return self.scrub(text.encode()).decode(errors="surrogateescape")

    def _headers(self, headers: Headers) -> Headers:
        out = []
        for name, value in headers:
            if name.lower() in SECRET_HEADERS:
                self.learn(value)
                out.append((name, REDACTED))
            else:
                out.append((name, self._scrub_str(value)))
        return tuple(out)

    def _url(self, url: str) -> str:
        for secret in url_secrets(url):
            self.learn(secret)
        return self._scrub_str(redact_url(url))

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
            return replace(
                record,
                path=self._url(record.path),
                request_headers=request_headers,
                response_headers=response_headers,
                request_body=self.scrub(record.request_body),
                response_body=self.scrub(record.response_body),
            )
        if isinstance(record, CloseRecord) and self._secrets:
            return replace(record, reason=self._scrub_str(record.reason))
        return record

    def _frame(self, frame: FrameRecord) -> FrameRecord:
        payload = frame.payload
        flags = frame.flags
        if (
            frame.op in _TOKEN_OPS
            and frame.direction == Direction.CLIENT
            and not flags & _UNDECODED
        ):
            encoding = self._encodings.get(frame.conn_id, Encoding.JSON)
            redacted = self._redact_token(payload, encoding)
            if redacted is not None:
                payload = redacted
                flags |= FrameFlag.REDACTED
        secrets = self._secrets
        if not secrets and payload is frame.payload:
            return frame  # the common case before any token is known
        for secret in secrets:
            if secret in payload:
                payload = payload.replace(secret, _REDACTED_BYTES)
                flags |= FrameFlag.REDACTED
        error = frame.error
        if error is not None and secrets:
            error = self._scrub_str(error)
        if payload is frame.payload and error == frame.error:
            return frame
        return replace(frame, payload=payload, flags=flags, error=error)

    def _redact_token(self, payload: bytes, encoding: Encoding) -> bytes | None:
        try:
            obj: Any = decode_payload(payload, encoding)
        except CodecError:
            return None
        d = obj.get("d") if isinstance(obj, dict) else None
        if not isinstance(d, dict):
            return None
        token = d.get("token")
        if not isinstance(token, str) or token == REDACTED:
            return None
        self.learn(token)
        d["token"] = REDACTED
        if encoding is Encoding.JSON:
            # Keep the client's bytes as they were, but for the token itself.
            quoted = b'"' + token.encode() + b'"'
            if payload.count(quoted) == 1:
                return payload.replace(quoted, b'"' + REDACTED.encode() + b'"')
        return encode_payload(obj, encoding)


def _encoding_or_json(text: str) -> Encoding:
    try:
        return Encoding.parse(text)
    except CodecError:
        return Encoding.JSON
