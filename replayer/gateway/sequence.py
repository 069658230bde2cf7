"""A payload's sequence number ``s`` rewritten in its encoded bytes, without decoding it.

A replayed dispatch often goes out under another ``s`` than it was recorded with (the
intents filter dropped some before it, a RESUME replays from elsewhere): re-encoding the
whole payload for one number costs far more than sending it. Discord sends the top-level
keys of a payload as ``t``, ``s``, ``op``, ``d`` (Events > Gateway Events > Payload
Structure), so ``s`` comes before the large ``d`` and only a short prefix is looked at.

Exact or nothing: the rewrite is done only when ``s`` is a key of the top-level object
whose preceding keys all have scalar values (so it is provably at the top level); any
other payload gives None, and the caller decodes and re-encodes. (A JSON object with two
top-level ``s`` keys, which RFC 8259 section 4 leaves undefined, is not supported.)
"""

from __future__ import annotations

import re

_WS = rb"[ \t\n\r]*"
_STRING = rb'"(?:[^"\\]|\\.)*"'
_NUMBER = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_SCALAR = rb"(?:" + _STRING + rb"|" + _NUMBER + rb"|true|false|null)"
_MEMBER = rb'(?!"s"' + _WS + rb":)" + _STRING + _WS + rb":" + _WS + _SCALAR + _WS + rb"," + _WS
# The object's opening, members with scalar values (none of them "s"), then "s": and its
# value (an integer or null), followed by the end of that value (a comma or the object's end).
_JSON_S = re.compile(
    _WS + rb"\{" + _WS + rb"(?:" + _MEMBER + rb")*?" + rb'"s"' + _WS + rb":" + _WS
    + rb"(-?(?:0|[1-9][0-9]*)|null)" + _WS + rb"[,}]",
    re.DOTALL,
)  # fmt: skip


def rewrite_json_seq(payload: bytes, s: int) -> bytes | None:
    """``payload`` (one JSON gateway payload) with its top-level ``s`` set to ``s``; None
    when ``s`` is not provably a top-level key before any non-scalar value."""
    match = _JSON_S.match(payload)
    if match is None:
        return None
    start, end = match.span(1)
    return b"%s%d%s" % (payload[:start], s, payload[end:])
