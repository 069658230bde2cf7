"""The gateway URL's query: ``wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream``.

Discord docs: Events > Gateway > Connecting (Gateway URL Query String Params).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class GatewayQuery:
    """``v`` (API version), ``encoding`` (json or etf) and ``compress`` (or None)."""

    v: int | None = None
    encoding: str = "json"
    compress: str | None = None

    @classmethod
    def from_url(cls, url: str) -> GatewayQuery:
        """Read the query of a gateway URL; absent or malformed parts get defaults."""
        params = parse_qs(urlsplit(url).query)

        def first(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        v_text = first("v")
        return cls(
            # ASCII digits only ("²".isdigit() is true, int() refuses it), and no more
            # than int() parses without its 4,300-digit limit getting in the way.
            v=int(v_text)
            if v_text and v_text.isascii() and v_text.isdigit() and len(v_text) <= 100
            else None,
            encoding=first("encoding") or "json",
            compress=first("compress") or None,
        )

    def archived(self) -> GatewayQuery:
        """The query as an archive holds it (docs/archive-format.md, section 3.1): ``v``
        nil unless it fits a 64-bit integer, ``encoding`` ``json`` unless it is one the
        payloads can be decoded with (a connection asking for another one is closed with
        4002 before any payload, by Discord and by the replay alike)."""
        v = self.v if self.v is None or self.v < 1 << 63 else None
        encoding = self.encoding if self.encoding in ("json", "etf", "") else "json"
        if v == self.v and encoding == self.encoding:
            return self
        return GatewayQuery(v, encoding, self.compress)
