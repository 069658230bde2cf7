"""The recorder worker process: what the proxy hands it is what the archive gets, just as
if the proxy had recorded it in-process."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import struct
import zlib
from pathlib import Path

import pytest
from mitmproxy.http import HTTPFlow
from mitmproxy.test import tflow
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from replayer.archive.reader import read_records
from replayer.archive.records import FrameFlag, FrameRecord, Record
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction
from replayer.record.addon import GatewayRecorderAddon
from replayer.record.recorder import GatewayRecorder
from replayer.record.worker import WorkerRecorder, read_batches, serve, wait_until_written

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.worker-secret-token-value-123456"
URL = "wss://gateway.discord.gg/?v=10&encoding=json"


def j(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def drive(recorder: GatewayRecorder | WorkerRecorder) -> None:
    """One session through the recorder's interface, as the addon would drive it."""
    deflate = zlib.compressobj()

    def z(payload: bytes) -> bytes:
        return deflate.compress(payload) + deflate.flush(zlib.Z_SYNC_FLUSH)

    recorder.http(
        "GET", "discord.com", "/api/v10/gateway/bot", 200,
        (("Authorization", f"Bot {TOKEN}"),), (), b"", j({"url": "wss://gateway.discord.gg"}),
    )  # fmt: skip
    recorder.open("a", URL, (("User-Agent", "test"),))
    recorder.open("b", URL + "&compress=zlib-stream", ())
    recorder.server_message("a", j({"op": 10, "d": {"heartbeat_interval": 41250}}), True)
    recorder.client_message("a", j({"op": 2, "d": {"token": TOKEN, "shard": [0, 2]}}), True)
    ready = {"t": "READY", "s": 1, "op": 0, "d": {"session_id": "s1", "pad": "x" * 9000}}
    recorder.server_message("a", j(ready), True)
    big = {"t": "GUILD_CREATE", "s": 2, "op": 0, "d": {"members": ["m" * 50] * 3000}}
    recorder.server_message("a", j(big), True)  # over a pipe's atomic size
    recorder.server_message("b", z(j({"op": 10, "d": {"heartbeat_interval": 1}})), False)
    recorder.server_message("b", b"not zlib at all", False)
    recorder.client_message("a", b"\xff not json", True)
    recorder.store_raw("a", True, b"kept raw", True, "RuntimeError('bug')")
    recorder.close("a", 4000, "bye", True)
    recorder.close("b", None, "", None)


def without_times(records: list[Record]) -> list[Record]:
    return [dataclasses.replace(r, t_ns=0) for r in records]


def test_worker_records_what_in_process_recording_does(tmp_path: Path) -> None:
    inline = GatewayRecorder(ArchiveWriter(tmp_path / "inline.rpl", metadata={"m": 1}))
    drive(inline)
    inline.close_archive()
    worker = WorkerRecorder(tmp_path / "worker.rpl", redact=True, metadata={"m": 1})
    drive(worker)
    assert worker.close_archive() == 0
    header_inline, expected = read_records(tmp_path / "inline.rpl")
    header_worker, got = read_records(tmp_path / "worker.rpl")
    assert header_worker.metadata == header_inline.metadata
    assert without_times(got) == without_times(expected)
    assert len([r for r in got if isinstance(r, FrameRecord)]) == 8
    assert TOKEN.encode() not in (tmp_path / "worker.rpl").read_bytes()
    times = [r.t_ns for r in got]
    assert times == sorted(times)


def test_the_worker_writes_everything_after_the_proxy_vanishes(tmp_path: Path) -> None:
    """No close_archive(): the pipe just closes, as when the proxy is killed; a half
    written item at the end is dropped, everything before it is recorded."""
    path = tmp_path / "w.rpl"
    worker = WorkerRecorder(path, redact=True, metadata={})
    worker.open("a", URL, ())
    for seq in range(1, 201):
        worker.server_message("a", j({"t": "X", "s": seq, "op": 0, "d": {"n": seq}}), True)
    os.write(worker._fd, b"\x01\x01\x00\x00")  # the start of an item, cut short
    os.close(worker._fd)  # the proxy is gone
    wait_until_written(path)
    assert worker.process.wait() == 0
    frames = [r for r in read_records(path)[1] if isinstance(r, FrameRecord)]
    assert [f.s for f in frames] == list(range(1, 201))


def test_a_bad_item_is_reported_and_recording_goes_on(tmp_path: Path, capfd: object) -> None:
    path = tmp_path / "w.rpl"
    worker = WorkerRecorder(path, redact=True, metadata={})
    worker.open("a", URL, ())
    worker._call("no_such_method", ())  # a bug in the proxy's side
    worker.server_message("a", j({"op": 11, "d": None}), True)
    assert worker.close_archive() == 0
    frames = [r for r in read_records(path)[1] if isinstance(r, FrameRecord)]
    assert [f.op for f in frames] == [11]
    err = capfd.readouterr().err  # type: ignore[attr-defined]
    assert "gateway recorder worker: item 2 (kind 3) failed" in err


def test_items_split_anywhere_across_reads_come_out_whole() -> None:
    items = [(1, True, 3, 10 + n, bytes([n]) * n * 7) for n in range(50)]
    wire = b"".join(
        struct.pack("<BBHIQI", kind, text, 0, key, t_ns, len(data)) + data
        for kind, text, key, t_ns, data in items
    )
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb", buffering=0) as pipe:
        for start in range(0, len(wire), 37):  # pieces that cut headers and contents
            pipe.write(wire[start : start + 37])
        # An item cut short by the end of the stream: dropped.
        pipe.write(struct.pack("<BBHIQI", 2, 0, 0, 3, 99, 100) + b"x" * 5)
    try:
        assert [item for batch in read_batches(read_fd, idle_s=0) for item in batch] == items
    finally:
        os.close(read_fd)


def test_a_failing_archive_write_is_reported_and_the_worker_reads_on(tmp_path: Path) -> None:
    """The disk refuses the batch (here: a descriptor open for reading only): the
    worker says so and keeps draining the pipe, so that the proxy never blocks on it."""
    path = tmp_path / "ro.rpl"
    path.write_bytes(b"")
    opening = pickle.dumps(("open", (1, URL, ())))
    items = [struct.pack("<BBHIQI", 3, 0, 0, 0, 5, len(opening)) + opening]
    items += [struct.pack("<BBHIQI", 2, 1, 0, 1, 6, 2) + b"{}" for _ in range(3)]
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"".join(items))
    os.close(write_fd)
    errors: list[str] = []
    ro_fd = os.open(path, os.O_RDONLY)
    try:
        writer = ArchiveWriter(path, redact=False, continue_fd=ro_fd)
        assert serve(read_fd, writer, 0, on_error=errors.append) == 4
    finally:
        os.close(read_fd)
    assert writer.closed
    assert len(errors) == 1, errors  # said once, not once per batch
    assert f"{os.strerror(errno.EBADF)}: recording stopped" in errors[0]


@pytest.mark.parametrize(
    ("size", "cut"),
    [(10, 5), (4075, 20), (4076, 21), (10_000, 19), (10_000, 20), (10_000, 5_000), (200_000, 1)],
)
def test_an_interrupted_hand_over_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, cut: int
) -> None:
    """The pipe takes only ``cut`` bytes of an item (a signal arrived): the rest follows,
    and the item after it is whole too. Sizes around the one-write limit (PIPE_BUF)."""
    path = tmp_path / "w.rpl"
    worker = WorkerRecorder(path, redact=True, metadata={})
    worker.open("a", URL, ())
    real_write, real_writev = os.write, os.writev
    interrupted: list[str] = []  # the call the pipe cut short

    def cut_short(fd: int, data: bytes, call: str = "write") -> int:
        if fd != worker._fd or interrupted:
            return real_write(fd, data)
        interrupted.append(call)
        return real_write(fd, bytes(data[:cut]))

    def cut_short_v(fd: int, pieces: list[bytes]) -> int:
        if fd != worker._fd:
            return real_writev(fd, pieces)
        return cut_short(fd, b"".join(pieces), "writev")

    payload = j({"t": "X", "s": 1, "op": 0, "d": "p" * size})[:size]
    monkeypatch.setattr(os, "write", cut_short)
    monkeypatch.setattr(os, "writev", cut_short_v)
    worker.relay("a", False, payload, False)
    monkeypatch.undo()
    worker.relay("a", True, b"after", False)
    # Up to PIPE_BUF (4096 bytes with the 20-byte header) one write, atomic; above, writev.
    assert interrupted == ["write" if size + 20 < 4096 else "writev"]
    assert worker.close_archive() == 0
    frames = [r for r in read_records(path)[1] if isinstance(r, FrameRecord)]
    assert [(f.direction, f.payload) for f in frames] == [
        (Direction.SERVER, payload),
        (Direction.CLIENT, b"after"),
    ]


def gateway_flow(*contents: bytes) -> HTTPFlow:
    """mitmproxy's own test flow, on a gateway path, with these server messages."""
    flow = tflow.twebsocketflow(messages=False)
    flow.request.path = "/?v=10&encoding=json"
    assert flow.websocket is not None
    flow.websocket.messages = [WebSocketMessage(Opcode.TEXT, False, c) for c in contents]
    return flow


def test_the_addon_hands_messages_to_its_worker_and_keeps_only_the_last(tmp_path: Path) -> None:
    addon = GatewayRecorderAddon()
    addon._use(WorkerRecorder(tmp_path / "w.rpl", redact=True, metadata={}))
    flow = gateway_flow()
    addon.websocket_start(flow)
    assert flow.websocket is not None
    for seq in range(1, 4):
        flow.websocket.messages.append(
            WebSocketMessage(Opcode.TEXT, False, j({"op": 0, "s": seq, "t": "X", "d": None}))
        )
        addon.websocket_message(flow)
        assert len(flow.websocket.messages) == 1  # mitmproxy#6620: the rest dropped
    addon.close_archive()
    frames = [r for r in read_records(tmp_path / "w.rpl")[1] if isinstance(r, FrameRecord)]
    assert [f.s for f in frames] == [1, 2, 3]
    assert addon.errors == 0


def test_the_addon_keeps_a_message_raw_when_handing_it_over_fails(tmp_path: Path) -> None:
    """A bug in the hand-over: the message is logged and kept raw, the client still gets
    it unchanged, and the next message is recorded as usual."""
    worker = WorkerRecorder(tmp_path / "w.rpl", redact=True, metadata={})
    real_relay = worker.relay
    calls = 0

    def fail_once(key: object, from_client: bool, content: bytes, is_text: bool) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("hand-over bug")
        real_relay(key, from_client, content, is_text)

    worker.relay = fail_once  # type: ignore[method-assign]
    addon = GatewayRecorderAddon()
    addon._use(worker)
    flow = gateway_flow()
    addon.websocket_start(flow)
    assert flow.websocket is not None
    contents = [j({"op": 0, "s": seq, "t": "X", "d": None}) for seq in (1, 2)]
    for content in contents:
        flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, False, content))
        addon.websocket_message(flow)
        [message] = flow.websocket.messages
        assert message.content == content  # forwarded unchanged
        assert not message.dropped
    addon.close_archive()
    assert addon.errors == 1
    frames = [r for r in read_records(tmp_path / "w.rpl")[1] if isinstance(r, FrameRecord)]
    assert [bool(f.flags & FrameFlag.UNDECODED) for f in frames] == [True, False]
    assert "hand-over bug" in (frames[0].error or "")
    assert [f.payload for f in frames] == contents


def test_the_addon_leaves_messages_alone_when_not_recording() -> None:
    """Loaded without gateway_record (e.g. in mitmweb): mitmproxy keeps its messages."""
    addon = GatewayRecorderAddon()
    flow = gateway_flow(b"1", b"2", b"3")
    addon.websocket_message(flow)
    assert flow.websocket is not None
    assert [m.content for m in flow.websocket.messages] == [b"1", b"2", b"3"]


def test_a_failed_pipe_write_stops_recording_and_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write to the pipe fails with something else than EPIPE (here EIO): an item may be
    cut short, so the addon stops recording (as if the worker had died), the client's
    message still goes on, and the archive holds everything handed over before."""
    path = tmp_path / "w.rpl"
    worker = WorkerRecorder(path, redact=True, metadata={})
    addon = GatewayRecorderAddon()
    addon._use(worker)
    flow = gateway_flow()
    addon.websocket_start(flow)
    assert flow.websocket is not None
    first = j({"op": 0, "s": 1, "t": "X", "d": None})
    flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, False, first))
    addon.websocket_message(flow)
    real_write = os.write

    def failing(fd: int, data: bytes) -> int:
        if fd == worker._fd:
            raise OSError(errno.EIO, "I/O error")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing)
    flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, False, b'{"op":11}'))
    addon.websocket_message(flow)
    monkeypatch.undo()
    assert addon.recorder is None
    assert addon.errors == 1
    [message] = flow.websocket.messages
    assert message.content == b'{"op":11}'  # forwarded unchanged
    assert not message.dropped
    wait_until_written(path)
    assert worker.process.wait() == 0
    frames = [r for r in read_records(path)[1] if isinstance(r, FrameRecord)]
    assert [f.payload for f in frames] == [first]
