"""Many shards on one replay: N clients, one per shard, against ``replayer replay`` and a
bare ``websockets`` server sending the same frames.

For each N (``--shards``, default 16, 128 and 1000) a ``replayer synth`` archive of N
shards (N guilds, one per shard; ``--size-mb`` of payload in all) is replayed by
``replayer replay --speed 0`` (a subprocess) to N raw clients in this process, each
connecting with ``?v=10&encoding=json``, sending IDENTIFY with ``shard: [i, N]`` on HELLO
and reading until it has every dispatch of its shard (the last one's ``s`` checked). The
clients are bare asyncio protocols (an HTTP upgrade, a frame parser that counts frames):
as light as a client can be, so that the servers are what is measured. Next to it, in the
same run, a bare ``websockets`` server (this script with ``--serve-bare``) preloads every
shard's payloads and sends them on IDENTIFY, one ``await ws.send`` per frame.

Identify concurrency, the session start limit and the heartbeat timeout are Discord's
rules for pacing and liveness; they are not what this measures, so our server runs with
``--no-identify-concurrency --no-enforce-session-start-limit --no-heartbeat-timeout``
(the archive's max_concurrency is 1: 1000 IDENTIFYs at once would mostly get op 9).
Both servers see at most ``--connect-concurrency`` handshakes at a time (their listen
backlog is asyncio's default 100; a SYN dropped past it costs a 1 s retransmit).

Measured per server and N: all READY (from the first connect to the last client's
READY), aggregate frames/s (every dispatch of every shard over the time until the last
client has all of its own), server CPU per frame, server RSS and descriptors per
connection (with every client connected and every frame received: nothing in flight),
the peak RSS per connection (frames in flight included), and the RSS once every client
has gone (against the RSS before they came), then the RSS growth of a second wave of N
clients (memory the first wave left, reused or not).

Targets (issue #19, at N = 1000): all READY within 2x bare; frames/s >= 0.8x bare;
<= 64 KiB of server RSS per connection; one descriptor per connection; memory returned
(RSS after the clients go within 16 KiB per connection served of the RSS before; and a
second wave grows it by no more than that).

Usage::

    .venv/bin/python bench/shards_bench.py                    # 16, 128, 1000 shards
    .venv/bin/python bench/shards_bench.py --shards 1000 --json /tmp/shards.json --check
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import platform
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _proc import (  # bench/_proc.py
    cpu_times,
    memory,
    serve_bare_until_signalled,
    stop,
    tail,
    venv_tool,
)
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.version import version as websockets_version

from replayer.archive.reader import ArchiveReader
from replayer.replay.script import ArchivePayloads, load_script
from replayer.synth import SynthOptions, write_synth

MiB, KiB = 1 << 20, 1 << 10
DEFAULT_SHARDS = (16, 128, 1000)
DEFAULT_SIZE_MB = 40
OURS, BARE = "replayer", "bare"
ALL_INTENTS = 53608447  # every documented intent: nothing filtered
HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'
URL_RE = re.compile(r"gateway URL: (ws://\S+)")
START_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 900.0
GONE_TIMEOUT_S = 60.0  # for the server to close every connection after the clients go
SETTLE_S = 1.0  # after the connections are gone, before the RSS is read
CONNECT_CONCURRENCY = 64

# Targets, issue #19 item 1.
READY_RATIO_MAX = 2.0
FPS_RATIO_MIN = 0.8
RSS_PER_CONN_MAX = 64 * KiB
FDS_PER_CONN_MAX = 1.0
RETURNED_PER_CONN_MAX = 16 * KiB


# --- archives ----------------------------------------------------------------------------


def _options(shards: int, size_mb: float, seed: int) -> SynthOptions:
    return SynthOptions(
        shards=shards, guilds=shards, target_bytes=int(size_mb * MiB),
        member_chunk_requests=0, seed=seed,
    )  # fmt: skip


def ensure_archive(directory: Path, shards: int, size_mb: float, seed: int) -> Path:
    """The ``shards``-shard synthetic archive, generated unless already there."""
    path = directory / f"synth-{shards}shards-{size_mb:g}MiB-seed{seed}.rpl"
    options = _options(shards, size_mb, seed)
    if path.exists():
        with contextlib.suppress(Exception), ArchiveReader(path) as reader:
            if reader.header.metadata.get("options") == asdict(options):
                print(f"reusing {path}", flush=True)
                return path
    print(f"generating {path} ({shards} shards, {size_mb:g} MiB of payload) ...", flush=True)
    t0 = time.perf_counter()
    write_synth(path, options, overwrite=True)
    print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def shard_payloads(path: Path) -> dict[int, list[bytes]]:
    """Every shard's dispatches (READY first), as our server sends them."""
    script = load_script(path)
    source = ArchivePayloads(script.path)
    try:
        return {
            shard_id: [
                source.frame(offset, shard.size(i)).payload
                for i, offset in enumerate(shard.offsets)
            ]
            for shard_id, shard in script.shards.items()
        }
    finally:
        source.close()


# --- the bare server (a child process: `shards_bench.py --serve-bare ARCHIVE`) -----------


def serve_bare(path: Path) -> None:
    """Preload every shard's dispatches; on IDENTIFY send its shard's, one send each."""
    payloads = shard_payloads(path)
    gc.collect()
    gc.freeze()

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(HELLO, text=True)
            identify = json.loads(await ws.recv())
            shard = identify.get("d", {}).get("shard") or [0, 1]
            for payload in payloads.get(shard[0], []):
                await ws.send(payload, text=True)
            await ws.wait_closed()

    serve_bare_until_signalled(handler)


# --- servers -----------------------------------------------------------------------------


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, kind: str, archive: Path, logdir: Path) -> Server:
        log = logdir / f"{kind}-{archive.stem}.log"
        if kind == OURS:
            cmd = [
                venv_tool("replayer"), "replay", str(archive), "--speed", "0",
                "--host", "127.0.0.1", "--port", "0", "--no-identify-concurrency",
                "--no-enforce-session-start-limit", "--no-heartbeat-timeout",
            ]  # fmt: skip
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(archive)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            match = URL_RE.search(log.read_text(errors="replace"))
            if match:
                return cls(kind, proc, match.group(1), log)
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"{kind} did not start: {' '.join(cmd)}\n" + tail(log))
            time.sleep(0.05)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss(self) -> int:
        return memory(self.proc.pid)["VmRSS"]

    def cpu_s(self) -> float:
        return sum(cpu_times(self.proc.pid))


# --- the raw client ----------------------------------------------------------------------


def _masked_text(payload: bytes) -> bytes:
    """One masked text frame (RFC 6455 section 5.2: a client masks every frame)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    mask = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + body


class RawClient(asyncio.Protocol):
    """One shard's client: upgrade, HELLO, IDENTIFY, then count frames until all came."""

    def __init__(self, shard: int, num_shards: int, expected: int, host: str) -> None:
        self.shard, self.expected = shard, expected
        self.identify = json.dumps({
            "op": 2,
            "d": {
                "token": "t", "properties": {}, "intents": ALL_INTENTS,
                "shard": [shard, num_shards],
            },
        }).encode()  # fmt: skip
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.hello = False
        self.frames = 0  # dispatches (READY included)
        self.last = b""
        self.t_ready = 0.0
        self.t_done = 0.0
        loop = asyncio.get_running_loop()
        self.greeted: asyncio.Future[None] = loop.create_future()  # HELLO came
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /?v=10&encoding=json HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._fail(f"no upgrade: {bytes(buf[:80])!r}")
                return
            del buf[: end + 4]
            self.upgraded = True
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + n:
                break
            opcode = b0 & 0x0F
            start = pos + head
            pos = start + n
            if opcode == 0x8:
                self._fail(f"closed by the server: {bytes(buf[start:pos])!r}")
                return
            if opcode not in (0x1, 0x2):
                continue  # ping, pong (no continuation frames: servers send whole ones)
            if not self.hello:
                self.hello = True
                self.greeted.set_result(None)
                assert self.transport is not None
                self.transport.write(_masked_text(self.identify))
                continue
            self.frames += 1
            if self.frames == 1:
                self.t_ready = time.perf_counter()
                if b'"READY"' not in buf[start : min(pos, start + 64)]:
                    self._fail(f"expected READY, got {bytes(buf[start : start + 80])!r}")
                    return
            if self.frames == self.expected:
                self.last = bytes(buf[start:pos])
                self.t_done = time.perf_counter()
                if not self.done.done():
                    self.done.set_result(None)
        del buf[:pos]

    def _fail(self, why: str) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"shard {self.shard}: {why}"))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(f"connection lost after {self.frames}/{self.expected} dispatches")

    def close(self) -> None:
        """A close frame (1000), then the TCP connection goes."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"\x88\x82" + b"\x00" * 4 + (1000).to_bytes(2, "big"))
            self.transport.close()


# --- one run -----------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    shards: int
    frames: int
    all_ready_s: float
    all_done_s: float
    cpu_s: float  # server, from before the first connect to the last dispatch
    rss_before: int
    rss_open: int  # every client connected, every frame received
    hwm_growth: int  # VmHWM during the run minus the RSS before
    rss_after: int  # the clients gone
    fds_before: int
    fds_open: int
    fds_after: int
    rss_after2: int  # after a second wave of N clients has come and gone

    @property
    def fps(self) -> float:
        return self.frames / self.all_done_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.frames * 1e6

    @property
    def rss_per_conn(self) -> float:
        return (self.rss_open - self.rss_before) / self.shards

    @property
    def peak_per_conn(self) -> float:
        return self.hwm_growth / self.shards

    @property
    def fds_per_conn(self) -> float:
        return (self.fds_open - self.fds_before) / self.shards

    @property
    def kept_per_conn(self) -> float:
        return (self.rss_after - self.rss_before) / self.shards

    @property
    def wave2_per_conn(self) -> float:
        """RSS growth per connection of the second wave: memory the first left, reused?"""
        return (self.rss_after2 - self.rss_after) / self.shards

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "fps": self.fps, "server_cpu_us_per_frame": self.cpu_us,
            "rss_per_conn": self.rss_per_conn, "peak_per_conn": self.peak_per_conn,
            "fds_per_conn": self.fds_per_conn, "kept_per_conn": self.kept_per_conn,
            "wave2_per_conn": self.wave2_per_conn,
        }  # fmt: skip


async def _clients(
    server: Server, expected: dict[int, int], concurrency: int
) -> tuple[list[RawClient], float, dict[str, int]]:
    """Connect one client per shard, wait for all of their dispatches; returns the
    clients, t0 and the server's RSS/fds measured with every client still connected."""
    loop = asyncio.get_running_loop()
    host, port = server.url.removeprefix("ws://").rstrip("/").rsplit(":", 1)
    num_shards = len(expected)
    gate = asyncio.Semaphore(concurrency)
    clients: list[RawClient] = []

    async def one(shard: int) -> None:
        async with gate:
            _, client = await loop.create_connection(
                lambda: RawClient(shard, num_shards, expected[shard], f"{host}:{port}"),
                host,
                int(port),
            )
            clients.append(client)
            # The gate holds until the handshake is answered (HELLO came).
            await asyncio.wait({client.greeted, client.done}, return_when=asyncio.FIRST_COMPLETED)
        await client.done

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in sorted(expected))), RUN_TIMEOUT_S)
    measured = {"rss": server.rss(), "fds": server.fds(), "hwm": memory(server.proc.pid)["VmHWM"]}
    return clients, t0, measured


def run_one(kind: str, archive: Path, expected: dict[int, int], logdir: Path, conc: int) -> Run:
    server = Server.start(kind, archive, logdir)
    try:
        time.sleep(0.5)
        gc.collect()
        rss0, fds0 = server.rss(), server.fds()
        cpu0 = server.cpu_s()

        async def main() -> tuple[list[RawClient], float, dict[str, int], float]:
            clients, t0, measured = await _clients(server, expected, conc)
            cpu = server.cpu_s() - cpu0
            for client in clients:
                client.close()
            return clients, t0, measured, cpu

        def gone() -> tuple[int, int]:
            deadline = time.monotonic() + GONE_TIMEOUT_S
            while server.fds() > fds0 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(SETTLE_S)
            return server.rss(), server.fds()

        clients, t0, measured, cpu = asyncio.run(main())
        rss_after, fds_after = gone()
        # A second wave of the same N clients: what the first left is reused, or not.
        second = asyncio.run(main())
        rss_after2, _ = gone()
        clients += second[0]
    except BaseException:
        print(f"--- {kind} log:\n{tail(server.log)}", file=sys.stderr)
        raise
    finally:
        stop(server.proc)
    for client in clients:
        s = json.loads(client.last).get("s")
        if s != client.expected:
            raise RuntimeError(f"{kind} shard {client.shard}: last s={s}, not {client.expected}")
    clients = clients[: len(expected)]  # the first wave's
    run = Run(
        kind, len(expected), sum(c.frames for c in clients),
        max(c.t_ready for c in clients) - t0, max(c.t_done for c in clients) - t0, cpu,
        rss0, measured["rss"], measured["hwm"] - rss0, rss_after, fds0, measured["fds"],
        fds_after, rss_after2,
    )  # fmt: skip
    print(
        f"  {kind:<8} N={run.shards:<5} all READY {run.all_ready_s:7.3f} s, "
        f"{run.fps:>9,.0f} frames/s, server CPU {run.cpu_us:6.1f} µs/frame, RSS/conn "
        f"{run.rss_per_conn / KiB:7.1f} KiB (peak {run.peak_per_conn / KiB:.1f}), "
        f"fds/conn {run.fds_per_conn:.2f}, RSS kept after {run.kept_per_conn / KiB:+.1f} "
        f"KiB/conn ({(run.rss_after - run.rss_before) / MiB:+.1f} MiB), a second wave "
        f"{run.wave2_per_conn / KiB:+.1f} KiB/conn",
        flush=True,
    )
    return run


# --- report ------------------------------------------------------------------------------


def targets(ours: Run, bare: Run) -> list[tuple[str, str, bool]]:
    ready = ours.all_ready_s / bare.all_ready_s
    fps = ours.fps / bare.fps
    return [
        (f"all READY ours/bare {ready:.2f}", f"<= {READY_RATIO_MAX:g}", ready <= READY_RATIO_MAX),
        (f"frames/s ours/bare {fps:.3f}", f">= {FPS_RATIO_MIN:g}", fps >= FPS_RATIO_MIN),
        (
            f"server RSS per connection {ours.rss_per_conn / KiB:.1f} KiB",
            f"<= {RSS_PER_CONN_MAX // KiB} KiB",
            ours.rss_per_conn <= RSS_PER_CONN_MAX,
        ),
        (
            f"fds per connection {ours.fds_per_conn:.2f}",
            f"<= {FDS_PER_CONN_MAX:g}",
            ours.fds_per_conn <= FDS_PER_CONN_MAX,
        ),
        (
            f"RSS kept after the clients go {ours.kept_per_conn / KiB:.1f} KiB per connection",
            f"<= {RETURNED_PER_CONN_MAX // KiB} KiB",
            ours.kept_per_conn <= RETURNED_PER_CONN_MAX,
        ),
        (
            f"RSS growth of a second wave {ours.wave2_per_conn / KiB:.1f} KiB per connection",
            f"<= {RETURNED_PER_CONN_MAX // KiB} KiB",
            ours.wave2_per_conn <= RETURNED_PER_CONN_MAX,
        ),
    ]


def raise_fd_limit(need: int) -> None:
    """Raise the soft descriptor limit up to the hard one (the servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < need:
            print(f"warning: descriptor limit {new} < {need} needed", flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--shards", type=lambda t: [int(x) for x in t.split(",")], default=list(DEFAULT_SHARDS),
        help="shard counts, comma-separated (default 16,128,1000)",
    )  # fmt: skip
    ap.add_argument("--size-mb", type=float, default=DEFAULT_SIZE_MB, help="MiB of payload")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="archives kept and reused here")
    ap.add_argument("--connect-concurrency", type=int, default=CONNECT_CONCURRENCY)
    ap.add_argument("--json", type=Path, default=None, help="also save the results here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    ap.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0

    raise_fd_limit(2 * max(args.shards) + 256)  # the clients' end and the server's
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="shards-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logdir = Path(tempfile.mkdtemp(prefix="logs-", dir=workdir))
    print(
        f"shards bench: N = {', '.join(map(str, args.shards))}, {args.size_mb:g} MiB of "
        f"payload per archive, dir {workdir}\npython {platform.python_version()}, websockets "
        f"{websockets_version}, aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs, load "
        f"average {_load()}\nour server: replayer replay --speed 0 --no-identify-concurrency "
        "--no-enforce-session-start-limit --no-heartbeat-timeout (Discord's pacing rules are "
        f"not measured); at most {args.connect_concurrency} handshakes at a time, both servers",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    try:
        archives = {n: ensure_archive(workdir, n, args.size_mb, args.seed) for n in args.shards}
        for n, archive in archives.items():
            script = load_script(archive)
            expected = {i: len(s) for i, s in script.shards.items()}
            del script
            if len(expected) != n:
                raise RuntimeError(f"{archive}: {len(expected)} shards with a READY, not {n}")
            print(f"N={n}: {sum(expected.values()):,} dispatches in all", flush=True)
            order = (BARE, OURS) if len(results) % 2 == 0 else (OURS, BARE)
            conc = args.connect_concurrency
            runs = {k: run_one(k, archive, expected, logdir, conc) for k in order}
            ours, bare = runs[OURS], runs[BARE]
            checks = targets(ours, bare)
            for name, bound, ok in checks:
                print(f"    {name:<62} {bound:>10}  {'PASS' if ok else 'FAIL'}")
                if not ok and n == max(args.shards):
                    failed.append(f"N={n}: {name}")
            results.append({
                "shards": n, "ours": ours.as_dict(), "bare": bare.as_dict(),
                "targets": [{"name": a, "bound": b, "ok": c} for a, b, c in checks],
            })  # fmt: skip
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    head = f"{'N':>5}  {'all READY ours / bare':>24}  {'frames/s ours / bare':>30}  "
    head += f"{'CPU µs/frame':>13}  {'RSS/conn KiB':>14}  {'fds/conn':>11}  {'kept KiB/conn':>13}"
    head += f"  {'2nd wave KiB/conn':>17}"
    print(head)
    for r in results:
        o, b = r["ours"], r["bare"]
        print(
            f"{r['shards']:>5}  {o['all_ready_s']:>7.3f} / {b['all_ready_s']:.3f} s "
            f"({o['all_ready_s'] / b['all_ready_s']:.2f}x)  {o['fps']:>9,.0f} / "
            f"{b['fps']:>9,.0f} ({o['fps'] / b['fps']:.3f}x)  "
            f"{o['server_cpu_us_per_frame']:>5.1f} / {b['server_cpu_us_per_frame']:<5.1f}  "
            f"{o['rss_per_conn'] / KiB:>5.1f} / "
            f"{b['rss_per_conn'] / KiB:<5.1f}  {o['fds_per_conn']:.2f} / {b['fds_per_conn']:.2f}"
            f"  {o['kept_per_conn'] / KiB:>5.1f} / {b['kept_per_conn'] / KiB:<5.1f}"
            f"  {o['wave2_per_conn'] / KiB:>5.1f} / {b['wave2_per_conn'] / KiB:.1f}"
        )
    print(
        f"targets at N={max(args.shards)}: "
        + ("all met" if not failed else "FAILED: " + "; ".join(failed))
    )
    print(f"load average at the end: {_load()} (other processes share the CPUs)")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "failed": failed}, indent=2) + "\n")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
