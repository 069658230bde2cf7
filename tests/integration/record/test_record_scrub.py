"""Recording through the scrubber: ``replayer record --scrub`` and the mitmdump addon's
worker write pseudonymised archives, the same for the same key, while the client gets
the real traffic."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import websockets

from replayer.archive.reader import read_records
from replayer.archive.records import FrameRecord, Record
from replayer.archive.scrub import Scrubber
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction
from replayer.record.recorder import GatewayRecorder
from replayer.record.worker import WorkerRecorder
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import sample_archive
from tests.integration.record.test_record_cli import TIMEOUT, TOKEN, start_record, stop

SMALL_BOT = sample_archive("small-bot.rpl")
KEY = "the-scrub-key"
URL = "wss://gateway.discord.gg/?v=10&encoding=json"
USER, GUILD = "803207031094771712", "407082463766003713"


def j(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def drive(recorder: GatewayRecorder | WorkerRecorder) -> None:
    recorder.http(
        "GET", "discord.com", f"/api/v10/guilds/{GUILD}", 200, (), (), b"",
        j({"id": GUILD, "name": "Gaming Lounge", "owner_id": USER}),
    )  # fmt: skip
    recorder.open("a", URL, ())
    recorder.server_message("a", j({"op": 10, "d": {"heartbeat_interval": 41250}}), True)
    recorder.client_message("a", j({"op": 2, "d": {"token": TOKEN, "intents": 513}}), True)
    author = {"id": USER, "username": "cleverpuffin28", "global_name": "Clever Puffin"}
    message = {"id": "1378704642087600139", "guild_id": GUILD, "content": "a secret plan"}
    create = {"t": "MESSAGE_CREATE", "s": 1, "op": 0, "d": {**message, "author": author}}
    recorder.server_message("a", j(create), True)
    recorder.close("a", 4000, "bye", True)


def without_times(records: list[Record]) -> list[Record]:
    return [dataclasses.replace(r, t_ns=0) for r in records]


def assert_scrubbed(path: Path) -> None:
    raw = path.read_bytes()
    for original in (USER, GUILD, "cleverpuffin28", "Clever Puffin", "secret plan", "Gaming"):
        assert original.encode() not in raw, original
    assert TOKEN.encode() not in raw


def test_the_worker_scrubs_as_in_process_recording_does(tmp_path: Path) -> None:
    inline = GatewayRecorder(
        ArchiveWriter(tmp_path / "inline.rpl", transform=Scrubber(KEY.encode()).scrub)
    )
    drive(inline)
    inline.close_archive()
    worker = WorkerRecorder(tmp_path / "worker.rpl", redact=True, metadata={}, scrub_key=KEY)
    assert KEY not in " ".join(map(str, worker.process.args))  # not in `ps` output
    drive(worker)
    assert worker.close_archive() == 0
    _, expected = read_records(tmp_path / "inline.rpl")
    _, got = read_records(tmp_path / "worker.rpl")
    assert without_times(got) == without_times(expected)
    assert_scrubbed(tmp_path / "worker.rpl")
    frame = next(r for r in got if isinstance(r, FrameRecord) and r.t == "MESSAGE_CREATE")
    d = json.loads(frame.payload)["d"]
    assert d["guild_id"] == str(Scrubber(KEY.encode()).snowflake(int(GUILD)))


async def test_record_scrub_in_reverse_mode(tmp_path: Path) -> None:
    """The client reads the real session through `replayer record --scrub`; the archive
    holds it pseudonymised with the given key."""
    out = tmp_path / "scrubbed.rpl"
    async with ReplayServer(load_script(SMALL_BOT), ReplayOptions(speed=0)) as upstream:
        proc, gateway_url = await start_record(
            tmp_path, "-o", str(out), "--upstream", f"http://127.0.0.1:{upstream.port}",
            "--gateway-upstream", upstream.gateway_url, "--scrub", "--scrub-key", KEY,
        )  # fmt: skip
        try:
            async with websockets.connect(gateway_url + "?v=10&encoding=json") as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
                await ws.send(
                    json.dumps({"op": 2, "d": {"token": TOKEN, "properties": {}, "intents": 4097}})
                )
                seen = [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(2)]
        finally:
            stop(proc)
    assert [p["t"] for p in seen] == ["READY", "GUILD_CREATE"]
    assert seen[1]["d"]["id"] == GUILD  # the client got the real thing
    header, records = read_records(out)
    assert header.metadata["scrubbed"] is True
    assert_scrubbed(out)
    server = [r for r in records if isinstance(r, FrameRecord) and r.direction == Direction.SERVER]
    guild = json.loads(next(f for f in server if f.t == "GUILD_CREATE").payload)["d"]
    assert guild["id"] == str(Scrubber(KEY.encode()).snowflake(int(GUILD)))
    assert len(guild["members"]) == len(seen[1]["d"]["members"])
