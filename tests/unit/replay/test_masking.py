from __future__ import annotations

import itertools
import os

from hypothesis import given
from hypothesis import strategies as st

from replayer.replay.masking import MaskCheck


def frame(payload: bytes, masked: bool = True, opcode: int = 1) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    return head + (os.urandom(4) if masked else b"") + payload


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


sizes = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000])


@given(st.lists(sizes, min_size=1, max_size=5), st.lists(st.integers(0, 10**6), max_size=8))
def test_masked_frames_pass_however_they_are_cut(lengths: list[int], cuts: list[int]) -> None:
    stream = b"".join(frame(b"x" * n) for n in lengths)
    check = MaskCheck()
    assert all(check.feed(part) for part in chunks(stream, cuts))
    assert not check.unmasked


@given(st.lists(sizes, max_size=4), sizes, st.lists(st.integers(0, 10**6), max_size=8))
def test_the_first_unmasked_frame_is_caught_wherever_it_starts(
    before: list[int], bad: int, cuts: list[int]
) -> None:
    good = b"".join(frame(b"y" * n) for n in before)
    stream = good + frame(b"z" * bad, masked=False) + frame(b"w")
    check = MaskCheck()
    results = [check.feed(part) for part in chunks(stream, cuts)]
    assert check.unmasked
    assert results[-1] is False
    # Everything up to the good frames' end was accepted.
    fed = 0
    for part, ok in zip(chunks(stream, cuts), results, strict=True):
        if fed + len(part) <= len(good):
            assert ok
        fed += len(part)
