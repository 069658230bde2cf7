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
            v=int(v_text) if v_text and v_text.isdigit() else None,
            encoding=first("encoding") or "json",
            compress=first("compress") or None,
        )
