"""The mitmproxy addon that records Discord gateway traffic into a replayer archive.

Loaded by the packaged script ``replayer/data/gateway_recorder.py`` (``replayer addon-path``;
``addons/gateway_recorder.py`` in the repository) for ``mitmdump -s``, and by ``replayer record``:

    mitmdump -s "$(replayer addon-path)" --set gateway_record=session.rpl

Options (all ``gateway_*``): ``gateway_record`` (archive file, or a directory to create
one in), ``gateway_hosts`` (comma-separated gateway hosts; any host with the gateway's
``v=``/``encoding=`` query is recorded too, and the voice servers VOICE_SERVER_UPDATE
names), ``gateway_redact`` (scrub tokens, on by default), ``gateway_rest`` (record
``/api/...`` exchanges, on by default), ``gateway_rewrite`` (the proxy's own ``ws://``
base: rewrite gateway URLs and voice endpoints to it and route resumed and voice
connections, for reverse mode), ``gateway_upstream`` (where gateway upgrades go in reverse
mode; default: the ``url`` of the upstream's ``/gateway`` answer) and ``gateway_worker``
(decode and write in a child process, on by default; see :mod:`replayer.record.worker`;
not with ``gateway_rewrite``, which needs the decoder in the proxy), ``gateway_scrub_key``
(pseudonymise what is written with this key, :mod:`replayer.archive.scrub`; empty, the
default: off) and ``gateway_overwrite`` (replace an existing archive file; off: it is
refused).

The addon is thin: every decision is in :mod:`replayer.record.recorder`. No exception leaves a
hook: a failure is logged, the message is kept raw, and the proxied connection goes on.
If the worker dies, recording stops (logged) and the proxy goes on.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.websocket import WebSocketMessage

from replayer.archive.scrub import Scrubber
from replayer.archive.writer import ArchiveWriter
from replayer.errors import ReplayerError
from replayer.record.recorder import DEFAULT_GATEWAY_HOSTS, GatewayRecorder

if TYPE_CHECKING:
    from replayer.record.worker import WorkerRecorder

log = logging.getLogger(__name__)
WORKER_GONE_WAIT_S = 1.0


def _worker_class() -> type[WorkerRecorder] | None:
    """The recorder worker, or None where it cannot run (no ``fcntl``: not a POSIX system);
    then the addon records in mitmdump's own thread."""
    try:
        from replayer.record.worker import WorkerRecorder
    except ImportError as exc:
        log.info("recording in mitmdump's thread: the recorder worker needs %s", exc.name)
        return None
    return WorkerRecorder


# Set in a flow's metadata (which flow files keep) once the addon has dropped its
# messages: import-mitm then knows the flow file holds no session.
TRIMMED = "replayer_trimmed"  # how long a hook may wait for a worker whose pipe broke


def _headers(fields: http.Headers) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in fields.items(multi=True))


def _deliver(message: WebSocketMessage, replacement: bytes | None) -> None:
    """Apply the recorder's answer for a server message: None forwards it unchanged,
    ``b""`` sends nothing yet (a re-compressed stream mid-message), else new content."""
    if replacement == b"":
        message.drop()
    elif replacement is not None:
        message.content = replacement


def _cannot_write(path: Path, exc: Exception) -> exceptions.OptionsError:
    if isinstance(exc, FileExistsError):
        return exceptions.OptionsError(
            f"gateway_record: {path} already exists (gateway_overwrite=true replaces it)"
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return exceptions.OptionsError(f"gateway_record: cannot write {path}: {reason}")


class GatewayRecorderAddon:
    """Hooks -> :class:`GatewayRecorder`."""

    def __init__(self) -> None:
        self.recorder: GatewayRecorder | WorkerRecorder | None = None
        # The worker's hand-over, when the recorder is one: websocket_message's fast path.
        self._relay: Callable[[object, bool, bytes, bool], None] | None = None
        self.errors = 0

    def _use(self, recorder: GatewayRecorder | WorkerRecorder | None) -> None:
        self.recorder = recorder
        self._relay = getattr(recorder, "relay", None)

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "gateway_record",
            str,
            "",
            "Archive file (or directory) to record the Discord gateway into.",
        )
        loader.add_option(
            "gateway_hosts",
            str,
            ",".join(sorted(DEFAULT_GATEWAY_HOSTS)),
            "Comma-separated gateway hosts to record.",
        )
        loader.add_option(
            "gateway_redact", bool, True, "Replace tokens before anything is written."
        )
        loader.add_option("gateway_rest", bool, True, "Record Discord REST calls (/api/...).")
        loader.add_option(
            "gateway_rewrite",
            str,
            "",
            "The proxy's ws:// base: point gateway URLs here (reverse mode).",
        )
        loader.add_option(
            "gateway_upstream", str, "", "Gateway upstream (ws:// or wss://) for reverse mode."
        )
        loader.add_option(
            "gateway_overwrite",
            bool,
            False,
            "Replace an existing gateway_record file (otherwise it is refused).",
        )
        loader.add_option(
            "gateway_worker",
            bool,
            True,
            "Decode and write in a child process, off the proxy's thread (not with "
            "gateway_rewrite).",
        )
        loader.add_option(
            "gateway_scrub_key",
            str,
            "",
            "Pseudonymise ids, names and text before writing, with this key (empty: off).",
        )

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        upstream, rewrite = opts.gateway_upstream, opts.gateway_rewrite
        if upstream and urlsplit(upstream).scheme not in ("ws", "wss", "http", "https"):
            raise exceptions.OptionsError(
                f"gateway_upstream: not a ws:// or wss:// URL: {upstream!r}"
            )
        if rewrite and urlsplit(rewrite).scheme not in ("ws", "wss"):
            raise exceptions.OptionsError(f"gateway_rewrite: not a ws:// URL: {rewrite!r}")
        if "gateway_record" in updated:
            self.close_archive()
            if opts.gateway_record:
                self._use(self._open(opts.gateway_record))
        if self.recorder is not None:
            self.recorder.gateway_hosts = frozenset(
                h.strip() for h in opts.gateway_hosts.split(",") if h.strip()
            )
            self.recorder.record_rest = opts.gateway_rest
            self.recorder.rewrite_base = opts.gateway_rewrite or None
            if opts.gateway_upstream:
                self.recorder.gateway_upstream = opts.gateway_upstream

    def _open(self, target: str) -> GatewayRecorder | WorkerRecorder:
        opts = ctx.options
        path = Path(target)
        if path.is_dir():
            path = path / time.strftime("gateway-%Y%m%d-%H%M%S.rpl")
        metadata = {
            "recorder": "gateway_recorder.py (mitmdump -s)",
            "rewrite": opts.gateway_rewrite or None,
        }
        scrub_key: str = opts.gateway_scrub_key
        if scrub_key:
            metadata["scrubbed"] = True
        overwrite = opts.gateway_overwrite
        # A frozen mitmproxy (the standalone binaries) has no Python to start a worker with;
        # the worker needs POSIX pipes, fd passing and flock.
        frozen = getattr(sys, "frozen", False)
        worker_class = None
        if opts.gateway_worker and not opts.gateway_rewrite and not frozen and os.name == "posix":
            worker_class = _worker_class()
        if worker_class is not None:
            try:
                worker = worker_class(
                    path,
                    redact=opts.gateway_redact,
                    metadata=metadata,
                    scrub_key=scrub_key,
                    overwrite=overwrite,
                )
            except OSError as exc:
                raise _cannot_write(path, exc) from exc
            log.info("recording the Discord gateway into %s (worker pid %d)", path, worker.pid)
            return worker
        try:
            transform = Scrubber(scrub_key.encode("utf-8", "surrogateescape")).scrub
            writer = ArchiveWriter(
                path,
                redact=opts.gateway_redact,
                metadata=metadata,
                transform=transform if scrub_key else None,
                overwrite=overwrite,
            )
        except (OSError, ReplayerError) as exc:
            raise _cannot_write(path, exc) from exc
        log.info("recording the Discord gateway into %s", path)
        return GatewayRecorder(writer, on_error=self._error)

    def _worker_died(self) -> None:
        """The worker's pipe broke (or a write to it failed): stop recording, keep
        proxying. The worker, if alive, writes what the pipe holds and exits; the proxy's
        thread waits for that at most WORKER_GONE_WAIT_S."""
        recorder = self.recorder
        self._use(None)
        status = recorder.close_archive(WORKER_GONE_WAIT_S) if recorder is not None else None
        state = "still writing" if status is None else f"exit status {status}"
        self._error(
            f"the recorder worker's pipe broke (worker {state}): recording stopped, "
            "the proxy goes on; the archive keeps every record written before"
        )

    def _error(self, message: str) -> None:
        self.errors += 1
        log.error("gateway recorder: %s", message)

    def close_archive(self) -> None:
        recorder = self.recorder
        self._use(None)
        if recorder is not None:
            recorder.close_archive()

    def done(self) -> None:
        self.close_archive()

    # --- HTTP ----------------------------------------------------------------------------

    def request(self, flow: http.HTTPFlow) -> None:
        """Reverse mode: send gateway upgrades (first or resumed) to the real gateway."""
        recorder = self.recorder
        if recorder is None or recorder.rewrite_base is None:
            return
        try:
            if flow.request.headers.get("upgrade", "").lower() != "websocket":
                return
            target = recorder.upstream_for(flow.request.path)
            if target is None:
                return
            base, path = target
            url = urlsplit(base)
            flow.request.scheme = "https" if url.scheme in ("wss", "https") else "http"
            flow.request.host = url.hostname or flow.request.host
            flow.request.port = url.port or (443 if flow.request.scheme == "https" else 80)
            flow.request.host_header = url.netloc
            flow.request.path = (url.path.rstrip("/") + path) if url.path not in ("", "/") else path
        except BrokenPipeError:
            self._worker_died()
        except Exception as exc:
            self._error(f"request routing failed: {exc!r}")

    def response(self, flow: http.HTTPFlow) -> None:
        recorder = self.recorder
        if recorder is None or flow.response is None or flow.websocket is not None:
            return
        try:
            if not recorder.is_rest(flow.request.path):
                return
            body = recorder.http(
                flow.request.method,
                flow.request.pretty_host,
                flow.request.path,
                flow.response.status_code,
                _headers(flow.request.headers),
                _headers(flow.response.headers),
                flow.request.get_content(strict=False) or b"",
                flow.response.get_content(strict=False) or b"",
            )
            if body is not None:
                flow.response.content = body
        except BrokenPipeError:
            self._worker_died()
        except Exception as exc:
            self._error(f"REST recording failed: {exc!r}")

    # --- WebSocket -----------------------------------------------------------------------

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        try:
            if recorder.is_gateway(flow.request.pretty_host, flow.request.path):
                url = flow.request.pretty_url
                scheme, sep, rest = url.partition("://")
                url = {"http": "ws", "https": "wss"}.get(scheme, scheme) + sep + rest
                recorder.open(flow.id, url, _headers(flow.request.headers))
        except BrokenPipeError:
            self._worker_died()
        except Exception as exc:
            self._error(f"websocket_start failed: {exc!r}")

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        recorder = self.recorder
        websocket = flow.websocket
        if recorder is None or websocket is None or not websocket.messages:
            return  # not recording: mitmproxy's message list is left alone
        message = websocket.messages[-1]
        relay = self._relay
        try:
            if relay is not None:  # the worker: hand it over; the client gets it unchanged
                relay(flow.id, message.from_client, message.content, message.is_text)
            elif message.from_client:
                recorder.client_message(flow.id, message.content, message.is_text)
            else:
                replacement = recorder.server_message(flow.id, message.content, message.is_text)
                _deliver(message, replacement)
        except BrokenPipeError:
            self._worker_died()
        except Exception as exc:
            self._message_failed(flow.id, message, exc)
        finally:
            # mitmproxy keeps every message of a flow (mitmproxy#6620): keep only the last.
            del websocket.messages[:-1]
            flow.metadata[TRIMMED] = True

    def _message_failed(self, key: str, message: WebSocketMessage, exc: Exception) -> None:
        """Recording ``message`` raised ``exc``: keep it raw, and make sure the client
        still gets something that fits its stream."""
        self._error(f"websocket_message failed: {exc!r}")
        recorder = self.recorder
        if recorder is None:
            return
        try:
            recorder.store_raw(
                key, message.from_client, message.content, message.is_text, repr(exc)
            )
        except Exception as again:
            self._error(f"websocket_message: cannot keep the message raw: {again!r}")
        if not message.from_client:
            # Fix: on a re-compressed connection the upstream's bytes may no longer
            # fit the client's stream (see GatewayRecorder.server_fallback).
            try:
                fallback = recorder.server_fallback(key, message.content, message.is_text)
                _deliver(message, fallback)
            except Exception as again:
                self._error(f"websocket_message fallback failed: {again!r}")

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        recorder = self.recorder
        websocket = flow.websocket
        if recorder is None or websocket is None:
            return
        try:
            recorder.close(
                flow.id,
                websocket.close_code,
                websocket.close_reason or "",
                websocket.closed_by_client,
            )
        except BrokenPipeError:
            self._worker_died()
        except Exception as exc:
            self._error(f"websocket_end failed: {exc!r}")
        finally:
            websocket.messages.clear()
            flow.metadata[TRIMMED] = True
