"""I/O shell of the recorder: mitmproxy in-process, with a lean set of addons.

mitmdump runs ~31 default addons on every message; ``replayer record`` loads only what a
recording proxy needs (core, proxy server, layer detection, TLS, DNS), plus the
recorder. mitmproxy is imported here only, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mitmproxy import options as mitm_options
from mitmproxy.addons import core, dns_resolver, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master

from replayer.record.addon import GatewayRecorderAddon
from replayer.record.recorder import GatewayRecorder

DEFAULT_REST_UPSTREAM = "https://discord.com"
START_TIMEOUT_S = 30.0  # mitmproxy applies its options, then listens: normally milliseconds
STOP_CONNECTIONS_S = 5.0  # how long stop() lets the open connections wind down


class ListenError(OSError):
    """The proxy could not listen: ``str()`` is ``HOST:PORT: reason`` (the OS's reason),
    ``errno`` the OS's error number when there is one."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True)
class RecordSettings:
    output: Path
    mode: str = "reverse"  # or "regular"
    host: str = "127.0.0.1"
    port: int = 0
    upstream: str = DEFAULT_REST_UPSTREAM  # REST upstream (reverse mode)
    gateway_upstream: str | None = None  # default: the url the upstream's /gateway gives
    confdir: Path | None = None  # mitmproxy's CA and settings; default ~/.mitmproxy
    redact: bool = True
    rest: bool = True
    scrub_key: str | None = None  # pseudonymise the archive with this key (None: off)
    overwrite: bool = False  # replace an existing output file (else FileExistsError)


class RecordingProxy:
    """A running recording proxy: ``await start()``, then ``address``, ``stop()``."""

    def __init__(self, settings: RecordSettings) -> None:
        self.settings = settings
        self.addon = GatewayRecorderAddon()
        self.master: Master | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def recorder(self) -> GatewayRecorder | None:
        recorder = self.addon.recorder
        return recorder if isinstance(recorder, GatewayRecorder) else None

    def _mode(self) -> str:
        s = self.settings
        where = f"@{s.host}:{s.port}"
        if s.mode == "regular":
            return "regular" + where
        return f"reverse:{s.upstream}" + where

    async def start(self) -> None:
        s = self.settings
        opts = mitm_options.Options(mode=[self._mode()])
        if s.confdir is not None:
            opts.update(confdir=str(s.confdir))
        master = Master(opts)
        master.addons.add(
            core.Core(),
            proxyserver.Proxyserver(),
            dns_resolver.DnsResolver(),
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            self.addon,
        )
        self.master = master
        self._task = asyncio.create_task(master.run())
        try:
            await self._listening(master.addons.get("proxyserver"))
        except BaseException:
            await self.stop()
            raise
        self.port = master.addons.get("proxyserver").listen_addrs()[0][1]
        updates: dict[str, object] = {
            "gateway_redact": s.redact,
            "gateway_rest": s.rest,
            "gateway_record": str(s.output),
            "gateway_overwrite": s.overwrite,
            # In-process: the live table reads the recorder's counts, reverse mode
            # rewrites, and this lean master is fast enough on its own (bench/README.md).
            "gateway_worker": False,
            "gateway_scrub_key": s.scrub_key or "",
        }
        if s.mode == "reverse":
            updates["gateway_rewrite"] = f"ws://{self.host_for_url}:{self.port}"
        if s.gateway_upstream:
            updates["gateway_upstream"] = s.gateway_upstream
        master.options.update(**updates)

    async def _listening(self, server: proxyserver.Proxyserver) -> None:
        """Wait until the proxy listens (run() applies options, then starts the
        servers). A server that failed to start (a busy port) is raised at once: mitmproxy
        only logs it and goes on running without a server."""
        assert self._task is not None
        where = f"{self.host_for_url}:{self.settings.port}"
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while not server.listen_addrs():
                    if self._task.done():
                        self._task.result()  # re-raise why mitmproxy stopped
                        raise ListenError(f"{where}: mitmproxy stopped before listening")
                    for instance in server.servers:
                        if isinstance(instance.last_exception, Exception):
                            raise _listen_error(where, instance.last_exception)
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise ListenError(
                f"{where}: mitmproxy was not listening after {START_TIMEOUT_S:g} s"
            ) from None

    @property
    def host_for_url(self) -> str:
        host = self.settings.host
        return f"[{host}]" if ":" in host else host

    @property
    def rest_base(self) -> str:
        return f"http://{self.host_for_url}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host_for_url}:{self.port}/"

    async def stop(self) -> None:
        if self.master is not None:
            # Fix: mitmproxy's shutdown does not stop its servers (mitmdump exits the
            # process instead): without this the port stays open, accepting, and its
            # socket leaks (a ResourceWarning once the loop is gone).
            server = self.master.addons.get("proxyserver")
            await server.servers.update([])
            await _close_connections(server)
            self.master.shutdown()
            if self._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self.master = None
        self.addon.close_archive()

    async def __aenter__(self) -> RecordingProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _listen_error(where: str, exc: Exception) -> ListenError:
    """``127.0.0.1:8080: address already in use`` from asyncio's longer bind error."""
    if isinstance(exc, OSError) and exc.errno:
        reason = os.strerror(exc.errno)
        return ListenError(f"{where}: {reason[:1].lower()}{reason[1:]}", exc.errno)
    return ListenError(f"{where}: {exc}")


async def _close_connections(server: proxyserver.Proxyserver) -> None:
    """End every proxied connection as mitmproxy's inactivity timeout does (cancel its
    client handler: the addons get their end hooks) and wait for them to wind down.
    Without this, asyncio.run() cancels their tasks at exit, past mitmproxy, and Python
    3.12.1's streams print a CancelledError traceback for each."""
    handlers = list(server.connections.values())
    for handler in handlers:
        transport = handler.transports.get(handler.client)
        if transport is not None and transport.handler is not None:
            transport.handler.cancel("replayer record is stopping")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_CONNECTIONS_S):
            while server.connections:
                await asyncio.sleep(0.01)


def ca_cert_path(confdir: Path | None) -> Path:
    base = confdir if confdir is not None else Path("~/.mitmproxy").expanduser()
    return base / "mitmproxy-ca-cert.pem"


async def run_until(proxy: RecordingProxy, stop: Callable[[], Awaitable[None]]) -> None:
    """Run the proxy until ``stop()`` returns (or the task is cancelled)."""
    await proxy.start()
    try:
        await stop()
    finally:
        await proxy.stop()


def upstream_host(url: str) -> str:
    return urlsplit(url).netloc
