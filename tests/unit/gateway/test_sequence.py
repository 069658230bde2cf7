"""The byte-level rewrite of a JSON payload's ``s`` against decode / re-encode."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.gateway.sequence import rewrite_json_seq

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.text(max_size=8).filter(lambda k: k != "s")
seqs = st.one_of(st.none(), st.integers(min_value=0, max_value=2**53))
separators = st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", " :\n"), (",\t", ":\r\n")])


def dumps(obj: dict[str, Any], seps: tuple[str, str], ascii_only: bool, pad: str) -> bytes:
    text = json.dumps(obj, separators=seps, ensure_ascii=ascii_only)
    return (pad + text + pad).encode()


@settings(max_examples=200, deadline=None)
@given(
    before=st.dictionaries(keys, scalars, max_size=4),
    after=st.dictionaries(keys, values, max_size=4),
    old=seqs,
    new=st.integers(min_value=0, max_value=2**53),
    seps=separators,
    ascii_only=st.booleans(),
    pad=st.sampled_from(["", " ", "\n "]),
)
def test_rewrite_matches_decode_and_reencode(
    before: dict[str, Any],
    after: dict[str, Any],
    old: int | None,
    new: int,
    seps: tuple[str, str],
    ascii_only: bool,
    pad: str,
) -> None:
    """``s`` after keys with scalar values only: always rewritten, and the result decodes
    to the payload with ``s`` replaced; nothing else in the bytes changes."""
    after = {k: v for k, v in after.items() if k not in before}
    obj = {**before, "s": old, **after}
    payload = dumps(obj, seps, ascii_only, pad)
    out = rewrite_json_seq(payload, new)
    assert out is not None
    assert json.loads(out) == json.loads(payload) | {"s": new}
    # Only the number changed: same bytes around it.
    old_text = b"null" if old is None else str(old).encode()
    assert len(out) - len(payload) == len(str(new)) - len(old_text)


@settings(max_examples=200, deadline=None)
@given(
    obj=st.dictionaries(st.text(max_size=4), values, max_size=6),
    old=seqs,
    where=st.integers(min_value=0, max_value=6),
    new=st.integers(min_value=0, max_value=2**53),
    seps=separators,
)
def test_rewrite_is_exact_or_declines(
    obj: dict[str, Any], old: int | None, where: int, new: int, seps: tuple[str, str]
) -> None:
    """Anywhere ``s`` is (after a nested value, inside ``d`` too): either the exact
    rewrite or None; never a payload that decodes otherwise."""
    obj.pop("s", None)
    items = list(obj.items())
    items.insert(min(where, len(items)), ("s", old))
    nested = {"d": {"s": 7, "x": [{"s": 8}]}, **dict(items)}
    for candidate in (dict(items), nested):
        payload = json.dumps(candidate, separators=seps).encode()
        out = rewrite_json_seq(payload, new)
        if out is not None:
            assert json.loads(out) == candidate | {"s": new}


def test_s_behind_a_nested_value_is_declined() -> None:
    assert rewrite_json_seq(b'{"d":{"s":1},"s":2}', 5) is None
    assert rewrite_json_seq(b'{"op":0,"d":[1],"s":2}', 5) is None


def test_discord_order_is_rewritten() -> None:
    payload = b'{"t":"MESSAGE_CREATE","s":41,"op":0,"d":{"s":41,"content":"\\"s\\":41"}}'
    assert rewrite_json_seq(payload, 7) == (
        b'{"t":"MESSAGE_CREATE","s":7,"op":0,"d":{"s":41,"content":"\\"s\\":41"}}'
    )


def test_not_a_number_or_not_json_is_declined() -> None:
    for payload in (b'{"s":"1","op":0}', b'{"s":1.5}', b'{"s":01}', b"[1]", b"", b'{"s":1'):
        assert rewrite_json_seq(payload, 2) is None
