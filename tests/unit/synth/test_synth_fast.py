"""synth's fast paths make what the plain ones make: the JSON text built from cached
fragments is the dict's encoding from the same draws, and the events that skip the
archive writer's redaction come out as redaction would leave them."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.archive.writer import ArchiveWriter
from replayer.synth import SynthOptions, synth_records, write_synth
from replayer.synth.activity import Activity
from replayer.synth.guilds import World
from replayer.synth.ids import MS_NS, Mint, below, encode_json, iso_time


def _activity(options: SynthOptions) -> Activity:
    rng = random.Random(options.seed)
    mint = Mint(rng)
    return Activity(options, rng, mint, World(options, rng, mint))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    members=st.sampled_from([0, 1, 3, 40, 300]),
    channels=st.integers(1, 6),
    roles=st.integers(1, 5),
)
def test_json_text_is_the_dicts_encoding_from_the_same_draws(
    seed: int, members: int, channels: int, roles: int
) -> None:
    options = SynthOptions(
        guilds=2,
        members_per_guild=members,
        channels_per_guild=channels,
        roles_per_guild=roles,
        seed=seed,
    )
    plain, fast = _activity(options), _activity(options)
    for i in range(300):
        guild = plain.world.guilds[i % 2]
        t_ns = (60_000 + i * 997) * MS_NS
        twin = fast.world.guilds[i % 2]
        if i % 3 == 0:
            made = encode_json(plain.message(guild, t_ns))
            assert fast.message_json(twin, t_ns) == made
        elif i % 3 == 1:
            made = encode_json(plain.presence_update(guild, t_ns))
            assert fast.presence_update_json(twin, t_ns) == made
        else:
            made = encode_json(plain.typing(guild, t_ns))
            assert fast.typing_json(twin, t_ns) == made
        assert plain.rng.getstate() == fast.rng.getstate()
        assert plain.flake(0) == fast.flake(0)  # the snowflake increments kept pace


@given(seed=st.integers(0, 2**64), n=st.integers(1, 2**70) | st.integers(1, 5000))
def test_below_draws_what_randrange_and_choice_draw(seed: int, n: int) -> None:
    ours, stdlib = random.Random(seed), random.Random(seed)
    for _ in range(5):
        assert below(ours.getrandbits, n) == stdlib.randrange(n)
    assert below(ours.getrandbits, 3) == stdlib.choice(range(3))
    assert below(ours.getrandbits, 40) + 10 == stdlib.randrange(10, 50)
    assert ours.getstate() == stdlib.getstate()


@given(ms=st.integers(0, 2**42))
def test_iso_time_is_strftimes(ms: int) -> None:
    second = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert iso_time(ms) == f"{second}.{ms % 1000:03d}000+00:00"


def _after_header(path: Path) -> bytes:
    data = path.read_bytes()
    unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False)
    unpacker.unpack()
    return data[unpacker.tell() :]


@pytest.mark.parametrize(
    "options",
    [
        SynthOptions(shards=2, member_chunk_requests=2, messages=200),
        SynthOptions(voice=True, encoding="etf", compress="zlib-stream", shards=2, guilds=4),
        SynthOptions(voice=True, target_bytes=200_000, members_per_guild=300),
    ],
)
def test_skipping_redaction_for_synths_own_events_changes_no_byte(
    options: SynthOptions, tmp_path: Path
) -> None:
    path = tmp_path / "fast.rpl"
    write_synth(path, options)
    with ArchiveWriter(tmp_path / "plain.rpl") as writer:  # every record redacted
        for record in synth_records(options):
            writer.write(record)
    assert _after_header(path) == _after_header(tmp_path / "plain.rpl")
