"""The frames a replay exchanged, in order, and waits for one of them: what the pytest
plugin's ``wait_for`` stands on. Pure: the shell adds each frame as it is sent (server)
or as it arrives (client); a wait is a match function and two callbacks, called at the
``add`` that satisfies it (or at once, if the log already holds the match)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replayer.errors import CodecError
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.opcodes import Direction, Opcode, as_opcode, opcode_name, parse_opcode

_UNDECODED = object()


@dataclass(eq=False)
class Frame:
    """One gateway payload as it crossed the socket (before transport compression)."""

    direction: Direction  # SERVER: the replay sent it; CLIENT: the client did
    conn: int  # the engine's connection number, as faults' conn= and verdicts count
    op: int | None  # None: a payload that did not decode (a corrupt fault, a broken client)
    t: str | None
    s: int | None
    raw: bytes
    encoding: Encoding
    index: int = 0  # position in the log, from 0
    _payload: Any = field(default=_UNDECODED, repr=False)

    @property
    def payload(self) -> Any:
        """The decoded payload (``{"op", "d", "s", "t"}``); None if it does not decode."""
        if self._payload is _UNDECODED:
            try:
                self._payload = decode_payload(self.raw, self.encoding)
            except CodecError:
                self._payload = None
        return self._payload

    @property
    def d(self) -> Any:
        payload = self.payload
        return payload.get("d") if isinstance(payload, dict) else None

    def describe(self) -> str:
        name = self.t or (opcode_name(self.op) if self.op is not None else "undecodable payload")
        seq = f" s={self.s}" if self.s is not None else ""
        return f"{self.direction.label} {name}{seq} on connection {self.conn}"


def client_frame(conn: int, raw: bytes, encoding: Encoding) -> Frame:
    """A client payload, decoded for its op (clients send no s or t)."""
    frame = Frame(Direction.CLIENT, conn, None, None, None, raw, encoding)
    payload = frame.payload
    if isinstance(payload, dict) and type(payload.get("op")) is int:
        frame.op = payload["op"]
    return frame


Match = Callable[[Frame], bool]


def frame_match(
    event: str | None = None,
    op: int | str | None = None,
    predicate: Callable[[Frame], object] | None = None,
    direction: str | None = None,
) -> tuple[Match, str]:
    """A match for :meth:`FrameLog.watch` and what it waits for, in words. ``direction``
    is ``"server"`` (frames the replay sent), ``"client"`` (payloads the client sent) or
    ``"any"``; by default the side that sends what is asked for: server for ``event``, the
    sender of ``op`` (client for op 1, HEARTBEAT, which both sides send), client for a
    ``predicate`` alone. :class:`ValueError` for a wait that could never match."""
    if event is None and op is None and predicate is None:
        raise ValueError("wait_for needs event=, op= or predicate=")
    opcode: int | None = None
    if op is not None:
        opcode = parse_opcode(op) if isinstance(op, str) else int(op)
    if direction is None:
        if event is not None:
            direction = "server"
        elif opcode is not None and isinstance(known := as_opcode(opcode), Opcode):
            sent_by = known.sent_by
            direction = "server" if sent_by == {Direction.SERVER} else "client"
        else:
            direction = "client"
    sides = {"server": {Direction.SERVER}, "client": {Direction.CLIENT},
             "any": {Direction.SERVER, Direction.CLIENT}}  # fmt: skip
    if direction not in sides:
        raise ValueError(f"direction={direction!r}: expected 'server', 'client' or 'any'")
    if event is not None and direction == "client":
        raise ValueError(f"event={event!r}: clients send no dispatches (direction='server')")
    wanted = sides[direction]
    name = event.upper() if event is not None else None

    def match(frame: Frame) -> bool:
        if frame.direction not in wanted:
            return False
        if name is not None and frame.t != name:
            return False
        if opcode is not None and frame.op != opcode:
            return False
        return predicate is None or bool(predicate(frame))

    parts = []
    if name is not None:
        parts.append(f"dispatch {name}")
    if opcode is not None:
        parts.append(f"op {opcode_name(opcode)}")
    if predicate is not None:
        parts.append(f"frame accepted by {getattr(predicate, '__name__', 'predicate')}()")
    who = {"server": "sent by the replay", "client": "sent by the client", "any": "either way"}
    return match, f"{' and '.join(parts)} ({who[direction]})"


@dataclass(eq=False)
class _Wait:
    match: Match
    remaining: int
    on_match: Callable[[Frame], object]
    on_error: Callable[[BaseException], object]


class FrameLog:
    """Every frame of a replay so far, and the waits not yet satisfied."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._waits: list[_Wait] = []

    def add(self, frame: Frame) -> None:
        frame.index = len(self.frames)
        self.frames.append(frame)
        for wait in list(self._waits):
            self._offer(wait, frame)

    def watch(
        self,
        match: Match,
        on_match: Callable[[Frame], object],
        on_error: Callable[[BaseException], object],
        nth: int = 1,
    ) -> object:
        """Call ``on_match(frame)`` with the ``nth`` frame of the whole log that matches
        (one already in it: at once), or ``on_error(exc)`` if ``match`` raises. Returns
        a handle for :meth:`unwatch`."""
        if nth < 1:
            raise ValueError(f"nth={nth}: must be at least 1")
        wait = _Wait(match, nth, on_match, on_error)
        self._waits.append(wait)
        for frame in list(self.frames):
            if wait not in self._waits:
                break
            self._offer(wait, frame)
        return wait

    def unwatch(self, handle: object) -> None:
        if handle in self._waits:
            self._waits.remove(handle)

    @property
    def waiting(self) -> int:
        return len(self._waits)

    def _offer(self, wait: _Wait, frame: Frame) -> None:
        try:
            hit = wait.match(frame)
        except Exception as exc:
            self._waits.remove(wait)
            wait.on_error(exc)
            return
        if hit:
            wait.remaining -= 1
            if wait.remaining == 0:
                self._waits.remove(wait)
                wait.on_match(frame)

    def describe(self) -> str:
        """``412 frames on 2 connections; the last: server MESSAGE_CREATE s=40 on ...``."""
        if not self.frames:
            return "no frames yet (no client connected?)"
        conns = len({f.conn for f in self.frames})
        return (
            f"{len(self.frames)} frames on {conns} connection{'s' if conns != 1 else ''}; "
            f"the last: {self.frames[-1].describe()}"
        )
