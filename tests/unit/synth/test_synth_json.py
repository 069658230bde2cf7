"""synth encodes JSON with an encoder made once: the bytes encode_payload makes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from replayer.gateway.encoding import Encoding, encode_payload
from replayer.synth.session import _encode_json

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(obj=json_values)
def test_synth_json_is_encode_payload_json(obj: Any) -> None:
    assert _encode_json(obj) == encode_payload(obj, Encoding.JSON)
