"""Gateway payloads: ``{"op": int, "d": any, "s": int|null, "t": str|null}``.

Discord docs: Events > Gateway Events > Payload Structure. ``s`` and ``t`` are null unless
``op`` is 0 (DISPATCH). Parsing never guesses: a payload that is not a map with an integer
``op`` is a :class:`~replayer.errors.GatewayError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from replayer.errors import GatewayError
from replayer.gateway.opcodes import Opcode

# Discord docs: Gateway > Sending Events: "payloads ... may not exceed 4096 bytes"
# (larger ones close the connection with 4002).
MAX_CLIENT_PAYLOAD_BYTES = 4096


@dataclass(slots=True)
class Payload:
    """One decoded gateway payload; treat it as immutable (not frozen: a frozen dataclass
    costs several times more to build, on the recorder's per-message path)."""

    op: int
    d: Any = None
    s: int | None = None
    t: str | None = None

    @property
    def is_dispatch(self) -> bool:
        return self.op == Opcode.DISPATCH

    def to_obj(self) -> dict[str, Any]:
        """The payload as the map that goes on the wire."""
        return {"op": self.op, "d": self.d, "s": self.s, "t": self.t}


def parse_payload(obj: object) -> Payload:
    """Read a decoded payload map (JSON object or ETF map with string keys)."""
    if type(obj) is dict:  # the common case, checked at the cost of a few lookups
        op, s, t = obj.get("op"), obj.get("s"), obj.get("t")
        if type(op) is int and (s is None or type(s) is int) and (t is None or type(t) is str):
            return Payload(op, obj.get("d"), s, t)
    if not isinstance(obj, Mapping):
        raise GatewayError(f"payload is a {type(obj).__name__}, not a map")
    op = obj.get("op")
    if isinstance(op, bool) or not isinstance(op, int):
        raise GatewayError(f"payload 'op' is {op!r}, not an integer")
    s = obj.get("s")
    if s is not None and (isinstance(s, bool) or not isinstance(s, int)):
        raise GatewayError(f"payload 's' is {s!r}, not an integer or null")
    t = obj.get("t")
    if t is not None and not isinstance(t, str):
        raise GatewayError(f"payload 't' is {t!r}, not a string or null")
    return Payload(op=op, d=obj.get("d"), s=s, t=t)
