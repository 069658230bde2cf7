"""Throughput, CPU and peak memory of the replay server, against a bare ``websockets`` sender.

``replayer replay ARCHIVE --speed 0`` (a subprocess) replays a synthetic archive (one
shard, no member-chunk requests) to a ``websockets`` client that connects with
``?v=10&encoding=json`` (and ``&compress=zlib-stream``), sends IDENTIFY and reads until it
has every dispatch of the archive; zlib-stream frames are inflated with replayer's own
``make_decompressor``, as a real client would. Next to it, in the same run, a bare
``websockets`` server (this script with ``--serve-bare``, another subprocess) sends the same
payloads to the same client: preloaded in memory before it accepts, HELLO on connect, then
on IDENTIFY every dispatch as fast as ``await ws.send`` goes -- text frames uncompressed,
or one ``zlib.compressobj`` per connection with a ``Z_SYNC_FLUSH`` per message in binary
frames (what Discord and our server do).

Measured per configuration (uncompressed, zlib-stream): frames/s, MB/s of payload and
server CPU per frame (``/proc/PID/stat`` utime+stime of the server process, from just
before IDENTIFY to the last dispatch), for both servers in lockstep: each round alternates
whole transfers of the (default 50 MiB) archive, ours and bare in mirrored order, and
compares the sums (see ``run_round``); the round with the median ratio is reported. Then
the peak memory (``VmHWM``) of a replay server replaying a >= 1 GiB archive.

Targets: ours >= 1.0 x bare in frames/s uncompressed, >= 1.1 x with zlib-stream (issue
#19; the server CPU per frame of both is printed beside the ratio); peak memory replaying
the >= 1 GiB archive < 300 MiB.

Usage::

    .venv/bin/python bench/replay_bench.py --dir /tmp/replay-bench     # ~15 min (+5 min once
                                                                       #  to make the archives)
    .venv/bin/python bench/replay_bench.py --quick                     # ~2 min
    .venv/bin/python bench/replay_bench.py --check --json /tmp/replay-bench.json
    .venv/bin/python bench/replay_bench.py --profile                   # cProfile, 50 MiB
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from _proc import (  # bench/_proc.py
    cpu_times,
    memory,
    serve_bare_until_signalled,
    stop,
    tail,
    venv_tool,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.version import version as websockets_version

from replayer.archive.reader import ArchiveReader
from replayer.gateway.compression import Compression, StreamDecompressor, make_decompressor
from replayer.replay.script import ArchivePayloads, load_script
from replayer.synth import SynthOptions, write_synth

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]

NONE, ZLIB = "none", "zlib-stream"
CONFIGS = (NONE, ZLIB)
OURS, BARE = "replayer", "bare"
TARGETS = {NONE: 1.0, ZLIB: 1.1}  # ours / bare, frames/s, >= (issue #19 item 2)
MEMORY_LIMIT = 300 * MiB  # VmHWM of the replay server over the >= 1 GiB replay
MEMORY_MIN_MB = 1024  # the memory target is about archives of at least this many MiB

DEFAULT_SIZE_MB = 50  # throughput archive, MiB of payload (~69k dispatches)
DEFAULT_LEGS = 8  # transfer pairs per round: short transfers, finely interleaved
QUICK_LEGS = 2
DEFAULT_MEMORY_MB = 1024
DEFAULT_PROFILE_MB = 50
QUICK_SIZE_MB = 20
QUICK_MEMORY_MB = 50
WARMUP_FRAMES = 5000
CONTENDED_CPUS = 0.25  # other processes' CPU use (in CPUs) worth a warning

START_TIMEOUT_S = 900.0  # the replay server indexes the archive before it listens
TRANSFER_TIMEOUT_S = 1800.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every documented intent (Events > Gateway > List of Intents): the replay filters
# dispatches by the client's intents, and the bench reads the whole archive. Another value
# in REPLAYER_BENCH_INTENTS measures the filter's decoding path: 53575679 (all but
# MESSAGE_CONTENT) has every synthetic guild message decoded and its content emptied.
ALL_INTENTS = 53608447
INTENTS = int(os.environ.get("REPLAYER_BENCH_INTENTS", ALL_INTENTS))
IDENTIFY = json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": INTENTS}})
HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}'
URL_RE = re.compile(r"gateway URL: (ws://\S+)")


# --- archives ----------------------------------------------------------------------------


def archive_path(directory: Path, size_mb: float, seed: int) -> Path:
    return directory / f"synth-{size_mb:g}MiB-seed{seed}.rpl"


def _synth_options(size_mb: float, seed: int) -> SynthOptions:
    return SynthOptions(target_bytes=int(size_mb * MiB), member_chunk_requests=0, seed=seed)


def ensure_archive(directory: Path, size_mb: float, seed: int) -> tuple[Path, bool]:
    """The synthetic archive of ``size_mb`` MiB of payload; generated unless already there
    (with the same options). Returns (path, generated now)."""
    path = archive_path(directory, size_mb, seed)
    options = _synth_options(size_mb, seed)
    if path.exists():
        with contextlib.suppress(Exception), ArchiveReader(path) as reader:
            if reader.header.metadata.get("options") == asdict(options):
                print(f"reusing {path} ({path.stat().st_size / MiB:,.0f} MiB)", flush=True)
                return path, False
        print(f"{path} exists but was made with other options: regenerating", flush=True)
    print(f"generating {path} ({size_mb:g} MiB of payload) ...", flush=True)
    t0 = time.perf_counter()
    last = [t0]

    def progress(n: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 15:
            last[0] = now
            print(f"  {n / MiB:,.0f} MiB, {n / MiB / (now - t0):.1f} MiB/s", flush=True)

    write_synth(path, options, progress, overwrite=True)
    print(
        f"  done in {time.perf_counter() - t0:.0f} s: {path.stat().st_size / MiB:,.0f} MiB file",
        flush=True,
    )
    return path, True


def count_dispatches(path: Path) -> int:
    """Dispatches shard 0 replays (``len(load_script(path).shards[0])``), cached beside it."""
    st = path.stat()
    key = f"{st.st_size}:{st.st_mtime_ns}"
    cache = path.with_name(path.name + ".dispatches")
    with contextlib.suppress(OSError, ValueError):
        saved_key, saved = cache.read_text().split()
        if saved_key == key:
            return int(saved)
    script = load_script(path)
    if list(script.shards) != [0]:
        raise RuntimeError(f"{path}: expected one shard (0), got {sorted(script.shards)}")
    n = len(script.shards[0])
    with contextlib.suppress(OSError):
        cache.write_text(f"{key} {n}\n")
    return n


def load_payloads(path: Path) -> list[bytes]:
    """The recorded payloads of shard 0's dispatches, in order (what our server sends)."""
    script = load_script(path)
    shard = script.shards[0]
    source = ArchivePayloads(script.path)
    try:
        return [source.frame(offset).payload for offset in shard.offsets]
    finally:
        source.close()


# --- the bare server (a child process: `replay_bench.py --serve-bare ARCHIVE`) -----------


def serve_bare(path: Path) -> None:
    """Preload the dispatches, then serve them to every client that IDENTIFYs."""
    payloads = load_payloads(path)
    total = sum(map(len, payloads))
    gc.collect()
    gc.freeze()  # the preloaded payloads are not the benchmark's business

    async def handler(ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        zlib_stream = query.get("compress", [""])[0] == ZLIB
        deflater = zlib.compressobj() if zlib_stream else None
        with contextlib.suppress(ConnectionClosed):
            if deflater is None:
                await ws.send(HELLO, text=True)
            else:
                await ws.send(deflater.compress(HELLO) + deflater.flush(zlib.Z_SYNC_FLUSH))
            message = await ws.recv()
            if json.loads(message).get("op") != 2:
                await ws.close(4002, "expected IDENTIFY")
                return
            if deflater is None:
                for payload in payloads:
                    await ws.send(payload, text=True)
            else:
                sync = zlib.Z_SYNC_FLUSH
                for payload in payloads:
                    await ws.send(deflater.compress(payload) + deflater.flush(sync))
            await ws.wait_closed()

    serve_bare_until_signalled(handler, f"bare: {len(payloads)} dispatches, {total} bytes")


# --- processes ---------------------------------------------------------------------------


def busy_cpu_seconds() -> float:
    """CPU time used by everything on the machine (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def wait_quiet(max_wait_s: float) -> float:
    """Wait (at most ``max_wait_s``) until the other processes use less than
    ``CONTENDED_CPUS`` over one second; returns how long it waited. The servers are idle
    meanwhile, so whatever runs is someone else's."""
    t0 = time.monotonic()
    while True:
        b0 = busy_cpu_seconds()
        time.sleep(1.0)
        if busy_cpu_seconds() - b0 < CONTENDED_CPUS or time.monotonic() - t0 >= max_wait_s:
            return time.monotonic() - t0


@dataclass
class Server:
    """A server subprocess of ours (``replayer replay``) or the bare one."""

    kind: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    start_s: float  # from spawn to listening (the archive is loaded by then)

    @classmethod
    def start(cls, kind: str, archive: Path, workdir: Path, tag: str) -> Server:
        log = workdir / f"{tag}.log"
        if kind == OURS:
            cmd = [
                venv_tool("replayer"), "replay", str(archive), "--speed", "0",
                "--host", "127.0.0.1", "--port", "0",
                # One IDENTIFY per transfer, back to back, and no heartbeats: the rules
                # that would stop that are not what this measures.
                "--no-identify-concurrency", "--no-heartbeat-timeout",
            ]  # fmt: skip
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(archive)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
        t0 = time.perf_counter()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            match = URL_RE.search(log.read_text(errors="replace"))
            if match:
                return cls(kind, proc, match.group(1), log, time.perf_counter() - t0)
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(
                    f"{kind} did not start (exit {proc.returncode}): {' '.join(cmd)}\n" + tail(log)
                )
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        return stop(self.proc)


# --- the client --------------------------------------------------------------------------


@dataclass
class Transfer:
    """One client transfer, from just before IDENTIFY to the last dispatch."""

    server: str
    compress: str
    frames: int  # dispatches received
    payload_bytes: int  # after decompression
    wire_bytes: int  # WebSocket message bytes as received
    wall_s: float
    server_user_s: float
    server_sys_s: float
    client_cpu_s: float
    machine_cpu_s: float  # every process on the machine, these three included
    round: int = 0
    leg: int = 0

    @property
    def server_cpu_s(self) -> float:
        return self.server_user_s + self.server_sys_s

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def mbps(self) -> float:
        return self.payload_bytes / self.wall_s / 1e6

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.frames * 1e6

    @property
    def others_cpu_s(self) -> float:
        """CPU time of the other processes (not the server, not this client)."""
        return max(0.0, self.machine_cpu_s - self.server_cpu_s - self.client_cpu_s)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "fps": self.fps,
            "mbps": self.mbps,
            "server_cpu_us_per_frame": self.cpu_us,
            "client_cpu_us_per_frame": self.client_cpu_s / self.frames * 1e6,
            "server_busy": self.server_cpu_s / self.wall_s,
            "client_busy": self.client_cpu_s / self.wall_s,
            "others_cpus": self.others_cpu_s / self.wall_s,
        }


async def _recv_dispatches(
    ws: ClientConnection, decompressor: StreamDecompressor | None, expected: int
) -> tuple[int, int, int, bytes]:
    """Read until ``expected`` dispatches (HELLO already read); (frames, payload bytes,
    wire bytes, last message)."""
    frames = payload = wire = 0
    last = b""
    if decompressor is not None:
        while frames < expected:
            data = await ws.recv(decode=False)
            wire += len(data)
            for message in decompressor.feed(data):
                frames += 1
                payload += len(message)
                last = message
    else:
        while frames < expected:
            last = await ws.recv(decode=False)
            frames += 1
            wire += len(last)
        payload = wire
    return frames, payload, wire, last


async def transfer(
    server: str, url: str, pid: int, compress: str, expected: int, *, check_last: bool = True
) -> Transfer:
    query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compress == ZLIB else "")
    async with connect(
        url + query, compression=None, max_size=None, ping_interval=None, open_timeout=60
    ) as ws:
        # One inflate context for the whole connection, HELLO included.
        decompressor = make_decompressor(Compression.ZLIB_STREAM) if compress == ZLIB else None
        hello = await ws.recv(decode=False)
        if decompressor is not None:
            (hello,) = decompressor.feed(hello)
        if json.loads(hello).get("op") != 10:
            raise RuntimeError(f"{server}: expected HELLO, got {hello[:80]!r}")
        gc.collect()
        m0 = busy_cpu_seconds()
        u0, s0 = cpu_times(pid)
        c0 = time.process_time()
        t0 = time.perf_counter()
        await ws.send(IDENTIFY)
        frames, payload, wire, last = await asyncio.wait_for(
            _recv_dispatches(ws, decompressor, expected), TRANSFER_TIMEOUT_S
        )
        t1 = time.perf_counter()
        c1 = time.process_time()
        u1, s1 = cpu_times(pid)
        m1 = busy_cpu_seconds()
    if check_last:
        obj = json.loads(last)
        if obj.get("op") != 0 or obj.get("s") != expected:
            raise RuntimeError(
                f"{server} {compress}: last dispatch has op={obj.get('op')} s={obj.get('s')}, "
                f"expected op=0 s={expected}"
            )
    return Transfer(
        server, compress, frames, payload, wire, t1 - t0, u1 - u0, s1 - s0, c1 - c0, m1 - m0
    )


async def warm_up(server: Server, compress: str, frames: int) -> None:
    """Part of a transfer, then a close: the servers' code paths and caches get warm."""
    query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compress == ZLIB else "")
    async with connect(
        server.url + query, compression=None, max_size=None, ping_interval=None, open_timeout=60
    ) as ws:
        await ws.recv(decode=False)
        await ws.send(IDENTIFY)
        for _ in range(frames):
            await ws.recv(decode=False)


# --- lockstep rounds ---------------------------------------------------------------------


def run_round(
    servers: dict[str, Server], compress: str, expected: int, rnd: int, legs: int
) -> list[Transfer]:
    """One round of one configuration: ``legs`` pairs of full transfers, ours and bare in
    mirrored order (ours, bare, bare, ours, ... ; bare first in odd rounds), so that a
    linear drift of the CPU's speed weighs the same on both."""
    first, second = (OURS, BARE) if rnd % 2 == 0 else (BARE, OURS)
    order = [(first, second) if leg % 2 == 0 else (second, first) for leg in range(legs)]
    out: list[Transfer] = []
    for leg, pair in enumerate(order):
        for kind in pair:
            server = servers[kind]
            t = asyncio.run(transfer(kind, server.url, server.pid, compress, expected))
            t.round, t.leg = rnd, leg
            out.append(t)
            print(
                f"  round {rnd + 1} {compress:<11} {kind:<8} {t.fps:>9,.0f} frames/s "
                f"{t.mbps:>7,.1f} MB/s  server CPU {t.cpu_us:>5.1f} µs/frame "
                f"(busy {t.server_cpu_s / t.wall_s:.0%}), client busy "
                f"{t.client_cpu_s / t.wall_s:.0%}, other processes "
                f"{t.others_cpu_s / t.wall_s:.2f} CPUs",
                flush=True,
            )
    return out


@dataclass
class Side:
    """One server's transfers of one round, added up."""

    frames: int
    payload_bytes: int
    wall_s: float
    server_cpu_s: float
    server_sys_s: float
    client_cpu_s: float
    others_cpu_s: float

    @classmethod
    def of(cls, transfers: list[Transfer]) -> Side:
        return cls(
            sum(t.frames for t in transfers),
            sum(t.payload_bytes for t in transfers),
            sum(t.wall_s for t in transfers),
            sum(t.server_cpu_s for t in transfers),
            sum(t.server_sys_s for t in transfers),
            sum(t.client_cpu_s for t in transfers),
            sum(t.others_cpu_s for t in transfers),
        )

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def mbps(self) -> float:
        return self.payload_bytes / self.wall_s / 1e6

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.frames * 1e6

    @property
    def sys_us(self) -> float:
        return self.server_sys_s / self.frames * 1e6

    @property
    def client_us(self) -> float:
        return self.client_cpu_s / self.frames * 1e6

    @property
    def others_cpus(self) -> float:
        return self.others_cpu_s / self.wall_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "fps": self.fps,
            "mbps": self.mbps,
            "server_cpu_us_per_frame": self.cpu_us,
            "server_sys_us_per_frame": self.sys_us,
            "client_cpu_us_per_frame": self.client_us,
            "others_cpus": self.others_cpus,
        }


@dataclass
class RoundResult:
    compress: str
    round: int
    ours: Side
    bare: Side

    @property
    def ratio(self) -> float:
        return self.ours.fps / self.bare.fps


def median_round(results: list[RoundResult]) -> RoundResult:
    """The round with the median frames/s ratio (the lower one of an even count)."""
    order = sorted(results, key=lambda r: r.ratio)
    return order[(len(order) - 1) // 2]


# --- memory ------------------------------------------------------------------------------


@dataclass
class MemoryRun:
    archive_mb: float
    archive_file_bytes: int
    dispatches: int
    load_s: float  # spawn to listening: load_script over the whole archive
    hwm_after_load: int
    rss_after_load: int
    hwm: int
    rss_end: int
    transfer: Transfer | None = None


def run_memory(archive: Path, size_mb: float, workdir: Path) -> MemoryRun:
    expected = count_dispatches(archive)
    server = Server.start(OURS, archive, workdir, "memory")
    try:
        loaded = memory(server.pid)
        print(
            f"  replay server listening after {server.start_s:.1f} s: VmHWM "
            f"{loaded['VmHWM'] / MiB:.1f} MiB, VmRSS {loaded['VmRSS'] / MiB:.1f} MiB; "
            f"replaying {expected:,} dispatches ...",
            flush=True,
        )
        t = asyncio.run(transfer(OURS, server.url, server.pid, NONE, expected))
        end = memory(server.pid)
    except BaseException:
        server.stop()
        print(f"--- replay server log:\n{tail(server.log)}", file=sys.stderr)
        raise
    server.stop()
    run = MemoryRun(
        size_mb, archive.stat().st_size, expected, server.start_s,
        loaded["VmHWM"], loaded["VmRSS"], end["VmHWM"], end["VmRSS"], t,
    )  # fmt: skip
    print(
        f"  {t.fps:,.0f} frames/s, {t.mbps:,.1f} MB/s, server CPU {t.cpu_us:.1f} µs/frame; "
        f"VmHWM {run.hwm / MiB:.1f} MiB, VmRSS at the end {run.rss_end / MiB:.1f} MiB",
        flush=True,
    )
    return run


# --- profile -----------------------------------------------------------------------------


def run_client_child(url: str, compress: str, expected: int) -> None:
    """``--client``: one transfer from a separate process; prints its numbers as JSON."""
    t = asyncio.run(transfer("profiled", url, os.getpid(), compress, expected))
    print(json.dumps(t.as_dict()))


def profile(archive: Path, out_dir: Path | None, top: int) -> None:
    """cProfile an in-process ``ReplayServer`` serving one transfer per configuration to a
    client in another process; print the heaviest functions."""
    from replayer.replay.engine import ReplayOptions
    from replayer.replay.server import ReplayServer

    script = load_script(archive)
    expected = len(script.shards[0])

    async def one(compress: str) -> tuple[cProfile.Profile, dict[str, Any], float]:
        options = ReplayOptions(speed=0, identify_concurrency=False, heartbeat_timeout=False)
        async with ReplayServer(script, options) as server:
            cmd = [
                sys.executable, str(Path(__file__).resolve()), "--client", server.gateway_url,
                compress, str(expected),
            ]  # fmt: skip
            prof = cProfile.Profile()
            c0 = time.process_time()
            prof.enable()
            child = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
            stdout, _ = await child.communicate()
            prof.disable()
            cpu = time.process_time() - c0
        if child.returncode != 0:
            raise RuntimeError(f"profile client failed (exit {child.returncode})")
        return prof, json.loads(stdout), cpu

    for compress in CONFIGS:
        prof, result, cpu = asyncio.run(one(compress))
        print(
            f"\nprofile, {compress}: {expected:,} dispatches; client saw {result['fps']:,.0f} "
            f"frames/s under the profiler; server process CPU {cpu:.2f} s "
            f"({cpu / expected * 1e6:.1f} µs/frame with profiling overhead)"
        )
        for key in ("tottime", "cumulative"):
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats(key).print_stats(top)
            text = buf.getvalue()
            print(f"--- by {key} ---")
            print(text[text.find("   ncalls") :].rstrip())
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"replay-{compress}.pstats"
            prof.dump_stats(path)
            print(f"saved {path}")


# --- report ------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    value: float | None
    bound: str
    ok: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else ("PASS" if self.ok else "FAIL")


def print_table(picked: dict[str, RoundResult], all_rounds: dict[str, list[RoundResult]]) -> None:
    head = ("config", "server", "frames/s", "MB/s", "server CPU µs/frame", "(sys)",
            "client CPU µs/frame", "others (CPUs)", "frames/s ours/bare", "CPU ours/bare",
            "ratio by round")  # fmt: skip
    cells: list[tuple[str, ...]] = []
    for compress, r in picked.items():
        ratios = " ".join(f"{x.ratio:.3f}" for x in all_rounds[compress])
        for kind, side in ((OURS, r.ours), (BARE, r.bare)):
            cells.append((
                compress, kind, f"{side.fps:,.0f}", f"{side.mbps:,.1f}", f"{side.cpu_us:,.1f}",
                f"{side.sys_us:,.1f}", f"{side.client_us:,.1f}", f"{side.others_cpus:.2f}",
                f"{r.ratio:.3f}" if kind == OURS else "",
                f"{r.ours.cpu_us / r.bare.cpu_us:.3f}" if kind == OURS else "",
                ratios if kind == OURS else "",
            ))  # fmt: skip
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*head))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line.format(*c))
    busy = max(max(r.ours.others_cpus, r.bare.others_cpus) for r in picked.values())
    if busy > CONTENDED_CPUS:
        print(
            f"  warning: other processes used up to {busy:.2f} CPUs during the reported "
            f"rounds: the machine was shared, expect noise"
        )


def make_targets(picked: dict[str, RoundResult], mem: MemoryRun | None) -> list[Target]:
    out: list[Target] = []
    for compress, bound in TARGETS.items():
        r = picked.get(compress)
        ratio = r.ratio if r is not None else None
        cpu = (
            f" (server CPU {r.ours.cpu_us:.1f} vs {r.bare.cpu_us:.1f} µs/frame)"
            if r is not None
            else ""
        )
        out.append(
            Target(
                f"frames/s ours/bare, {compress}{cpu}",
                ratio,
                f">= {bound:.2f}",
                None if ratio is None else ratio >= bound,
            )
        )
    hwm = mem.hwm / MiB if mem is not None else None
    name = "replay peak memory (VmHWM, MiB)"
    if mem is not None:
        name += f", {mem.archive_file_bytes / MiB:,.0f} MiB archive"
        if mem.archive_mb < MEMORY_MIN_MB:
            name += f" (< {MEMORY_MIN_MB} MiB: not the target's size)"
    out.append(
        Target(
            name,
            hwm,
            f"< {MEMORY_LIMIT / MiB:.0f}",
            None if mem is None else mem.hwm < MEMORY_LIMIT,
        )
    )
    return out


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--size-mb", type=float, default=None,
        help=f"MiB of payload of the throughput archive (default {DEFAULT_SIZE_MB})",
    )  # fmt: skip
    ap.add_argument(
        "--memory-mb", type=float, default=None,
        help=f"MiB of payload of the memory-run archive (default {DEFAULT_MEMORY_MB})",
    )  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3, help="lockstep rounds; the median is kept")
    ap.add_argument(
        "--legs", type=int, default=None,
        help=f"transfer pairs per round (default {DEFAULT_LEGS}; --quick {QUICK_LEGS})",
    )  # fmt: skip
    ap.add_argument(
        "--dir", type=Path, default=None,
        help="where archives go; kept there and reused by later runs (default: a temp dir)",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="synth seed")
    ap.add_argument(
        "--quiet-wait", type=float, default=30.0,
        help="before each round, wait up to this many seconds for other processes to go "
        f"below {CONTENDED_CPUS} CPUs (0: don't)",
    )  # fmt: skip
    ap.add_argument(
        "--quick", action="store_true",
        help=f"--size-mb {QUICK_SIZE_MB} --memory-mb {QUICK_MEMORY_MB} --legs {QUICK_LEGS}",
    )  # fmt: skip
    ap.add_argument("--skip-memory", action="store_true", help="no memory run")
    ap.add_argument("--skip-throughput", action="store_true", help="only the memory run")
    ap.add_argument("--json", type=Path, default=None, help="also save the results here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (without --dir)")
    ap.add_argument(
        "--profile", action="store_true",
        help="instead: cProfile an in-process ReplayServer on a --profile-mb archive",
    )  # fmt: skip
    ap.add_argument("--profile-mb", type=float, default=DEFAULT_PROFILE_MB)
    ap.add_argument("--profile-out", type=Path, default=None, help="save .pstats files here")
    ap.add_argument("--profile-top", type=int, default=25)
    ap.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=3, metavar=("URL", "COMPRESS", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if args.client:
        url, compress, n = args.client
        run_client_child(url, compress, int(n))
        return 0

    size_mb = args.size_mb or (QUICK_SIZE_MB if args.quick else DEFAULT_SIZE_MB)
    memory_mb = args.memory_mb or (QUICK_MEMORY_MB if args.quick else DEFAULT_MEMORY_MB)
    args.legs = args.legs or (QUICK_LEGS if args.quick else DEFAULT_LEGS)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        workdir = args.dir
    else:
        workdir = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    logdir = Path(tempfile.mkdtemp(prefix="logs-", dir=workdir))

    what = (
        f"profile of an in-process ReplayServer, {args.profile_mb:g} MiB archive"
        if args.profile
        else f"throughput archive {size_mb:g} MiB, memory archive {memory_mb:g} MiB, "
        f"{args.rounds} round(s) x {args.legs} transfer pair(s)"
    )
    print(
        f"replay bench: {what}, dir {workdir}\n"
        f"python {platform.python_version()}, websockets {websockets_version}, aiohttp "
        f"{aiohttp.__version__}, {platform.platform()}, {os.cpu_count()} CPUs, load average "
        f"{_load()}",
        flush=True,
    )
    try:
        if args.profile:
            archive, _ = ensure_archive(workdir, args.profile_mb, args.seed)
            profile(archive, args.profile_out, args.profile_top)
            return 0
        return _bench(args, size_mb, memory_mb, workdir, logdir)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
        if args.dir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.dir is None:
            print(f"kept {workdir}")


def _bench(
    args: argparse.Namespace, size_mb: float, memory_mb: float, workdir: Path, logdir: Path
) -> int:
    # Archives first: generating them is heavy and must not overlap a measurement.
    archive = mem_archive = None
    if not args.skip_throughput:
        archive, _ = ensure_archive(workdir, size_mb, args.seed)
    if not args.skip_memory:
        mem_archive, _ = ensure_archive(workdir, memory_mb, args.seed)

    transfers: list[Transfer] = []
    rounds: dict[str, list[RoundResult]] = {c: [] for c in CONFIGS}
    picked: dict[str, RoundResult] = {}
    info: dict[str, Any] = {}
    if archive is not None:
        expected = count_dispatches(archive)
        print(f"throughput archive: {expected:,} dispatches", flush=True)
        servers: dict[str, Server] = {}
        try:
            for kind in (BARE, OURS):
                servers[kind] = Server.start(kind, archive, logdir, kind)
                print(f"  {kind} server up in {servers[kind].start_s:.1f} s", flush=True)
            info["server_start_s"] = {k: s.start_s for k, s in servers.items()}
            for compress in CONFIGS:
                for server in servers.values():
                    asyncio.run(warm_up(server, compress, min(WARMUP_FRAMES, expected)))
            for rnd in range(args.rounds):
                order = CONFIGS if rnd % 2 == 0 else CONFIGS[::-1]
                for compress in order:
                    if args.quiet_wait > 0:
                        waited = wait_quiet(args.quiet_wait)
                        if waited > 1.5:
                            print(f"  waited {waited:.0f} s for other processes", flush=True)
                    ts = run_round(servers, compress, expected, rnd, args.legs)
                    transfers += ts
                    result = RoundResult(
                        compress,
                        rnd,
                        Side.of([t for t in ts if t.server == OURS]),
                        Side.of([t for t in ts if t.server == BARE]),
                    )
                    rounds[compress].append(result)
                    print(f"  round {rnd + 1} {compress}: ours/bare {result.ratio:.3f}", flush=True)
            info["server_memory_end"] = {k: memory(s.pid) for k, s in servers.items()}
        except BaseException:
            for kind, server in servers.items():
                print(f"--- {kind} log:\n{tail(server.log)}", file=sys.stderr)
            raise
        finally:
            for server in servers.values():
                server.stop()
        picked = {c: median_round(rs) for c, rs in rounds.items()}
        # Same dispatches both ways; only READY differs (ours points it at itself).
        for compress, r in picked.items():
            per_transfer = (r.ours.payload_bytes - r.bare.payload_bytes) / (2 * args.legs)
            info.setdefault("payload_bytes_ours_minus_bare", {})[compress] = per_transfer

    mem: MemoryRun | None = None
    if mem_archive is not None:
        print(f"memory run: replaying {mem_archive.name} ...", flush=True)
        mem = run_memory(mem_archive, memory_mb, logdir)

    print()
    if picked:
        print(
            f"throughput: {size_mb:g} MiB archive, {expected:,} dispatches per transfer; the "
            f"median round (by ratio) of {args.rounds}, {args.legs} transfer(s) per server "
            f"in it; server CPU = utime+stime of the server process"
        )
        print_table(picked, rounds)
        for compress, diff in info["payload_bytes_ours_minus_bare"].items():
            print(f"  {compress}: payload bytes ours - bare per transfer: {diff:+,.0f} (READY)")
    if mem is not None:
        print(
            f"\nmemory: {mem.archive_file_bytes / MiB:,.0f} MiB archive "
            f"({mem.archive_mb:g} MiB of payload, {mem.dispatches:,} dispatches); "
            f"replay server VmHWM after loading {mem.hwm_after_load / MiB:.1f} MiB "
            f"(in {mem.load_s:.1f} s), after the replay {mem.hwm / MiB:.1f} MiB; "
            f"VmRSS at the end {mem.rss_end / MiB:.1f} MiB"
        )
        if mem.transfer is not None:
            mt = mem.transfer
            print(
                f"  that replay: {mt.fps:,.0f} frames/s, {mt.mbps:,.1f} MB/s, server CPU "
                f"{mt.cpu_us:.1f} µs/frame"
            )

    targets = make_targets(picked, mem)
    print("\ntargets")
    width = max(len(t.name) for t in targets)
    for tg in targets:
        value = "-" if tg.value is None else f"{tg.value:.3f}"
        print(f"  {tg.name:<{width}}  {value:>9}  {tg.bound:>7}  {tg.verdict}")
    failed = [tg.name for tg in targets if tg.ok is False]
    print("\nall targets met" if not failed else f"\nFAILED: {'; '.join(failed)}")
    print(f"load average at the end: {_load()} (other processes share the CPUs)")

    if args.json is not None:
        document = {
            "size_mb": size_mb,
            "memory_mb": memory_mb,
            "rounds": args.rounds,
            "legs": args.legs,
            "seed": args.seed,
            "python": platform.python_version(),
            "websockets": websockets_version,
            "aiohttp": aiohttp.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "transfers": [t.as_dict() for t in transfers],
            "rounds_by_config": {
                c: [
                    {
                        "round": rr.round,
                        "ratio": rr.ratio,
                        "ours": rr.ours.as_dict(),
                        "bare": rr.bare.as_dict(),
                    }
                    for rr in rs
                ]
                for c, rs in rounds.items()
            },
            "reported_round": {c: rr.round for c, rr in picked.items()},
            "memory": None
            if mem is None
            else asdict(mem) | {"transfer": mem.transfer.as_dict() if mem.transfer else None},
            "info": info,
            "targets": [asdict(tg) | {"verdict": tg.verdict} for tg in targets],
            "failed": failed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"results saved to {args.json}")
    return 1 if (args.check and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
