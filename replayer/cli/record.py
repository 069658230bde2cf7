"""``replayer record``: record a bot's gateway session through an in-process mitmproxy."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from replayer.cli.output import err, fail, out, snippets
from replayer.cli.root import app
from replayer.cli.scrub import KEY_ENV, random_key_notice, scrub_key_text


@app.command()
def record(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Archive to write (or a directory).")
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
) -> None:
    """Record a bot's gateway session through mitmproxy (in-process); Ctrl-C closes the archive."""
    import asyncio
    import signal

    from rich.live import Live

    from replayer.malloc import tune_malloc_for_large_messages
    from replayer.record.proxy import RecordingProxy, RecordSettings, ca_cert_path

    if mode not in ("reverse", "regular"):
        raise typer.BadParameter("expected 'reverse' or 'regular'", param_hint="--mode")
    key = scrub_key_text(scrub_key, "--scrub-key") if scrub else None
    settings = RecordSettings(
        output=output, mode=mode, host=host, port=port, upstream=upstream,
        gateway_upstream=gateway_upstream, confdir=confdir, redact=redact, rest=rest,
        scrub_key=key,
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
                stats.url,
                str(stats.frames_in),
                str(stats.frames_out),
                stats.closed or "open",
            )
        return t

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tune_malloc_for_large_messages()
        proxy = RecordingProxy(settings)
        try:
            await proxy.start()
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        except Exception as exc:  # mitmproxy's own errors (bad options, ...)
            await proxy.stop()
            fail(f"mitmproxy could not start: {exc}")
        recorder = proxy.recorder
        archive = recorder.writer.path if recorder else output
        out.print(f"recording into {archive}", markup=False)
        if scrub:
            out.print("scrubbing: ids, names and text are pseudonymised", markup=False)
            if scrub_key is None:
                err.print(random_key_notice("--scrub-key"), markup=False)
        if mode == "reverse":
            out.print(f"REST base:   {proxy.rest_base}  (forwarded to {upstream})", markup=False)
            out.print(f"gateway URL: {proxy.gateway_url}", markup=False)
            out.print(snippets(proxy.rest_base, proxy.gateway_url), markup=False)
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
        errors = proxy.addon.errors
        err.print(
            f"closed {archive}"
            + (f" ({errors} recorder errors: see the log above)" if errors else "")
        )

    asyncio.run(run())
