"""``replayer synth`` speed: MB/s of archive written, against a bare msgpack Packer writing
the same records.

Ours: ``write_synth(path, SynthOptions(target_bytes=...))`` -- the session simulated, its
payloads encoded, redacted and written by ``ArchiveWriter``: all of what ``replayer synth
--size`` does but the progress bar. Bare: the records that call makes (generated before,
not timed), each ``to_row`` + ``Packer(use_bin_type=True).pack`` into a buffered file
(1 MiB). Both write the same number of bytes (the bare file has no redaction to do and no
header metadata; its size is printed). Rounds alternate which side goes first; the median
round's ratio is printed. Target (issue #19): synth >= 50 MB/s.

Usage::

    .venv/bin/python bench/synth_bench.py                # 100 MB of payload, 3 rounds
    .venv/bin/python bench/synth_bench.py --size 300MB --rounds 5
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgpack

from replayer.archive.records import to_row
from replayer.synth import SynthOptions, parse_size, synth_records, write_synth

TARGET_MB_S = 50.0
MB = 1e6


def run_synth(path: Path, options: SynthOptions) -> tuple[float, int]:
    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    write_synth(path, options)
    seconds = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return seconds, size


def run_bare(path: Path, rows: list[object]) -> tuple[float, int]:
    path.unlink(missing_ok=True)
    packer = msgpack.Packer(use_bin_type=True)
    t0 = time.perf_counter()
    with open(path, "wb", buffering=1 << 20) as f:
        pack, write = packer.pack, f.write
        for row in rows:
            write(pack(row))
    seconds = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return seconds, size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100MB", help="synth --size (payload bytes), 100MB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--check", action="store_true", help="exit 1 when the target fails")
    args = ap.parse_args(argv)
    options = SynthOptions(target_bytes=parse_size(args.size), seed=args.seed)
    print(f"generating the records of synth --size {args.size} for the bare side ...", flush=True)
    rows = [to_row(r) for r in synth_records(options)]
    # The bare side's records stay in memory: out of the collector's way, so that they do
    # not make every full collection during synth's run longer (it was 1.5-2x slower so).
    gc.collect()
    gc.freeze()
    ours_path = args.dir / f"synth-bench-{os.getpid()}.rpl"
    bare_path = args.dir / f"synth-bench-{os.getpid()}.bare"
    ratios, ours_rates, bare_rates = [], [], []
    for r in range(args.rounds):
        if r % 2:
            bare = run_bare(bare_path, rows)
            ours = run_synth(ours_path, options)
        else:
            ours = run_synth(ours_path, options)
            bare = run_bare(bare_path, rows)
        ours_rate, bare_rate = ours[1] / ours[0] / MB, bare[1] / bare[0] / MB
        ours_rates.append(ours_rate)
        bare_rates.append(bare_rate)
        ratios.append(ours_rate / bare_rate)
        print(
            f"  round {r + 1}: synth {ours[0]:.2f} s for {ours[1] / MB:.1f} MB "
            f"({ours_rate:.1f} MB/s), bare Packer {bare[0]:.2f} s for {bare[1] / MB:.1f} MB "
            f"({bare_rate:.1f} MB/s), ratio {ours_rate / bare_rate:.3f}",
            flush=True,
        )
    median = sorted(range(args.rounds), key=lambda i: ratios[i])[args.rounds // 2]
    rate = ours_rates[median]
    ok = rate >= TARGET_MB_S
    print()
    print("| | MB/s (median round) | ratio to bare | rounds |")
    print("|---|---:|---:|---|")
    spread = " ".join(f"{x:.1f}" for x in ours_rates)
    print(
        f"| synth | **{rate:.1f}** | {ratios[median]:.3f} | {spread} | "
        f"target >= {TARGET_MB_S:.0f} MB/s {'ok' if ok else 'FAIL'}"
    )
    print(f"| bare Packer | {bare_rates[median]:.1f} | 1 | {statistics.median(bare_rates):.1f} |")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
