"""I/O shell of the recorder: mitmproxy in-process, with a lean set of addons.

mitmdump runs ~31 default addons on every message; ``replayer record`` loads only what a
recording proxy needs (core, proxy server, layer detection, TLS, DNS), plus the
recorder. mitmproxy is imported here only, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        server = master.addons.get("proxyserver")
        # Wait until the proxy listens (run() applies options, then starts the servers).
        async with asyncio.timeout(30):
            while not server.listen_addrs():
                if self._task.done():
                    self._task.result()  # re-raise why mitmproxy stopped
                    raise OSError("mitmproxy stopped before listening")
                await asyncio.sleep(0.01)
        self.port = server.listen_addrs()[0][1]
        updates: dict[str, object] = {
            "gateway_redact": s.redact,
            "gateway_rest": s.rest,
            "gateway_record": str(s.output),
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
            await self.master.addons.get("proxyserver").servers.update([])
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
