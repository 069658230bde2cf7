"""load_script indexes runs of frames (ArchiveReader.runs) by column: the same script as
reading record by record, whatever the chunks the runs come in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from replayer.archive import reader as reader_module
from replayer.replay.script import ReplayScript, load_script
from replayer.resources import recordings_dir
from replayer.synth import SynthOptions, write_synth

ROOT = Path(__file__).parents[3]
RECORDINGS = sorted(recordings_dir().glob("*.rpl"))


def essence(script: ReplayScript) -> Any:
    shards = {
        k: (
            v.shard_id, v.num_shards, v.encoding, v.heartbeat_interval_ms, list(v.offsets),
            list(v.sizes), list(v.t_ns), v.events, v.answers,
            {p: (t, repr(f)) for p, (t, f) in v.incidents.items()}, v.intents, v.ready_guilds,
        )
        for k, v in script.shards.items()
    }  # fmt: skip
    return (
        shards, script.num_shards, script.http, script.ready_user, script.application,
        script.identify_intents, list(script.state_offsets), bytes(script.state_etf),
    )  # fmt: skip


def by_record(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setattr(reader_module, "scan", None)
        return essence(load_script(path))


@pytest.fixture(scope="module")
def synth_archives(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = []
    for shards, encoding in ((1, "json"), (3, "json"), (2, "etf")):
        path = tmp_path_factory.mktemp("synth") / f"{shards}-{encoding}.rpl"
        write_synth(path, SynthOptions(shards=shards, encoding=encoding, messages=300, seed=shards))
        out.append(path)
    return out


@pytest.mark.parametrize("chunk", [1 << 20, 4096, 61])
def test_the_script_is_the_same_by_run_and_by_record(
    chunk: int, synth_archives: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in [*RECORDINGS, *synth_archives]:
        expected = by_record(path, monkeypatch)
        monkeypatch.setattr(reader_module, "RUN_CHUNK_BYTES", chunk)
        assert essence(load_script(path)) == expected, path.name
        monkeypatch.undo()


def test_every_item_has_its_records_exact_size(synth_archives: list[Path]) -> None:
    # The replay reads each frame with one pread of exactly its size (ArchivePayloads).
    from replayer.replay.script import ArchivePayloads

    for path in [*RECORDINGS, *synth_archives]:
        script = load_script(path)
        payloads = ArchivePayloads(path)
        try:
            for shard in script.shards.values():
                assert len(shard.sizes) == len(shard.offsets), path.name
                for i in range(0, len(shard.offsets), 7):
                    exact = payloads.frame(shard.offsets[i], shard.sizes[i])
                    assert exact == payloads.frame(shard.offsets[i]), (path.name, i)
        finally:
            payloads.close()
