"""Convert a mitmproxy flow file (``mitmdump -w``) holding gateway WebSocket flows into
an archive, through the same :class:`GatewayRecorder` the live proxy uses.

Events of all flows (connection start, each message, the end, REST exchanges) are
replayed in timestamp order, so several connections interleave as they did live.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

from mitmproxy import exceptions, http
from mitmproxy.io import FlowReader
from mitmproxy.websocket import WebSocketMessage

from replayer.archive.writer import ArchiveWriter
from replayer.errors import ReplayerError
from replayer.record.addon import TRIMMED
from replayer.record.recorder import DEFAULT_GATEWAY_HOSTS, GatewayRecorder, is_gateway


class FlowFileError(ReplayerError, ValueError):
    """A flow file mitmproxy cannot read."""


@dataclass(frozen=True)
class ImportSummary:
    flows: int
    connections: int
    messages: int
    http: int


class _Kind(enum.IntEnum):
    OPEN = 0
    MESSAGE = 1
    CLOSE = 2
    EXCHANGE = 3


@dataclass(frozen=True)
class _Event:
    timestamp: float
    order: int  # keeps a flow's own events in order when timestamps tie
    kind: _Kind
    flow: http.HTTPFlow
    message: WebSocketMessage | None = None


def _headers(fields: http.Headers) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in fields.items(multi=True))


def _ws_url(flow: http.HTTPFlow) -> str:
    scheme, sep, rest = flow.request.pretty_url.partition("://")
    return {"http": "ws", "https": "wss"}.get(scheme, scheme) + sep + rest


def _events(source: str | os.PathLike[str]) -> list[_Event]:
    events: list[_Event] = []
    try:
        with open(source, "rb") as f:
            for flow in FlowReader(f).stream():
                if not isinstance(flow, http.HTTPFlow):
                    continue
                start = flow.request.timestamp_start
                ws = flow.websocket
                if ws is None:
                    if flow.response is not None:
                        events.append(_Event(start, len(events), _Kind.EXCHANGE, flow))
                    continue
                events.append(_Event(start, len(events), _Kind.OPEN, flow))
                for message in ws.messages:
                    events.append(
                        _Event(message.timestamp, len(events), _Kind.MESSAGE, flow, message)
                    )
                end = ws.timestamp_end or (ws.messages[-1].timestamp if ws.messages else start)
                events.append(_Event(end, len(events), _Kind.CLOSE, flow))
    except FileNotFoundError:
        raise FlowFileError(f"{source}: no such file") from None
    except exceptions.FlowReadException as exc:
        raise FlowFileError(f"{source}: not a mitmproxy flow file ({exc})") from None
    events.sort(key=lambda e: (e.timestamp, e.order))
    return events


def _check_not_trimmed(source: str | os.PathLike[str], events: list[_Event]) -> None:
    """A capture taken with the recorder addon loaded has no session to convert: the
    addon drops each message once recorded (mitmproxy would keep them all in memory).
    Its flows say so (``TRIMMED`` in their metadata); an older capture's gateway flows
    are merely empty (the gateway always sends HELLO first)."""
    gateway = [
        e.flow
        for e in events
        if e.kind is _Kind.OPEN
        and is_gateway(DEFAULT_GATEWAY_HOSTS, e.flow.request.pretty_host, e.flow.request.path)
    ]
    trimmed = sum(1 for flow in gateway if flow.metadata.get(TRIMMED))
    if not trimmed and (not gateway or any(f.websocket and f.websocket.messages for f in gateway)):
        return
    what = (
        f"the replayer recorder addon was loaded when it was captured ({trimmed} of its "
        f"{len(gateway)} gateway connections trimmed)"
        if trimmed
        else f"its {len(gateway)} gateway connections hold no message (captured with the "
        "replayer recorder addon loaded?)"
    )
    raise FlowFileError(
        f"{source}: {what}: the addon drops mitmproxy's copy of each message once recorded, "
        "so there is nothing to convert; the recording is the archive the addon wrote "
        "(its gateway_record option)"
    )


def _apply(recorder: GatewayRecorder, event: _Event) -> None:
    flow = event.flow
    request = flow.request
    match event.kind:
        case _Kind.OPEN:
            if recorder.is_gateway(request.pretty_host, request.path):
                recorder.open(flow.id, _ws_url(flow), _headers(request.headers))
        case _Kind.MESSAGE:
            m = event.message
            assert m is not None
            if m.from_client:
                recorder.client_message(flow.id, m.content, m.is_text)
            else:
                recorder.server_message(flow.id, m.content, m.is_text)
        case _Kind.CLOSE:
            ws = flow.websocket
            assert ws is not None
            recorder.close(flow.id, ws.close_code, ws.close_reason or "", ws.closed_by_client)
        case _Kind.EXCHANGE:
            response = flow.response
            if response is not None and recorder.is_rest(request.path):
                recorder.http(
                    request.method,
                    request.pretty_host,
                    request.path,
                    response.status_code,
                    _headers(request.headers),
                    _headers(response.headers),
                    request.get_content(strict=False) or b"",
                    response.get_content(strict=False) or b"",
                )


def import_flows(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    redact: bool = True,
    overwrite: bool = False,
) -> ImportSummary:
    """Write the gateway traffic in ``source`` into the archive ``output`` (a file
    already there is kept, :class:`FileExistsError`, unless ``overwrite``)."""
    events = _events(source)
    _check_not_trimmed(source, events)
    t0 = events[0].timestamp if events else 0.0
    now = [0]
    with ArchiveWriter(
        Path(output), redact=redact, metadata={"imported_from": str(source)}, overwrite=overwrite
    ) as writer:
        recorder = GatewayRecorder(writer, clock_ns=lambda: now[0])
        for event in events:
            now[0] = max(now[0], int((event.timestamp - t0) * 1e9))
            _apply(recorder, event)
        connections = len(recorder.stats)
    return ImportSummary(
        flows=len({e.flow.id for e in events}),
        connections=connections,
        messages=sum(1 for e in events if e.kind is _Kind.MESSAGE),
        http=sum(1 for e in events if e.kind is _Kind.EXCHANGE),
    )
