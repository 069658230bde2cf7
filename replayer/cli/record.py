"""``replayer record``: record a bot's gateway session through an in-process mitmproxy."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from replayer import resources
from replayer.archive.redaction import redact_url
from replayer.cli.output import (
    ForceOption,
    err,
    fail,
    on_stop_signals,
    out,
    output_file,
    snippets,
)
from replayer.cli.root import app
from replayer.cli.scrub import KEY_ENV, random_key_notice, scrub_key_text

if TYPE_CHECKING:
    from replayer.record.recorder import GatewayRecorder

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def redact_urls(text: str) -> str:
    """``text`` with every URL in it through ``redact_url`` (a gateway URL may carry a
    token in its query, and stderr ends up in CI logs)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class _ConsoleLog(logging.Handler):
    """The recorder's and mitmproxy's warnings and errors, one line each on stderr
    (above the live table), URLs redacted. A logged exception adds its one-line repr,
    not its traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if not message.strip():
                return
            if record.exc_info and record.exc_info[1] is not None:
                message += f": {record.exc_info[1]!r}"
            level = "error" if record.levelno >= logging.ERROR else "warning"
            style = "bold red" if level == "error" else "yellow"
            err.print(f"[{style}]{level}:[/] {escape(redact_urls(message))}")
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _logs_on_stderr() -> Iterator[Callable[[], None]]:
    """The recorder's warnings on stderr; mitmproxy's too once the returned function is
    called (while it starts, what went wrong is said once, by ``record`` itself)."""
    handler = _ConsoleLog(logging.WARNING)
    loggers = [logging.getLogger("replayer")]

    def also_mitmproxy() -> None:
        loggers.append(logging.getLogger("mitmproxy"))
        loggers[-1].addHandler(handler)

    loggers[0].addHandler(handler)
    try:
        yield also_mitmproxy
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@app.command()
def record(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Archive to write (refused if it exists, unless --force); a directory: "
            "a new timestamped file in it.",
        ),
    ],
    mode: Annotated[
        str,
        typer.Option(
            help="'reverse': one port facing the client; 'regular': an explicit HTTP proxy."
        ),
    ] = "reverse",
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    upstream: Annotated[
        str, typer.Option(help="REST upstream in reverse mode, e.g. http://127.0.0.1:9000.")
    ] = "https://discord.com",
    gateway_upstream: Annotated[
        str | None,
        typer.Option(
            help="Gateway upstream (ws:// or wss://); default: the url of the upstream's /gateway."
        ),
    ] = None,
    confdir: Annotated[
        Path | None,
        typer.Option(help="mitmproxy's configuration and CA directory (default ~/.mitmproxy)."),
    ] = None,
    redact: Annotated[
        bool, typer.Option(help="Scrub tokens before writing (strongly advised).")
    ] = True,
    rest: Annotated[bool, typer.Option(help="Record Discord REST calls (/api/...).")] = True,
    scrub: Annotated[
        bool, typer.Option(help="Pseudonymise ids, names and text (as replayer scrub).")
    ] = False,
    scrub_key: Annotated[
        str | None,
        typer.Option(
            envvar=KEY_ENV,
            help="Key for --scrub: the same key, the same pseudonyms. Default: a random one.",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Record a bot's gateway session through mitmproxy (in-process); Ctrl-C closes the archive.
    An existing archive is never replaced without --force. If the disk fills up, the
    recording stops (said once, with the reason) and the bot's connections go on."""
    import asyncio

    from rich.live import Live

    from replayer.malloc import tune_malloc_for_large_messages
    from replayer.record.proxy import ListenError, RecordingProxy, RecordSettings, ca_cert_path

    if mode not in ("reverse", "regular"):
        raise typer.BadParameter("expected 'reverse' or 'regular'", param_hint="--mode")
    key = scrub_key_text(scrub_key, "--scrub-key") if scrub else None
    output = output_file(output, force=force)
    settings = RecordSettings(
        output=output, mode=mode, host=host, port=port, upstream=upstream,
        gateway_upstream=gateway_upstream, confdir=confdir, redact=redact, rest=rest,
        scrub_key=key, overwrite=force,
    )  # fmt: skip

    def table(proxy: RecordingProxy) -> Table:
        t = Table(
            "conn",
            "url",
            "server→client",
            "client→server",
            "state",
            title="gateway connections",
            title_justify="left",
        )
        recorder = proxy.recorder
        for stats in recorder.stats.values() if recorder else []:
            t.add_row(
                f"c{stats.conn_id}",
                redact_url(stats.url),
                str(stats.frames_in),
                str(stats.frames_out),
                stats.closed or "open",
            )
        return t

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        on_stop_signals(loop, stop.set)
        tune_malloc_for_large_messages()
        proxy = RecordingProxy(settings)
        starting = asyncio.ensure_future(proxy.start())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait((starting, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not starting.done():  # Ctrl-C while mitmproxy starts
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            await proxy.stop()
            fail("stopped before the proxy listened")
        if isinstance(starting.exception(), ListenError):
            fail(f"cannot listen on {starting.exception()}")
        if (exc := starting.exception()) is not None:  # mitmproxy's own (bad options, ...)
            await proxy.stop()
            fail(f"mitmproxy could not start: {exc}")
        show_mitmproxy_logs()
        recorder = proxy.recorder
        archive = recorder.writer.path if recorder else output
        out.print(f"recording into {archive}", markup=False)
        if scrub:
            out.print("scrubbing: ids, names and text are pseudonymised", markup=False)
            if scrub_key is None:
                err.print(random_key_notice("--scrub-key"), markup=False)
        if mode == "reverse":
            rest_base, gateway_url = redact_url(proxy.rest_base), redact_url(proxy.gateway_url)
            out.print(
                f"REST base:   {rest_base}  (forwarded to {redact_url(upstream)})", markup=False
            )
            out.print(f"gateway URL: {gateway_url}", markup=False)
            out.print(snippets(rest_base, gateway_url), markup=False)
            voice_ca = ca_cert_path(confdir)
            out.print(
                "voice: VOICE_SERVER_UPDATE endpoints are rewritten to this proxy, which clients "
                f"open with wss://: trust mitmproxy's CA, {voice_ca}\n"
                f"  Python (discord.py, hikari): SSL_CERT_FILE={voice_ca}; "
                f"discord.js: NODE_EXTRA_CA_CERTS={voice_ca}",
                markup=False,
            )
        else:
            ca = ca_cert_path(confdir)
            proxy_url = f"http://{proxy.host_for_url}:{proxy.port}"
            out.print(f"HTTP proxy: {proxy_url}", markup=False)
            out.print(
                f"The client must trust mitmproxy's CA: {ca}\n"
                f"  discord.py: SSL_CERT_FILE={ca}, discord.Client(..., proxy='{proxy_url}')\n"
                f"  hikari:     SSL_CERT_FILE={ca}, hikari.GatewayBot(..., "
                f"proxy_settings=hikari.impl.config.ProxySettings(url='{proxy_url}'))\n"
                f"  discord.js: NODE_EXTRA_CA_CERTS={ca}, and a proxy agent for REST and WebSocket",
                markup=False,
            )
        out.print("Ctrl-C stops and closes the archive.", markup=False)
        with Live(table(proxy), console=err, refresh_per_second=4, transient=False) as live:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)
                live.update(table(proxy))
        await proxy.stop()
        if not err.is_terminal:  # Live leaves its last table without a line end there
            err.print()
        err.print(_closed_line(archive, recorder, proxy.addon.errors), markup=False)

    with _logs_on_stderr() as show_mitmproxy_logs:
        asyncio.run(run())


def _closed_line(archive: Path, recorder: GatewayRecorder | None, errors: int) -> str:
    """The last line: the archive, and what went wrong (each error was logged above)."""
    failure = recorder.write_failure if recorder is not None else None
    if failure is not None and recorder is not None:
        return (
            f"closed {archive}: recording stopped when a write failed "
            f"({failure.strerror or failure}); "
            f"{recorder.write_errors} records after it were not written, "
            "every record before is readable"
        )
    plural = "s" if errors != 1 else ""
    return f"closed {archive}" + (
        f" ({errors} recorder error{plural}: see above)" if errors else ""
    )


@app.command("addon-path")
def addon_path() -> None:
    """Print the path of the mitmproxy addon this replayer ships, for mitmdump -s.

    mitmdump -s "$(replayer addon-path)" --set gateway_record=session.rpl
    """
    out.print(str(resources.addon_path()), markup=False, soft_wrap=True)
