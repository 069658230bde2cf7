"""Start-up on a big archive: ``replay`` until ``/gateway/bot`` answers, ``inspect --stats``
and ``verify``, each against one bare ``msgpack.Unpacker`` pass over the same file.

Every measurement is a fresh process timed from spawn to the end (for ``replay``: to the
first answer of ``GET /api/v10/gateway/bot``), the bare pass included: a
``python -c`` that iterates ``msgpack.Unpacker(file, read_size=1 MiB, raw=False)`` over
the whole file, so both sides pay for starting an interpreter (the baseline's imports are
msgpack's alone; ours are replayer's CLI). The file is read once first so that every run
finds it in the page cache. Rounds: each runs the commands in a rotating order, each
between two bare passes (bare, replay, bare, inspect, bare, verify, bare); a command's
ratio is its time over the mean of the two bare passes around it, and the median of the
rounds' ratios is reported. The machine's
speed drifts and other sessions load it, so only ratios taken within one round mean much.

Target (issue #19): each of the three within 2x the bare pass.

Usage::

    .venv/bin/python bench/startup_bench.py                    # synth 1 GiB in $TMPDIR, 5 rounds
    .venv/bin/python bench/startup_bench.py --archive big.rpl  # an archive you have
    .venv/bin/python bench/startup_bench.py --pure-python      # also without the C accelerator
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from _proc import stop, venv_tool  # bench/_proc.py

START_TIMEOUT_S = 600.0
TARGET = 2.0
BARE = "bare Unpacker"
COMMANDS = ("replay", "inspect --stats", "verify")
REST_RE = re.compile(r"REST base:\s+(http://\S+)")
BARE_CODE = """
import sys, time, msgpack
t0 = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    for _ in msgpack.Unpacker(f, read_size=1 << 20, raw=False, max_buffer_size=256 << 20,
                              strict_map_key=False):
        pass
print(time.perf_counter() - t0)
"""
IN_PROCESS = "bare Unpacker loop alone (in its process)"


def env(pure: bool) -> dict[str, str]:
    e = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200", NO_COLOR="1")
    if pure:
        e["REPLAYER_PURE_PYTHON"] = "1"
    else:
        e.pop("REPLAYER_PURE_PYTHON", None)
    return e


def run_bare(archive: Path, loops: list[float]) -> float:
    """The whole bare process's seconds; the loop's own go to ``loops``."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", BARE_CODE, str(archive)], check=True, capture_output=True
    )
    seconds = time.perf_counter() - t0
    loops.append(float(out.stdout))
    return seconds


def run_command(name: str, archive: Path, pure: bool) -> float:
    """Seconds from spawn to the end (inspect, verify) or to the first REST answer."""
    if name == "replay":
        return run_replay(archive, pure)
    cmd = [venv_tool("replayer"), *name.split(), str(archive)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env(pure))
    return time.perf_counter() - t0


def run_replay(archive: Path, pure: bool) -> float:
    cmd = [venv_tool("replayer"), "replay", str(archive), "--port", "0", "--host", "127.0.0.1"]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env(pure)
        )
        try:
            base = None
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and proc.poll() is None:
                if base is None:
                    log.seek(0)
                    match = REST_RE.search(log.read().decode(errors="replace"))
                    if match is None:
                        time.sleep(0.005)
                        continue
                    base = match.group(1)
                request = urllib.request.Request(
                    f"{base}/gateway/bot", headers={"Authorization": "Bot bench"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        response.read()
                except urllib.error.HTTPError:
                    pass  # an answer all the same
                except OSError:
                    time.sleep(0.005)
                    continue
                return time.perf_counter() - t0
            log.seek(0)
            raise RuntimeError(f"replay did not answer: {log.read()[-2000:]!r}")
        finally:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", type=Path, help="an archive to use (else one is synthesized)")
    ap.add_argument("--size", default="1G", help="synth --size of the archive made (1G)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--keep", action="store_true", help="keep the synthesized archive")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pure-python", action="store_true", help="also REPLAYER_PURE_PYTHON=1")
    ap.add_argument("--json", type=Path, help="also save every time here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = ap.parse_args(argv)

    made = None
    archive = args.archive
    if archive is None:
        made = archive = args.dir / f"startup-bench-{os.getpid()}.rpl"
        print(f"making {archive}: replayer synth --size {args.size} ...", flush=True)
        t0 = time.perf_counter()
        subprocess.run(
            [venv_tool("replayer"), "synth", "--size", args.size, "-o", str(archive)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"  made in {time.perf_counter() - t0:.1f} s", flush=True)
    try:
        return measure(archive, args)
    finally:
        if made is not None and not args.keep:
            made.unlink(missing_ok=True)


def measure(archive: Path, args: argparse.Namespace) -> int:
    size = archive.stat().st_size
    with open(archive, "rb") as f:  # into the page cache
        while f.read(16 << 20):
            pass
    configs = [(c, False) for c in COMMANDS]
    if args.pure_python:
        configs += [(c, True) for c in COMMANDS]
    label = {cfg: cfg[0] + (" (pure Python)" if cfg[1] else "") for cfg in configs}
    times: dict[str, list[float]] = {BARE: [], IN_PROCESS: []}
    ratios: dict[str, list[float]] = {}
    for cfg in configs:
        times[label[cfg]] = []
        ratios[label[cfg]] = []
    print(f"{archive}: {size / (1 << 30):.2f} GiB, {args.rounds} rounds", flush=True)
    for r in range(args.rounds):
        order = configs[r % len(configs) :] + configs[: r % len(configs)]
        # bare, cmd, bare, cmd, ..., bare: each command between two bare passes, its
        # ratio to their mean (the machine's speed drifts within a round).
        bares = [run_bare(archive, times[IN_PROCESS])]
        line = [f"round {r + 1}: bare {bares[0]:.2f}"]
        for cfg in order:
            seconds = run_command(cfg[0], archive, cfg[1])
            bares.append(run_bare(archive, times[IN_PROCESS]))
            bare = (bares[-2] + bares[-1]) / 2
            times[label[cfg]].append(seconds)
            ratios[label[cfg]].append(seconds / bare)
            line.append(
                f"{label[cfg]} {seconds:.2f} s ({seconds / bare:.2f}x), bare {bares[-1]:.2f}"
            )
        times[BARE] += bares
        print("  " + ", ".join(line), flush=True)

    print()
    print("| measurement | median s | ratio to the bare pass (median round) | rounds | target |")
    print("|---|---:|---:|---|---|")
    print(f"| {BARE} (python -c, whole process) | {statistics.median(times[BARE]):.2f} | 1 | | |")
    print(f"| {IN_PROCESS} | {statistics.median(times[IN_PROCESS]):.2f} | | | |")
    failed = False
    for cfg in configs:
        name = label[cfg]
        ratio = statistics.median(ratios[name])
        ok = ratio <= TARGET
        failed |= not ok and not cfg[1]
        target = "" if cfg[1] else f"<= {TARGET} {'ok' if ok else 'FAIL'}"
        spread = " ".join(f"{x:.2f}" for x in ratios[name])
        print(
            f"| {name} | {statistics.median(times[name]):.2f} | **{ratio:.2f}x** | {spread} "
            f"| {target} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"archive_bytes": size, "times": times, "ratios": ratios}))
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
