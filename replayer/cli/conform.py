"""``replayer conform``: the conformance suite (docs/conformance.md) — the catalogue
(``--list``), a client run against every case, the report directory and the summary."""

from __future__ import annotations

import inspect
import shlex
import shutil
import signal
import sys
import textwrap
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from replayer import __version__
from replayer.cli.output import duration_ns, err, fail, out
from replayer.cli.replay import FAULT_HELP, _prepare, conclude, replay_options
from replayer.cli.root import app
from replayer.conform.catalogue import CATALOGUE, Case, select
from replayer.conform.reports import merge_reports, write_merged, write_reports
from replayer.conform.runner import RESULTS, Client, failed

# The shipped clients: --client NAME -> (module run with python -m, distribution).
ADAPTERS = {
    "discord.py": ("replayer.conform.adapters.discordpy", "discord.py"),
    "hikari": ("replayer.conform.adapters.hikari", "hikari"),
    "reference": ("replayer.conform.reference_client", None),
}
LIST_WIDTH = 80
_STYLE = {"PASS": "green", "NON-STRICT": "yellow", "FAIL": "red", "NOT FIRED": "magenta",
          "INFO": "blue", "MISSING": "dim"}  # fmt: skip


def make_client(name: str | None, command: str | None, agent: str | None) -> Client:
    """The client of a run from ``--client`` or ``--client-cmd`` (exactly one)."""
    if (name is None) == (command is None):
        fail("give one of --client (discord.py, hikari, reference) or --client-cmd 'CMD'")
    if command is not None:
        try:
            argv = tuple(shlex.split(command))
        except ValueError as exc:
            fail(f"--client-cmd: {command!r} cannot be split into words: {exc}")
        if not argv:
            fail("--client-cmd: the command is empty")
        if shutil.which(argv[0]) is None:
            fail(f"--client-cmd: {argv[0]}: no such command (or not executable)")
        return Client("command", argv[0], argv, agent or command)
    assert name is not None
    if name not in ADAPTERS:
        fail(f"--client: {name!r} is not one of {', '.join(ADAPTERS)} (or use --client-cmd)")
    module, distribution = ADAPTERS[name]
    if distribution is None:
        version = __version__
    else:
        try:
            version = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            fail(f"--client {name}: the {distribution} library is not installed")
    return Client("adapter", name, (sys.executable, "-m", module), agent or f"{name} {version}")


def catalogue_lines(cases: Sequence[Case], width: int = LIST_WIDTH) -> list[str]:
    """The catalogue as text of at most ``width`` columns: per case a line with its id,
    title, archive and time limit, then its docs section, plan and rules, indented."""
    lines: list[str] = []
    group = None
    for case in cases:
        if case.group != group:
            group = case.group
            lines += ["", f"{case.group}  {case.group_title}"]
        tail = f"  {case.archive.removesuffix('.rpl')} {case.time_limit_s:g}s"
        head = f"{case.id:<6}{case.title}"
        if len(head) + len(tail) > width:
            lines += textwrap.wrap(head, width, subsequent_indent=" " * 6)
            lines.append(tail.strip().rjust(width))
        else:
            lines.append(head + tail.rjust(width - len(head)))
        for label, values in (
            ("docs", [case.docs]),
            ("plan", [*case.plan, *case.voice_plan] or ["-"]),
            ("rules", list(case.rules) or ["(none: INFO)"]),
            *((("voice", [_voice_note(case)]),) if case.voice else ()),
        ):
            text = f"{label}: " + "; ".join(values)
            lines += textwrap.wrap(
                text, width, initial_indent=" " * 6, subsequent_indent=" " * 8,
                break_on_hyphens=False,
            )  # fmt: skip
    lines.append(f"{len(cases)} cases")
    return [line for i, line in enumerate(lines) if line or i]


def _voice_note(case: Case) -> str:
    """A voice case's line: the face runs; the clients it does not apply to."""
    note = "the voice face runs; the client joins a voice channel and plays audio"
    if case.not_for:
        note += " (not for " + ", ".join(f"{k}: {v}" for k, v in case.not_for.items()) + ")"
    return note


def print_summary(report: dict[str, Any]) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("id", "result", "title", "observed"):
        table.add_column(column, overflow="fold")
    for case in report["cases"]:
        style = _STYLE.get(case["result"], "")
        observed = case["observed"]
        if case["result"] == "PASS":
            observed = ""
        table.add_row(case["id"], f"[{style}]{case['result']}[/]", case["title"], observed)
    out.print(table)
    counts = ", ".join(f"{report['summary'][r]} {r}" for r in RESULTS if report["summary"][r])
    out.print(f"{report['agent']}: {counts or 'no cases'} ({report['duration_ms'] / 1000:.1f} s)")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def conform(
    list_cases: Annotated[
        bool, typer.Option("--list", help="Print the case catalogue (those selected) and exit.")
    ] = False,
    client: Annotated[
        str | None,
        typer.Option(help="A shipped client: discord.py, hikari, or reference (the docs' own)."),
    ] = None,
    client_cmd: Annotated[
        str | None,
        typer.Option(help="Any command, run per case with REPLAYER_* in its environment."),
    ] = None,
    cases: Annotated[
        str | None, typer.Option(help="The cases to run: 3.*,5.2 (a group, a case, *).")
    ] = None,
    exclude: Annotated[str | None, typer.Option(help="Cases not to run, as --cases.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Cases at once.")] = 1,
    agent: Annotated[
        str | None, typer.Option(help="The client's name in the report (default: its version).")
    ] = None,
    report_dir: Annotated[
        Path, typer.Option(help="Where results.json and each case's client.log go.")
    ] = Path("conform-report"),
    strict: Annotated[bool, typer.Option(help="NON-STRICT fails the run too.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a report directory that has a report.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge the report directories given into -o's matrix.")
    ] = False,
    merge_dirs: Annotated[
        list[Path] | None,
        typer.Argument(help="With --merge: the report directories.", show_default=False),
    ] = None,
    merged_out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="With --merge: the merged report's directory."),
    ] = None,
) -> None:
    """Run a gateway client through the conformance cases; a report card per case.

    Each case is its own replay; the client is started with REPLAYER_* in its environment
    and stopped when the verdicts are in. Exit 1 on any FAIL or NOT FIRED case (--strict:
    NON-STRICT too). docs/conformance.md has it all."""
    import asyncio

    from replayer.conform.runner import run_suite

    if merge or merge_dirs or merged_out is not None:
        _merge(merge, merge_dirs or [], merged_out)
        return
    chosen = select(CATALOGUE, cases, exclude)
    if list_cases:
        for line in catalogue_lines(chosen):
            out.print(line, markup=False, highlight=False)
        return
    runner_client = make_client(client, client_cmd, agent)
    if not chosen:
        fail("no case selected (--cases / --exclude)")
    results = report_dir / "results.json"
    if results.exists() and not force:
        fail(f"{results}: already exists (--force writes over it, or give another --report-dir)")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{report_dir}: cannot create: {exc.strerror or exc}")

    def progress(case: dict[str, Any]) -> None:
        style = _STYLE.get(case["result"], "")
        err.print(f"{case['id']:>5} [{style}]{case['result']}[/] {case['title']}", highlight=False)

    err.print(f"{len(chosen)} cases, {runner_client.agent}, -j {jobs}", markup=False)
    signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: the clients are stopped first
    try:
        report = asyncio.run(
            run_suite(chosen, runner_client, report_dir, jobs=jobs, strict=strict, on_case=progress)
        )
    except KeyboardInterrupt:  # the clients were stopped on the way out
        err.print("interrupted: no report written", markup=False)
        raise typer.Exit(130) from None
    # results.json, junit.xml, index.html and the case pages, beside the runner's client logs.
    write_reports(report, report_dir)
    print_summary(report)
    err.print(f"report: {report_dir / 'index.html'} ({results.name}, junit.xml)", markup=False)
    if failed(report, strict):
        raise typer.Exit(1)


def _merge(merge: bool, dirs: list[Path], out_dir: Path | None) -> None:
    """``conform --merge DIR1 DIR2 -o OUT``: one matrix of several runs' agents."""
    if not merge:
        fail("report directories and -o go with --merge (replayer conform --merge A B -o OUT)")
    if not dirs or out_dir is None:
        fail(
            "--merge needs the report directories and -o OUT (replayer conform --merge A B -o OUT)"
        )
    write_merged(merge_reports(dirs), out_dir)
    out.print(f"merged {len(dirs)} reports: {out_dir / 'index.html'}", markup=False)


# --- replayer test -------------------------------------------------------------------------

_COMMAND = inspect.Parameter(
    "command",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[
        list[str],
        typer.Argument(
            help="The client to run, after -- (e.g. -- node bot.js).", show_default=False
        ),
    ],
)
_TIME_LIMIT = inspect.Parameter(
    "time_limit",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default="120s",
    annotation=Annotated[
        str, typer.Option(help="Stop the command after this long, verdicts in or not.")
    ],
)


@app.command(name="test", epilog=FAULT_HELP)
@replay_options(_COMMAND, _TIME_LIMIT)
def test_command(command: list[str], time_limit: str, **params: Any) -> None:
    """Replay an archive around one command (any language), and judge it.

    The command gets REPLAYER_REST_BASE, REPLAYER_GATEWAY_URL, REPLAYER_TOKEN and
    REPLAYER_CASE=test in its environment; it is stopped once every fault has fired and
    been judged (without faults: when it exits, or at --time-limit). The verdicts are
    printed; --check: exit 1 as replay --check."""
    import asyncio

    from replayer.conform.runner import FAKE_TOKEN, ClientProcess, client_env, settle
    from replayer.replay.server import ReplayServer
    from replayer.replay.verdicts import Verdict

    limit_s = duration_ns(time_limit, "--time-limit") / 1e9
    if shutil.which(command[0]) is None:
        fail(f"{command[0]}: no such command (or not executable)")
    prep = _prepare(**params)
    verdicts: list[Verdict] = []
    answered_404: list[str] = []
    outcome: dict[str, Any] = {}

    async def serve() -> None:
        async with ReplayServer(
            prep.script, prep.options, host=prep.host, port=prep.port,
            transcript=prep.transcript, plan=prep.fault_plan, overwrite_transcript=prep.force,
        ) as server:  # fmt: skip
            token = prep.options.token or FAKE_TOKEN
            env = client_env("test", server.rest_base, server.gateway_url, token=token)
            err.print(f"running {shlex.join(command)} against {server.gateway_url}", markup=False)
            proc = await ClientProcess.start(command, env, None)
            exited = asyncio.ensure_future(proc.proc.wait())
            deadline_s = time.monotonic() + limit_s
            waiting: asyncio.Future[Any]
            if prep.fault_plan.faults:
                waiting = asyncio.ensure_future(settle(server, lambda: True, deadline_s))
            else:
                waiting = asyncio.ensure_future(asyncio.sleep(limit_s))
            await asyncio.wait([waiting, exited], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            outcome["connections"] = server.connections_total
            verdicts.extend(server.verdicts())
            answered_404.extend(server.answered_404())
            await proc.stop()
            await exited
            outcome.update(proc.exit_json())

    try:
        asyncio.run(serve())
    except OSError as exc:
        fail(f"cannot serve on {prep.host}:{prep.port}: {exc.strerror or exc}")
    how = (
        f"exited with {outcome['code']}"
        if outcome["code"] is not None
        else f"stopped by {outcome['signal']}"
    )
    who = "by itself" if outcome["stopped_by"] == "client" else "when the verdicts were in"
    err.print(f"the command {how} ({who})", markup=False)
    if not outcome["connections"]:
        err.print("the command never connected to the gateway", markup=False)
    conclude(prep, verdicts, answered_404)
