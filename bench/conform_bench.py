"""Wall time of the whole conformance suite for discord.py with ``-j 2``, per group.

One run of every case of the catalogue through the runner (``run_suite``: a ReplayServer
and the discord.py adapter process per case, two cases at once), as ``replayer conform
--client discord.py -j 2`` runs it. Printed: per group, the cases, their results, the
wall time the group spanned (first start to last end: groups overlap by a case or so at
their edges) and the sum of its cases' durations; then the whole run's wall time.

Target: the whole suite in under 5 minutes on a 2-core machine.

Usage::

    .venv/bin/python bench/conform_bench.py                      # ~1-2 min
    .venv/bin/python bench/conform_bench.py -j 4 --client hikari
    .venv/bin/python bench/conform_bench.py --check --json /tmp/conform-bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from replayer.cli.conform import make_client
from replayer.conform.catalogue import CATALOGUE, GROUPS
from replayer.conform.runner import run_suite

TARGET_S = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", default="discord.py")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument(
        "--report-dir", type=Path, help="keep the report here (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--check", action="store_true", help=f"exit 1 over {TARGET_S:g} s")
    args = parser.parse_args()
    client = make_client(args.client, None, None)
    ends: dict[str, float] = {}
    started = time.monotonic()

    def ended(case: dict[str, Any]) -> None:
        ends[case["id"]] = time.monotonic() - started
        print(f"  {case['id']:>5} {case['result']:<10} {case['duration_ms'] / 1000:5.1f} s  "
              f"{case['title']}", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="conform-bench-") as tmp:
        report_dir = args.report_dir or Path(tmp)
        print(f"{len(CATALOGUE)} cases, {client.agent}, -j {args.jobs}", flush=True)
        report = asyncio.run(
            run_suite(CATALOGUE, client, report_dir, jobs=args.jobs, on_case=ended)
        )
    wall_s = time.monotonic() - started
    rows = []
    print(f"\n{'group':<28} {'cases':>5} {'span s':>7} {'sum s':>7}  results")
    for group, title in GROUPS.items():
        cases = [c for c in report["cases"] if c["group"] == group]
        if not cases:
            continue
        span_start = min(ends[c["id"]] - c["duration_ms"] / 1000 for c in cases)
        span_s = max(ends[c["id"]] for c in cases) - span_start
        sum_s = sum(c["duration_ms"] for c in cases) / 1000
        results = Counter(c["result"] for c in cases)
        shown = ", ".join(f"{n} {r}" for r, n in sorted(results.items()))
        print(f"{group:>2} {title:<25} {len(cases):>5} {span_s:7.1f} {sum_s:7.1f}  {shown}")
        rows.append({"group": group, "title": title, "cases": len(cases), "span_s": span_s,
                     "sum_s": sum_s, "results": dict(results)})  # fmt: skip
    ok = wall_s < TARGET_S
    verdict = "met" if ok else "MISSED"
    print(f"\nwhole suite: {wall_s:.1f} s wall (target < {TARGET_S:g} s: {verdict}); "
          f"{report['summary']}")  # fmt: skip
    if args.json is not None:
        figures = {"agent": report["agent"], "jobs": args.jobs, "wall_s": wall_s,
                   "target_s": TARGET_S, "groups": rows, "summary": report["summary"]}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
