"""Payload encodings: JSON and ETF (the gateway URL's ``encoding`` query parameter).

Discord docs: Events > Gateway > Connecting (``encoding``: ``json`` or ``etf``) and
Encoding and Compression. Every failure is a :class:`~replayer.errors.CodecError`, also
an integer JSON cannot carry in Python (over ``sys.get_int_max_str_digits()`` digits, 4300
by default): it is refused both ways, never a ``ValueError``.
"""

from __future__ import annotations

import enum
import json
import json.scanner
import sys
from typing import Any

from replayer.errors import CodecError
from replayer.gateway.etf import etf_decode, etf_encode


class Encoding(enum.StrEnum):
    """How payloads are serialised on one connection."""

    JSON = "json"
    ETF = "etf"

    @classmethod
    def parse(cls, text: str | None) -> Encoding:
        """Read the ``encoding`` query value; absent or empty means JSON (Discord's default)."""
        if not text:
            return cls.JSON
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(member.value for member in cls)
            raise CodecError(f"unknown encoding {text!r} (expected one of: {known})") from None


# json.loads() minus its per-call checks: the C scanner straight away. Anything it does
# not take as a whole (leading or trailing whitespace, no value) goes to json.loads.
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed
_JSON_WHITESPACE = " \t\n\r"


def _json_loads(text: str) -> Any:
    try:
        obj, end = _scan_json(text, 0)
    except StopIteration:
        return json.loads(text)  # leading whitespace, or not a value: json's own answer
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return json.loads(text)  # extra data: json's own error
    return obj


def decode_payload(raw: bytes, encoding: Encoding) -> Any:
    """Decode one complete payload (already decompressed)."""
    if encoding is Encoding.ETF:
        return etf_decode(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"JSON: not valid UTF-8 at byte {exc.start}") from None
    try:
        return _json_loads(text)
    except json.JSONDecodeError as exc:
        raise CodecError(f"JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise CodecError("JSON: nested too deeply") from None
    except ValueError as exc:  # an integer over Python's int_max_str_digits (4300)
        raise CodecError(f"JSON: {_digits_message(exc)}") from None


def _digits_message(exc: ValueError) -> str:
    text = str(exc)
    if "integer string conversion" in text:
        limit = sys.get_int_max_str_digits()
        return f"an integer of more than {limit} digits (Python's int_max_str_digits)"
    return text


def encode_payload(obj: Any, encoding: Encoding) -> bytes:
    """Encode one payload; JSON is compact and keeps non-ASCII characters as UTF-8."""
    if encoding is Encoding.ETF:
        return etf_encode(obj)
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError, the 4300-digit int limit
        reason = _digits_message(exc) if isinstance(exc, ValueError) else str(exc)
        raise CodecError(f"JSON: cannot encode: {reason}") from None
    except RecursionError:
        raise CodecError("JSON: nested too deeply") from None
