"""Recorder latency: the time each message spends in the proxy, for ``replayer record``, the
mitmdump addon (``mitmdump -s addons/gateway_recorder.py``) and bare mitmdump.

An upstream ``websockets`` server (a child process, 127.0.0.1) and a ``websockets`` client
(this process) talk through each proxy. Every message carries the ``time.monotonic_ns()``
(CLOCK_MONOTONIC, one clock for every process of the machine) at which its sender handed
it to ``send``; its receiver takes the clock again when ``recv`` returns it. So a latency
is client send -> upstream receive (``c->s``; the upstream keeps them and reports them
at the end) or upstream send -> client receive (``s->c``): the proxy's time plus two
loopback hops and the two ends' own websocket work, the same for every proxy. Messages
are gateway-shaped JSON of exactly 100 B or 10 KB (``{"op":0,"s":..,"t":"MESSAGE_CREATE",
"d":{"ts":..,"pad":".."}}`` from the upstream, ``{"op":1,...}`` from the client), sent at
50 messages/s (paced by the clock) and at saturation (back to back, as fast as the sender's
``send`` returns: then latency is mostly the queue in front of the slowest stage).

Lockstep: the three proxies stay up for the whole run, one connection through each; every
configuration (direction, size, rate) runs through each proxy in turn, in an order that
rotates every round, so each ratio compares proxies measured seconds apart. A round's
figures per proxy are its messages' p50, p99 and max; the reported figure is the median
over rounds, and the ratio is ours over bare mitmdump's in the same round (median of
rounds). The machine is shared with other work: look at the spread.

Usage::

    .venv/bin/python bench/recorder_bench.py                 # 3 rounds, ~6 min
    .venv/bin/python bench/recorder_bench.py --quick         # 1 round, fewer messages
    .venv/bin/python bench/recorder_bench.py --json /tmp/recorder-bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _proc import stop  # bench/_proc.py
from record_bench import ADDON_RUN, BARE, GATEWAY_PATH, RECORD, Proxy  # bench/record_bench.py
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord

PROXIES = (BARE, ADDON_RUN, RECORD)
SIZES = (100, 10_000)
PACED_RATE = 50.0  # messages/s
# Messages per (configuration, proxy, round): paced (at 50/s: 4 s), saturated.
COUNTS = {("paced", 100): 200, ("paced", 10_000): 200, ("sat", 100): 3000, ("sat", 10_000): 600}
QUICK_COUNTS = {k: max(v // 4, 20) for k, v in COUNTS.items()}
START_TIMEOUT_S = 60.0


def message(kind: bytes, seq: int, size: int) -> bytes:
    """A gateway-shaped JSON message of exactly ``size`` bytes, stamped now."""
    if kind == b"s":
        head = b'{"op":0,"s":%d,"t":"MESSAGE_CREATE","d":{"ts":%d,"pad":"' % (
            seq,
            time.monotonic_ns(),
        )
        tail = b'"}}'
    else:
        head = b'{"op":1,"d":%d,"ts":%d,"pad":"' % (seq, time.monotonic_ns())
        tail = b'"}'
    pad = size - len(head) - len(tail)
    if pad < 0:
        raise ValueError(f"message size {size} is too small")
    return head + b"x" * pad + tail


def stamp(data: bytes) -> int:
    """The ``ts`` of a message."""
    start = data.index(b'"ts":') + 5
    return int(data[start : data.index(b",", start)])


# --- the upstream (a child process: `recorder_bench.py --upstream`) ----------------------


def serve_upstream() -> None:
    """Per connection: receive the client's messages, noting each one's latency; answer
    control messages: ``{"op":99,"send":N,"size":S,"rate":R}`` sends N messages (R per
    second, 0: back to back), ``{"op":99,"report":true}`` sends the latencies noted (ns, a
    JSON list) and forgets them. Prints its port."""

    async def send(ws: ServerConnection, n: int, size: int, rate: float) -> None:
        t0 = time.monotonic()
        for i in range(n):
            if rate:
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(message(b"s", i, size), text=True)

    async def handler(ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path != GATEWAY_PATH:
            await ws.close(4000, "unexpected path")
            return
        latencies: list[int] = []
        sending: set[asyncio.Task[None]] = set()
        async for data in ws:
            now = time.monotonic_ns()
            raw = data.encode() if isinstance(data, str) else data
            if raw.startswith(b'{"op":1,'):
                latencies.append(now - stamp(raw))
                continue
            control = json.loads(raw)
            if "send" in control:
                task = asyncio.create_task(
                    send(ws, control["send"], control["size"], control["rate"])
                )
                sending.add(task)
                task.add_done_callback(sending.discard)
            elif control.get("report"):
                await ws.send(json.dumps({"op": 98, "latencies": latencies}), text=True)
                latencies = []

    async def main() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        async with serve(
            handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None
        ) as server:
            print(next(iter(server.sockets)).getsockname()[1], flush=True)
            await done.wait()

    asyncio.run(main())


# --- the client --------------------------------------------------------------------------


async def server_to_client(ws: ClientConnection, n: int, size: int, rate: float) -> list[int]:
    await ws.send(json.dumps({"op": 99, "send": n, "size": size, "rate": rate}))
    latencies = []
    for i in range(n):
        data = await ws.recv(decode=False)
        now = time.monotonic_ns()
        if len(data) != size or not data.startswith(b'{"op":0,"s":%d,' % i):
            raise RuntimeError(f"message {i}: got {data[:40]!r} ({len(data)} B)")
        latencies.append(now - stamp(data))
    return latencies


async def client_to_server(ws: ClientConnection, n: int, size: int, rate: float) -> list[int]:
    t0 = time.monotonic()
    for i in range(n):
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await ws.send(message(b"c", i, size), text=True)
    await ws.send(json.dumps({"op": 99, "report": True}))
    report = json.loads(await ws.recv(decode=False))
    latencies: list[int] = report["latencies"]
    if len(latencies) != n:
        raise RuntimeError(f"the upstream got {len(latencies)} of {n} messages")
    return latencies


@dataclass
class Figures:
    p50_us: float
    p99_us: float
    max_us: float

    @classmethod
    def of(cls, latencies_ns: list[int]) -> Figures:
        ordered = sorted(latencies_ns)
        n = len(ordered)
        return cls(
            ordered[n // 2] / 1e3, ordered[min(n - 1, (99 * n) // 100)] / 1e3, ordered[-1] / 1e3
        )


Config = tuple[str, str, int]  # direction ("c->s" / "s->c"), "paced" / "sat", size


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    counts = QUICK_COUNTS if args.quick else COUNTS
    upstream = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--upstream"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    proxies: dict[str, Proxy] = {}
    results: dict[str, Any] = {"rounds": []}
    messages = 0
    try:
        assert upstream.stdout is not None
        port = int(upstream.stdout.readline())
        for kind in PROXIES:
            proxies[kind] = Proxy.start(kind, port, workdir, kind.replace(" ", "-"), None)
        async with contextlib.AsyncExitStack() as stack:
            conns: dict[str, ClientConnection] = {}
            for kind, proxy in proxies.items():
                url = f"ws://127.0.0.1:{proxy.port}{GATEWAY_PATH}"
                conns[kind] = await stack.enter_async_context(
                    connect(url, compression=None, max_size=None, ping_interval=None)
                )
            # Warm-up: each path once, small. Messages through each proxy, both ways:
            # s->c is n + 1 control, c->s n + 2 (control and report).
            messages = 2 * 50 + 3
            for ws in conns.values():
                await server_to_client(ws, 50, 100, 0)
                await client_to_server(ws, 50, 100, 0)
            configs: list[Config] = [
                (direction, mode, size)
                for mode in ("paced", "sat")
                for size in SIZES
                for direction in ("c->s", "s->c")
            ]
            for r in range(args.rounds):
                round_result: dict[str, dict[str, Any]] = {}
                for config in configs:
                    direction, mode, size = config
                    n = counts[(mode, size)]
                    rate = PACED_RATE if mode == "paced" else 0.0
                    order = list(PROXIES[r % 3 :] + PROXIES[: r % 3])
                    if configs.index(config) % 2:
                        order.reverse()
                    key = f"{direction} {mode} {size}"
                    messages += n + (1 if direction == "s->c" else 2)
                    round_result[key] = {}
                    for kind in order:
                        measure = server_to_client if direction == "s->c" else client_to_server
                        latencies = await measure(conns[kind], n, size, rate)
                        round_result[key][kind] = Figures.of(latencies).__dict__
                results["rounds"].append(round_result)
                print(f"round {r + 1} of {args.rounds} done", flush=True)
    finally:
        codes = {kind: proxy.stop() for kind, proxy in proxies.items()}
        stop(upstream)
    for kind, proxy in proxies.items():
        if proxy.archive is not None:
            with ArchiveReader(proxy.archive) as reader:
                frames = sum(isinstance(r, FrameRecord) for r in reader)
            results.setdefault("recorded_frames", {})[kind] = frames
    results["exit_codes"] = codes
    results["messages"] = messages
    for kind, frames in results.get("recorded_frames", {}).items():
        if frames != messages:
            raise RuntimeError(f"{kind} recorded {frames} frames of the {messages} through it")
    return results


def report(results: dict[str, Any]) -> None:
    rounds = results["rounds"]
    print()
    print(
        "| direction, rate, size | proxy | p50 µs | p99 µs | max µs "
        "| p50 / bare | p99 / bare | p50 by round |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for key in rounds[0]:
        for kind in PROXIES:
            figs = [rnd[key][kind] for rnd in rounds]
            bare = [rnd[key][BARE] for rnd in rounds]

            def med(field: str, figs: list[dict[str, float]] = figs) -> float:
                return statistics.median(f[field] for f in figs)

            if kind == BARE:
                r50 = r99 = "1"
            else:
                p50s = [f["p50_us"] / b["p50_us"] for f, b in zip(figs, bare, strict=True)]
                p99s = [f["p99_us"] / b["p99_us"] for f, b in zip(figs, bare, strict=True)]
                r50 = f"**{statistics.median(p50s):.2f}**"
                r99 = f"{statistics.median(p99s):.2f}"
            spread = " ".join(f"{f['p50_us']:.0f}" for f in figs)
            direction, mode, size = key.split()
            label = f"{direction}, {'50/s' if mode == 'paced' else 'saturated'}, {size} B"
            print(
                f"| {label} | {kind} | {med('p50_us'):,.0f} | {med('p99_us'):,.0f} "
                f"| {med('max_us'):,.0f} | {r50} | {r99} | {spread} |"
            )
    if "recorded_frames" in results:
        print(
            f"\nframes recorded: {results['recorded_frames']}, every message through each "
            f"({results['messages']}, controls included); exit codes {results['exit_codes']}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="a quarter of the messages, 1 round")
    ap.add_argument("--json", type=Path, help="also save every round's figures here")
    ap.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.upstream:
        serve_upstream()
        return 0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="recorder-bench-") as tmp:
        t0 = time.perf_counter()
        results = asyncio.run(run(args, Path(tmp)))
        print(f"({time.perf_counter() - t0:.0f} s)")
    report(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
