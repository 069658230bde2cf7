"""Process measurements shared by the benchmarks: CPU time and peak memory of a child
process from /proc, locating console scripts, stopping what we started."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

STOP_TIMEOUT_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid`` (children, theirs, ...) that are alive now."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            out += [child, *descendants(child)]
    return out


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Restrict every thread of ``pid`` to ``cpus`` (threads it starts later inherit it)."""
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        threads = [pid]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue


def tree_cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process and of its live descendants (e.g. a recorder worker)."""
    user = system = 0.0
    for each in (pid, *descendants(pid)):
        try:
            u, s = cpu_times(each)
        except FileNotFoundError:
            continue
        user, system = user + u, system + s
    return user, system


def memory(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process, in bytes."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
    return out


def venv_tool(name: str) -> str:
    """A console script of this Python's environment (mitmdump, replayer)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM a process we started (proxies close their archive on it), then SIGKILL
    if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def serve_bare_until_signalled(handler: Any, *banner: str) -> None:
    """Run a bare ``websockets`` server of ``handler`` on 127.0.0.1:0 (no compression, no
    size limit, no pings) until SIGTERM or SIGINT: the baseline the benchmarks measure the
    replay against. Prints ``banner``, then the gateway URL their harness reads."""
    import asyncio
    import signal

    from websockets.asyncio.server import serve

    async def main() -> None:
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_event.set)
        async with serve(
            handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            for line in banner:
                print(line, flush=True)
            print(f"gateway URL: ws://127.0.0.1:{port}/", flush=True)
            await stop_event.wait()

    asyncio.run(main())
