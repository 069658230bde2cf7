"""Throughput and cost of recording the gateway through the proxy, against bare mitmdump.

One local upstream (a bare ``websockets`` server speaking enough gateway to be recorded)
sends N text dispatches as fast as it can, in bursts, to a ``websockets`` client through
each of these, all in the same run:

* ``direct``: no proxy, for context (the upstream and client's own ceiling);
* ``mitmdump``: bare ``mitmdump --mode reverse:...`` (no addon) -- the baseline;
* ``mitmdump+noop hook``: the same with a ``websocket_message`` hook that does nothing;
* ``mitmdump+addon``: the same with ``-s addons/gateway_recorder.py`` recording;
* ``replayer record``: the lean in-process mitmproxy of ``replayer record``.

Lockstep: each round starts every proxy afresh (a subprocess each) and opens one
connection through each; then the proxies take turns, one burst of frames each (the
order rotates every burst), until N frames have gone through each. This machine's speed
drifts by +-15 % from one second to the next, so proxies measured one after the other
(a whole run each) compared different machines; turns of ~60-300 ms sample the same
drift. Placement (``--no-pin`` to leave it to the scheduler): the proxy whose turn it is
runs alone on the first CPU; the client, the upstream and the proxies' children (the
addon's recorder worker) share the others, so that a proxy's thread never shares its CPU
with the load generators (on 2 CPUs the worker does share theirs).
A proxy's wall time is the sum of its bursts (the client's "go N" to the last
frame); its CPU (``/proc/PID/stat`` utime+stime of it and its children, the addon's
recorder worker) is counted until it is idle again after each burst, so the worker's
backlog is in the CPU column. Its peak RSS is ``VmHWM`` over the round. The ratios to
bare mitmdump are taken within each round, and their median is reported. After
each round every archive is read back with ``ArchiveReader``: it must hold every server
frame (and each "go N"), or the benchmark stops.

Targets: ``mitmdump+addon`` >= 0.95 x bare mitmdump in frames/s, ``replayer record``
> 1.0 x bare mitmdump, at every frame size; peak RSS of the recording proxies over the
100 B run < 150 MiB.

Usage::

    .venv/bin/python bench/record_bench.py                 # full, ~23 min on 2 CPUs
    .venv/bin/python bench/record_bench.py --quick         # small N, one round
    .venv/bin/python bench/record_bench.py --check --json /tmp/record-bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import websockets
from _proc import (  # bench/_proc.py
    cpu_times,
    descendants,
    memory,
    pin,
    stop,
    tail,
    tree_cpu_times,
    venv_tool,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import CloseRecord, ConnectionRecord, FrameRecord
from replayer.gateway.opcodes import Direction
from replayer.resources import addon_path

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]
ADDON = addon_path()
NOOP_ADDON = ROOT / "bench" / "noop_addon.py"
GATEWAY_PATH = "/?v=10&encoding=json"

# (frame size in bytes, frames at --scale 1, frames per burst): a burst takes ~60-300 ms
# through bare mitmdump. This machine's speed wanders on a scale of seconds, so the
# shorter the turns, the closer in time (and in machine speed) each pair of bursts; each
# burst also costs ~40 ms of settling, unmeasured.
SIZES: tuple[tuple[int, int, int], ...] = (
    (100, 100_000, 500),
    (10_000, 20_000, 100),
    (1_000_000, 300, 5),
)
QUICK_SCALE = 0.05

DIRECT, BARE, ADDON_RUN, RECORD = "direct", "mitmdump", "mitmdump+addon", "replayer record"
NOOP = "mitmdump+noop hook"  # the floor: what calling any websocket_message hook costs
PROXIES = (DIRECT, BARE, NOOP, ADDON_RUN, RECORD)
RECORDING = (ADDON_RUN, RECORD)
ADDON_TARGET = 0.95  # mitmdump+addon / bare mitmdump, frames/s, >=
RECORD_TARGET = 1.0  # replayer record / bare mitmdump, frames/s, >
RSS_LIMIT = 150 * MiB  # VmHWM of a recording proxy over the 100 B run
RSS_SIZE = 100  # the frame size whose run the RSS target applies to

BUSY_WARN = 0.25  # CPUs used by other processes during a run: warn above
START_TIMEOUT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the upstream (a child process: `record_bench.py --upstream SIZE N`) -----------------


class Frames:
    """Gateway dispatches of exactly ``size`` bytes: ``{"op":0,"s":i,"t":..,"d":{..}}``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._head = b'{"op":0,"s":'
        self._mid = b',"t":"MESSAGE_CREATE","d":{"id":"1","channel_id":"2","content":"'
        self._tail = b'"}}'
        self._pads: dict[int, bytes] = {}
        fixed = len(self._head) + len(self._mid) + len(self._tail)
        if size < fixed + 7:
            raise ValueError(f"frame size {size} is below the minimum {fixed + 7}")
        self._fixed = fixed

    def __call__(self, i: int) -> bytes:
        digits = str(i).encode()
        pad_len = self.size - self._fixed - len(digits)
        pad = self._pads.get(pad_len)
        if pad is None:
            pad = self._pads[pad_len] = b"x" * pad_len
        return b"".join((self._head, digits, self._mid, pad, self._tail))


def serve_upstream(size: int) -> None:
    """Send N more frames of ``size`` bytes each time a client says "go N" (``s`` counts on
    over the connection); print the port."""
    frame = Frames(size)

    async def handler(ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path != GATEWAY_PATH:
            await ws.close(4000, "unexpected path")
            return
        sent = 0
        async for message in ws:
            verb, _, n = str(message).partition(" ")
            if verb != "go" or not n.isdigit():
                await ws.close(4000, "expected go N")
                return
            for i in range(sent, sent + int(n)):
                await ws.send(frame(i), text=True)
            sent += int(n)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with serve(
            handler,
            "127.0.0.1",
            0,
            compression=None,
            max_size=None,
            ping_interval=None,
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(port, flush=True)
            await stop.wait()

    asyncio.run(main())


# --- processes ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    return sum(cpu_times(pid))


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def machine_load(seconds: float) -> float:
    """CPUs in use over ``seconds`` (this process sleeps meanwhile)."""
    b0 = machine_cpu()[0]
    time.sleep(seconds)
    return (machine_cpu()[0] - b0) / seconds


@dataclass
class Upstream:
    size: int
    proc: subprocess.Popen[bytes]
    port: int

    @classmethod
    def start(cls, size: int) -> Upstream:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--upstream", str(size)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            stop(proc)
            raise RuntimeError(f"upstream did not start: {line!r}")
        return cls(size, proc, int(line))

    def stop(self) -> None:
        stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass(frozen=True)
class Placement:
    """Which CPUs run what: the proxy whose turn it is on ``proxy`` (to itself), and the
    client, the upstream and the proxies' children (the addon's recorder worker) on
    ``others``. None: wherever the scheduler puts them."""

    proxy: frozenset[int]
    others: frozenset[int]

    @classmethod
    def choose(cls, enabled: bool) -> Placement | None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not enabled or len(cpus) < 2:
            return None
        return cls(frozenset(cpus[:1]), frozenset(cpus[1:]))

    def apply(self, proxy_pid: int) -> None:
        pin(proxy_pid, self.proxy)
        for child in descendants(proxy_pid):
            pin(child, self.others)


_LISTEN = {
    BARE: re.compile(r"listening at \S+:(\d+)"),
    NOOP: re.compile(r"listening at \S+:(\d+)"),
    ADDON_RUN: re.compile(r"listening at \S+:(\d+)"),
    RECORD: re.compile(r"gateway URL: ws://\S+:(\d+)/"),
}


@dataclass
class Proxy:
    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    archive: Path | None

    @classmethod
    def start(
        cls, kind: str, upstream_port: int, workdir: Path, tag: str, placement: Placement | None
    ) -> Proxy:
        confdir = workdir / "mitmproxy"  # shared: the CA is generated once
        confdir.mkdir(exist_ok=True)
        log = workdir / f"{tag}.log"
        archive = workdir / f"{tag}.rpl" if kind in RECORDING else None
        http_up = f"http://127.0.0.1:{upstream_port}"
        ws_up = f"ws://127.0.0.1:{upstream_port}"
        if kind == RECORD:
            cmd = [
                venv_tool("replayer"), "record", "-o", str(archive), "--upstream", http_up,
                "--gateway-upstream", ws_up, "--host", "127.0.0.1", "--port", "0",
                "--confdir", str(confdir),
            ]  # fmt: skip
        else:
            # flow_detail=0: no line per message (what -q does, but keeping the startup
            # log that names the port). Both mitmdump runs use the same flags.
            cmd = [
                venv_tool("mitmdump"), "--mode", f"reverse:{http_up}@127.0.0.1:0",
                "--set", f"confdir={confdir}", "--set", "flow_detail=0",
            ]  # fmt: skip
            if kind == ADDON_RUN:
                cmd += [
                    "-s", str(ADDON), "--set", f"gateway_record={archive}",
                    "--set", f"gateway_upstream={ws_up}",
                ]  # fmt: skip
            elif kind == NOOP:
                cmd += ["-s", str(NOOP_ADDON)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        if placement is not None:
            try:
                placement.apply(proc.pid)  # early, so that its threads inherit it
            except OSError:
                stop(proc)
                raise
        pattern = _LISTEN[kind]
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            match = pattern.search(log.read_text(errors="replace"))
            if match:
                return cls(kind, proc, int(match.group(1)), log, archive)
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(
                    f"{kind} did not start (exit {proc.returncode}): {' '.join(cmd)}\n" + tail(log)
                )
            time.sleep(0.02)

    def stop(self) -> int:
        return stop(self.proc)


# --- one run ---------------------------------------------------------------------------


@dataclass
class Transfer:
    """One proxy's bursts of a round, added up, the handshakes excluded."""

    wall_s: float = 0.0
    payload_bytes: int = 0
    proxy_user_s: float | None = None  # None: no proxy (direct)
    proxy_sys_s: float | None = None
    client_cpu_s: float = 0.0
    upstream_cpu_s: float = 0.0
    other_cpu_s: float = 0.0  # busy CPU time of every other process on the machine
    steal_s: float = 0.0
    bursts: int = 0
    burst_wall_s: list[float] = field(default_factory=list)  # each burst's, in order


@dataclass
class Run:
    proxy: str
    size: int
    frames: int
    round: int
    wall_s: float
    payload_bytes: int
    proxy_user_s: float | None = None
    proxy_sys_s: float | None = None
    client_cpu_s: float = 0.0
    upstream_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    steal_s: float = 0.0
    bursts: int = 0
    burst_wall_s: list[float] = field(default_factory=list)  # each burst's, in order
    vm_hwm: int | None = None
    vm_rss: int | None = None
    archive_bytes: int | None = None
    archive_server_frames: int | None = None
    archive_client_frames: int | None = None
    proxy_exit: int | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def mbps(self) -> float:
        return self.payload_bytes / self.wall_s / 1e6

    @property
    def proxy_cpu_s(self) -> float | None:
        if self.proxy_user_s is None or self.proxy_sys_s is None:
            return None
        return self.proxy_user_s + self.proxy_sys_s

    @property
    def cpu_us_per_frame(self) -> float | None:
        cpu = self.proxy_cpu_s
        return None if cpu is None else cpu / self.frames * 1e6

    @property
    def other_load(self) -> float:
        """CPUs kept busy by processes outside the benchmark during the transfer."""
        return max(0.0, self.other_cpu_s) / self.wall_s

    @property
    def sys_us_per_frame(self) -> float | None:
        return None if self.proxy_sys_s is None else self.proxy_sys_s / self.frames * 1e6

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            fps=self.fps,
            mbps=self.mbps,
            cpu_us_per_frame=self.cpu_us_per_frame,
            sys_us_per_frame=self.sys_us_per_frame,
            client_cpu_us_per_frame=self.client_cpu_s / self.frames * 1e6,
            upstream_cpu_us_per_frame=self.upstream_cpu_s / self.frames * 1e6,
            other_load=self.other_load,
        )
        return d


SETTLE_POLL_S = 0.02
SETTLE_MAX_S = 5.0


async def _settle(pid: int) -> None:
    """Wait until ``pid`` and its children stop using CPU (the recorder worker writing
    what the proxy forwarded last), so that it is idle when the next proxy's turn
    begins and its CPU for the burst is whole."""
    last = tree_cpu_times(pid)
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_POLL_S)
        now = tree_cpu_times(pid)
        if now == last:
            return
        last = now


async def _burst(
    ws: ClientConnection, first: int, n: int, size: int, proxy_pid: int | None,
    upstream_pid: int, total: Transfer,
) -> None:  # fmt: skip
    """Ask for frames ``first`` .. ``first + n - 1`` and receive them; add the transfer's
    wall time (last frame in) and CPU (until the proxy has settled) to ``total``."""
    p0 = tree_cpu_times(proxy_pid) if proxy_pid else (0.0, 0.0)
    u0 = cpu_seconds(upstream_pid)
    m0 = machine_cpu()
    c0 = time.process_time()
    t0 = time.perf_counter()
    await ws.send(f"go {n}")
    nbytes = 0
    last = b""
    for _ in range(n):
        last = await ws.recv(decode=False)
        nbytes += len(last)
    t1 = time.perf_counter()
    c1 = time.process_time()
    if proxy_pid:
        await _settle(proxy_pid)
    m1 = machine_cpu()
    u1 = cpu_seconds(upstream_pid)
    p1 = tree_cpu_times(proxy_pid) if proxy_pid else (0.0, 0.0)
    expected_last = f'{{"op":0,"s":{first + n - 1},'.encode()
    if nbytes != n * size or not last.startswith(expected_last):
        raise RuntimeError(
            f"client got {nbytes} bytes ({n * size} expected), last frame {last[:40]!r}"
        )
    proxy_cpu = sum(p1) - sum(p0)
    total.wall_s += t1 - t0
    total.payload_bytes += nbytes
    if proxy_pid:
        total.proxy_user_s = (total.proxy_user_s or 0.0) + p1[0] - p0[0]
        total.proxy_sys_s = (total.proxy_sys_s or 0.0) + p1[1] - p0[1]
    total.client_cpu_s += c1 - c0
    total.upstream_cpu_s += u1 - u0
    total.other_cpu_s += (m1[0] - m0[0]) - (proxy_cpu + (c1 - c0) + (u1 - u0))
    total.steal_s += m1[1] - m0[1]
    total.bursts += 1
    total.burst_wall_s.append(t1 - t0)


async def _lockstep(
    ports: dict[str, int], pids: dict[str, int | None], upstream_pid: int, size: int,
    count: int, burst: int, rnd: int, placement: Placement | None,
) -> dict[str, Transfer]:  # fmt: skip
    """One connection through each proxy; ``count`` frames through each, in bursts of
    ``burst`` taken in turns (the order rotates every burst)."""
    totals = {kind: Transfer() for kind in ports}
    async with contextlib.AsyncExitStack() as stack:
        conns: dict[str, ClientConnection] = {}
        for kind, port in ports.items():
            url = f"ws://127.0.0.1:{port}{GATEWAY_PATH}"
            conns[kind] = await stack.enter_async_context(
                connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=30)
            )
        await asyncio.sleep(0.2)  # let the proxies finish opening their flows (archives)
        if placement is not None:  # again: threads and workers started since
            for pid in pids.values():
                if pid is not None:
                    placement.apply(pid)
        kinds = list(ports)
        sent = 0
        turn = rnd
        while sent < count:
            n = min(burst, count - sent)
            order = kinds[turn % len(kinds) :] + kinds[: turn % len(kinds)]
            for kind in order:
                await _burst(conns[kind], sent, n, size, pids[kind], upstream_pid, totals[kind])
            sent += n
            turn += 1
    return totals


def verify_archive(path: Path, count: int, size: int, bursts: int) -> tuple[int, int]:
    """The archive must hold one connection, the client's "go N" of every burst, every
    server frame in order with its op/s/t, and the close. Returns (server frames, client
    frames)."""
    server = client = 0
    conns = closes = 0
    payload = 0
    with ArchiveReader(path) as reader:
        for record in reader:
            if isinstance(record, FrameRecord):
                if record.direction is Direction.SERVER:
                    if record.s != server or record.op != 0 or record.t != "MESSAGE_CREATE":
                        raise RuntimeError(
                            f"{path}: server frame {server} recorded as op={record.op} "
                            f"s={record.s} t={record.t} flags={record.flags!r}"
                        )
                    server += 1
                    payload += len(record.payload)
                else:
                    client += 1
            elif isinstance(record, ConnectionRecord):
                conns += 1
            elif isinstance(record, CloseRecord):
                closes += 1
    if server != count or client != bursts or payload != count * size or conns != 1:
        raise RuntimeError(
            f"{path}: recorded {server} server frames ({count} sent), {client} client "
            f"frames ({bursts} sent), {payload} payload bytes ({count * size} sent), "
            f"{conns} connections, {closes} closes: the recording is incomplete"
        )
    if closes != 1:  # the close may race the SIGTERM: worth a word, not a failure
        print(f"  warning: {path.name}: {closes} close records (1 expected)", file=sys.stderr)
    return server, client


def run_round(
    upstream: Upstream, count: int, burst: int, workdir: Path, rnd: int, placement: Placement | None
) -> list[Run]:
    """Start every proxy afresh, run the lockstep transfer through all of them, then stop
    them and check each archive."""
    size = upstream.size
    proxies: dict[str, Proxy | None] = {}
    try:
        for kind in PROXIES:
            tag = f"{kind.replace(' ', '-').replace('+', '-')}-{size}-{rnd}"
            proxy = (
                None
                if kind == DIRECT
                else Proxy.start(kind, upstream.port, workdir, tag, placement)
            )
            proxies[kind] = proxy
        ports = {k: upstream.port if p is None else p.port for k, p in proxies.items()}
        pids = {k: None if p is None else p.proc.pid for k, p in proxies.items()}
        gc.collect()
        totals = asyncio.run(
            _lockstep(ports, pids, upstream.proc.pid, size, count, burst, rnd, placement)
        )
        runs: dict[str, Run] = {}
        for kind, t in totals.items():
            run = runs[kind] = Run(kind, size, count, rnd, **asdict(t))
            proxy = proxies[kind]
            if proxy is not None:
                # The proxy and its children (the addon's recorder worker): the sum of peaks.
                mems = [memory(pid) for pid in (proxy.proc.pid, *descendants(proxy.proc.pid))]
                run.vm_hwm = sum(m.get("VmHWM", 0) for m in mems)
                run.vm_rss = sum(m.get("VmRSS", 0) for m in mems)
    except BaseException:
        for kind, proxy in proxies.items():
            if proxy is not None:
                proxy.stop()
                print(f"--- {kind} log:\n{tail(proxy.log)}", file=sys.stderr)
        raise
    for kind, proxy in proxies.items():
        if proxy is None:
            continue
        run = runs[kind]
        run.proxy_exit = proxy.stop()
        if proxy.archive is not None:
            run.archive_bytes = proxy.archive.stat().st_size
            try:
                run.archive_server_frames, run.archive_client_frames = verify_archive(
                    proxy.archive, count, size, run.bursts
                )
            except Exception:
                print(f"--- {kind} log:\n{tail(proxy.log)}", file=sys.stderr)
                raise
            proxy.archive.unlink()
        proxy.log.unlink(missing_ok=True)
    return [runs[kind] for kind in PROXIES]


# --- report ----------------------------------------------------------------------------


@dataclass
class Summary:
    proxy: str
    size: int
    frames: int
    fps: float
    mbps: float
    cpu_us: float | None
    sys_us: float | None
    hwm_max: int | None
    other_load: float  # max over the rounds, in CPUs
    rounds: list[float] = field(default_factory=list)
    # Median over the rounds of (this proxy's frames/s / bare mitmdump's in the same round).
    vs_bare: float | None = None
    cpu_vs_bare: float | None = None


def _paired(mine: list[Run], bare: list[Run], value: str) -> float | None:
    """The median over rounds of mine/bare, each round's pair measured in lockstep."""
    by_round = {r.round: getattr(r, value) for r in bare}
    ratios = [
        getattr(r, value) / by_round[r.round]
        for r in mine
        if by_round.get(r.round) and getattr(r, value) is not None
    ]
    return statistics.median(ratios) if ratios else None


def summarize(runs: list[Run], kind: str, size: int) -> Summary | None:
    mine = [r for r in runs if r.proxy == kind and r.size == size]
    if not mine:
        return None
    bare = [r for r in runs if r.proxy == BARE and r.size == size]
    cpus = [r.cpu_us_per_frame for r in mine if r.cpu_us_per_frame is not None]
    sys_cpus = [r.sys_us_per_frame for r in mine if r.sys_us_per_frame is not None]
    hwms = [r.vm_hwm for r in mine if r.vm_hwm is not None]
    return Summary(
        proxy=kind,
        size=size,
        frames=mine[0].frames,
        fps=statistics.median(r.fps for r in mine),
        mbps=statistics.median(r.mbps for r in mine),
        cpu_us=statistics.median(cpus) if cpus else None,
        sys_us=statistics.median(sys_cpus) if sys_cpus else None,
        hwm_max=max(hwms) if hwms else None,
        other_load=max(r.other_load for r in mine),
        rounds=[round(r.fps, 1) for r in mine],
        vs_bare=_paired(mine, bare, "fps"),
        cpu_vs_bare=_paired(mine, bare, "cpu_us_per_frame"),
    )


def _size_label(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1e6:g} MB"
    if size >= 1000:
        return f"{size / 1e3:g} KB"
    return f"{size} B"


@dataclass
class Target:
    name: str
    value: float | None
    bound: str
    ok: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else ("PASS" if self.ok else "FAIL")


def print_size_table(summaries: dict[str, Summary], size: int, rounds: int) -> None:
    head = ("proxy", "frames/s", "MB/s", "CPU µs/frame", "(sys)", "frames/s vs bare",
            "CPU vs bare", "peak RSS", "rounds (frames/s)")  # fmt: skip
    cells = []
    for kind in PROXIES:
        s = summaries.get(kind)
        if s is None:
            continue
        ratio = "-" if s.vs_bare is None else f"{s.vs_bare:.3f}"
        cpu_ratio = "-" if s.cpu_vs_bare is None else f"{s.cpu_vs_bare:.3f}"
        cells.append((
            kind,
            f"{s.fps:,.0f}",
            f"{s.mbps:,.1f}",
            "-" if s.cpu_us is None else f"{s.cpu_us:,.1f}",
            "-" if s.sys_us is None else f"{s.sys_us:,.1f}",
            ratio,
            cpu_ratio,
            "-" if s.hwm_max is None else f"{s.hwm_max / MiB:,.1f} MiB",
            " ".join(f"{x:,.0f}" for x in s.rounds),
        ))  # fmt: skip
    frames = next(iter(summaries.values())).frames
    print(f"\n{_size_label(size)} frames x {frames:,} (median of {rounds} rounds; 'vs bare' = "
          f"median of each round's ratio; CPU = the proxy and its children, utime+stime; "
          f"peak RSS = VmHWM, max over rounds)")  # fmt: skip
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*head))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line.format(*c))
    other = max(s.other_load for s in summaries.values())
    print(f"other processes on the machine kept up to {other:.2f} CPUs busy during these runs")


def targets_for(by_size: dict[int, dict[str, Summary]]) -> list[Target]:
    out: list[Target] = []
    for size, summaries in by_size.items():
        label = _size_label(size)
        for kind, bound, check in (
            (ADDON_RUN, f">= {ADDON_TARGET:.2f}", lambda r: r >= ADDON_TARGET),
            (RECORD, f"> {RECORD_TARGET:.2f}", lambda r: r > RECORD_TARGET),
        ):
            s = summaries.get(kind)
            ratio = s.vs_bare if s else None
            out.append(
                Target(
                    f"{label}: {kind} frames/s / bare mitmdump",
                    ratio,
                    bound,
                    None if ratio is None else check(ratio),
                )
            )
        if size == RSS_SIZE:
            for kind in RECORDING:
                s = summaries.get(kind)
                hwm = s.hwm_max if s else None
                out.append(
                    Target(
                        f"{label}: {kind} peak RSS (MiB)",
                        None if hwm is None else hwm / MiB,
                        f"< {RSS_LIMIT / MiB:.0f}",
                        None if hwm is None else hwm < RSS_LIMIT,
                    )
                )
    return out


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every frame count")
    ap.add_argument("--quick", action="store_true", help=f"--scale {QUICK_SCALE}, 1 round")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; --quick 1)")
    ap.add_argument(
        "--sizes",
        default=",".join(str(s) for s, _, _ in SIZES),
        help="comma-separated frame sizes in bytes among the defaults",
    )
    ap.add_argument(
        "--burst", type=int, default=None, help="frames per turn (default: per frame size)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also save the results here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    ap.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the proxy on the first CPU, everything else on the others (default: on)",
    )
    ap.add_argument("--upstream", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.burst is not None and args.burst < 1:
        ap.error("--burst: at least 1 frame per turn")

    if args.upstream:
        serve_upstream(args.upstream)
        return 0

    placement = Placement.choose(args.pin)
    if placement is not None:
        os.sched_setaffinity(0, placement.others)  # the client, and the upstream it starts
    scale = QUICK_SCALE if args.quick and args.scale == 1.0 else args.scale
    rounds = args.rounds or (1 if args.quick else 3)
    wanted = {int(s) for s in args.sizes.split(",") if s.strip()}
    known = {size for size, _, _ in SIZES}
    if not wanted <= known:
        ap.error(f"--sizes: choose among {sorted(known)}")
    plan = [
        (size, n, min(n, args.burst or max(1, round(burst * min(1.0, scale * 4)))))
        for size, n, burst in ((s, max(1, round(n * scale)), b) for s, n, b in SIZES)
        if size in wanted
    ]

    print(
        f"record bench: {', '.join(f'{_size_label(s)} x {n:,}' for s, n, _ in plan)}; "
        f"{rounds} round(s), the proxies take turns in bursts of "
        f"{', '.join(f'{b:,}' for _, _, b in plan)} frames\n"
        f"python {platform.python_version()}, websockets {websockets.__version__}, "
        f"mitmproxy {_mitmproxy_version()}, {platform.platform()}, {os.cpu_count()} CPUs\n"
        + (
            "placement: the scheduler's (--no-pin)"
            if placement is None
            else f"placement: each proxy on CPU {_cpus(placement.proxy)}; the client, the "
            f"upstream and the recorder worker on CPU {_cpus(placement.others)}"
        ),
        flush=True,
    )
    idle = machine_load(1.0)
    if idle > BUSY_WARN:
        print(f"WARNING: the machine is busy before the start ({idle:.2f} CPUs in use)")
    workdir = Path(tempfile.mkdtemp(prefix="record-bench-"))
    runs: list[Run] = []
    try:
        for size, count, burst in plan:
            upstream = Upstream.start(size)
            try:
                for rnd in range(rounds):
                    for run in run_round(upstream, count, burst, workdir, rnd, placement):
                        runs.append(run)
                        cpu = run.cpu_us_per_frame
                        print(
                            f"  {_size_label(size):>6} round {rnd + 1}/{rounds} {run.proxy:<16} "
                            f"{run.fps:>10,.0f} frames/s {run.mbps:>8,.1f} MB/s"
                            + ("" if cpu is None else f"  proxy CPU {cpu:,.1f} µs/frame")
                            + ("" if run.vm_hwm is None else f"  VmHWM {run.vm_hwm / MiB:,.1f} MiB")
                            + (
                                ""
                                if run.archive_server_frames is None
                                else f"  archive ok ({run.archive_server_frames:,} frames)"
                            )
                            + (
                                f"  [other load {run.other_load:.2f} CPUs]"
                                if run.other_load > BUSY_WARN
                                else ""
                            ),
                            flush=True,
                        )
            finally:
                upstream.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    by_size: dict[int, dict[str, Summary]] = {}
    for size, _, _ in plan:
        by_size[size] = {}
        for kind in PROXIES:
            s = summarize(runs, kind, size)
            if s is not None:
                by_size[size][kind] = s
        print_size_table(by_size[size], size, rounds)

    targets = targets_for(by_size)
    busiest = max((r.other_load for r in runs), default=0.0)
    if busiest > BUSY_WARN:
        print(
            f"\nWARNING: other processes kept up to {busiest:.2f} CPUs busy during the runs "
            f"(this machine has {os.cpu_count()}): the numbers below are unreliable"
        )
    print("\ntargets")
    width = max(len(t.name) for t in targets)
    for t in targets:
        value = "-" if t.value is None else f"{t.value:.3f}"
        print(f"  {t.name:<{width}}  {value:>9}  {t.bound:>7}  {t.verdict}")
    failed = [t.name for t in targets if t.ok is False]
    print("\nall targets met" if not failed else f"\nFAILED: {'; '.join(failed)}")

    if args.json is not None:
        result = {
            "scale": scale,
            "rounds": rounds,
            "plan": [{"size": s, "frames": n, "burst": b} for s, n, b in plan],
            "python": platform.python_version(),
            "websockets": websockets.__version__,
            "mitmproxy": _mitmproxy_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "runs": [r.as_dict() for r in runs],
            "summary": {
                str(size): {kind: asdict(s) for kind, s in summaries.items()}
                for size, summaries in by_size.items()
            },
            "targets": [asdict(t) | {"verdict": t.verdict} for t in targets],
            "failed": failed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results saved to {args.json}")
    return 1 if (args.check and failed) else 0


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def _mitmproxy_version() -> str:
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        return version("mitmproxy")
    return "?"


if __name__ == "__main__":
    sys.exit(main())
