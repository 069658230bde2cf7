"""Voice faults: the short syntax of ``replay/faults.py`` (docs/faults.md), scoped to voice.

    KIND[:ARG]@KEY=VALUE[,KEY=VALUE...]

    voice-close:4015@voice=READY            close the voice WebSocket with 4015 after READY
    voice-close:4006@voice-op=SPEAKING#2    ... after the client's 2nd SPEAKING
    voice-drop@rtp=50                       voice TCP gone after 50 RTP packets came in
    voice-server-update:new-endpoint@rtp=20 a VOICE_SERVER_UPDATE on the main gateway,
                                            pointing at the voice face's other port
    voice-server-update:null@voice=SESSION_DESCRIPTION   ``endpoint: null``
    voice-server-update:new-token@voice=SESSION_DESCRIPTION   same endpoint, a new token
    dave-transition:7@voice=SESSION_DESCRIPTION   op 21 (transition 7, protocol 0)
    dave-epoch:8@voice=SESSION_DESCRIPTION        op 24 (transition 8, epoch 2)

Triggers: ``voice=OP[#k]`` (after the server's k-th message of that voice opcode),
``voice-op=OP[#k]`` (after the client's k-th payload of that opcode), ``rtp=N`` (after the
N-th RTP packet of the run), each with ``voice-conn=N`` (only on the N-th voice connection);
``times`` and ``every`` repeat a fault as in faults.py.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from replayer.replay.faults import FaultPlanError, _int
from replayer.voice.close_codes import VOICE_CLOSE_CODES
from replayer.voice.opcodes import VoiceOp


class VoiceFaultKind(enum.StrEnum):
    CLOSE = "voice-close"  # the voice WebSocket closed with a voice close code
    DROP = "voice-drop"  # the voice TCP connection gone without a close frame
    SERVER_UPDATE = "voice-server-update"  # a VOICE_SERVER_UPDATE mid-session (main gateway)
    DAVE_TRANSITION = "dave-transition"  # op 21 DAVE_PREPARE_TRANSITION
    DAVE_EPOCH = "dave-epoch"  # op 24 DAVE_PREPARE_EPOCH


class ServerUpdate(enum.StrEnum):
    """What a ``voice-server-update`` fault's VOICE_SERVER_UPDATE says."""

    NEW_ENDPOINT = "new-endpoint"  # another endpoint (the face's other port), a new token
    NULL = "null"  # endpoint null: the voice server is gone, being reallocated
    NEW_TOKEN = "new-token"  # the same endpoint, a new token


#: Faults that end the voice connection the client is on.
ENDS_CONNECTION = frozenset({VoiceFaultKind.CLOSE, VoiceFaultKind.DROP})
MAX_TRANSITION_ID = 0xFFFF


@dataclass(frozen=True)
class VoiceTrigger:
    """When a voice fault fires: exactly one of server_op, client_op, rtp."""

    server_op: int | None = None  # after the server's nth message of this opcode
    client_op: int | None = None  # after the client's nth payload of this opcode
    nth: int = 1
    rtp: int | None = None  # after the rtp-th RTP packet of the run
    conn: int | None = None  # only on the conn-th voice connection (1-based)

    def describe(self) -> str:
        if self.server_op is not None:
            text = f"after voice {VoiceOp(self.server_op).name} #{self.nth}"
        elif self.client_op is not None:
            text = f"after the client's voice {VoiceOp(self.client_op).name} #{self.nth}"
        else:
            text = f"after RTP packet {self.rtp}"
        return text + (f" on voice connection {self.conn}" if self.conn is not None else "")


@dataclass(frozen=True)
class VoiceFault:
    kind: VoiceFaultKind
    trigger: VoiceTrigger
    code: int | None = None  # voice-close
    update: ServerUpdate | None = None  # voice-server-update
    transition_id: int = 1  # dave-transition, dave-epoch
    times: int = 1
    every: int | None = None
    source: str = ""

    def describe(self) -> str:
        arg = ""
        if self.code is not None:
            arg = f" {self.code}"
        elif self.update is not None:
            arg = f" {self.update}"
        elif self.kind in (VoiceFaultKind.DAVE_TRANSITION, VoiceFaultKind.DAVE_EPOCH):
            arg = f" id {self.transition_id}"
        return f"{self.kind}{arg} {self.trigger.describe()}"

    def occurrence(self, k: int) -> VoiceFault:
        """The k-th repetition (0-based) as a fault of its own."""
        if k == 0:
            return self
        t = self.trigger
        if t.rtp is not None:
            t = replace(t, rtp=t.rtp + k * (self.every or t.rtp))
        else:
            t = replace(t, nth=t.nth + k * (self.every or t.nth))
        return replace(self, trigger=t, times=1)


def is_voice_fault(text: str) -> bool:
    """Whether a ``--fault`` is a voice one (its kind starts with ``voice-`` or ``dave-``)."""
    return is_voice_kind(text.strip().partition("@")[0].partition(":")[0])


_KEYS = frozenset({"voice", "voice-op", "rtp", "voice-conn", "times", "every"})
_SERVER_OPS = frozenset(
    {VoiceOp.HELLO, VoiceOp.READY, VoiceOp.SESSION_DESCRIPTION, VoiceOp.HEARTBEAT_ACK,
     VoiceOp.RESUMED}
)  # fmt: skip
_CLIENT_OPS = frozenset(
    {VoiceOp.IDENTIFY, VoiceOp.SELECT_PROTOCOL, VoiceOp.HEARTBEAT, VoiceOp.SPEAKING,
     VoiceOp.RESUME, VoiceOp.DAVE_TRANSITION_READY}
)  # fmt: skip


def _voice_op(value: object, where: str, allowed: frozenset[VoiceOp]) -> tuple[int, int]:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise FaultPlanError(f"{where}: expected an opcode name like READY, got {value!r}")
    name, _, nth = str(value).partition("#")
    names = ", ".join(op.name for op in sorted(allowed))
    try:
        op = VoiceOp[name.strip().upper()] if not name.strip().isdigit() else VoiceOp(int(name))
    except (KeyError, ValueError):
        raise FaultPlanError(f"{where}: {name!r} is not one of {names}") from None
    if op not in allowed:
        raise FaultPlanError(f"{where}: {op.name} is not one of {names}")
    return int(op), _int(nth, f"{where} (after #)") if nth else 1


def parse_voice_fault(text: str, where: str = "--fault") -> VoiceFault:
    """One voice fault in the short syntax; :class:`FaultPlanError` names what is wrong."""
    where = f"{where} {text!r}"
    head, at, tail = text.strip().partition("@")
    if not at or not tail.strip():
        raise FaultPlanError(f"{where}: a voice fault needs a trigger (@voice=READY, @rtp=50)")
    kind_text, _, arg = head.partition(":")
    spec: dict[str, object] = {"kind": kind_text.strip()}
    if arg.strip():
        spec["arg"] = arg.strip()
    for part in tail.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in _KEYS:
            raise FaultPlanError(
                f"{where}: {part.strip()!r} is not KEY=VALUE with a key of "
                f"{', '.join(sorted(_KEYS))}"
            )
        if key in spec:
            raise FaultPlanError(f"{where}: {key} given twice")
        spec[key] = value.strip()
    return voice_fault_from_mapping(spec, where, text)


def is_voice_kind(kind: object) -> bool:
    """Whether a fault kind (a ``--fault``'s head, a ``[[fault]]`` table's ``kind``) is voice's."""
    return isinstance(kind, str) and kind.strip().startswith(("voice-", "dave-"))


def voice_fault_from_mapping(
    spec: Mapping[str, object], where: str, source: str = ""
) -> VoiceFault:
    """A voice fault from the keys the short syntax and a TOML ``[[fault]]`` table share:
    ``kind``, ``arg`` (``code`` for voice-close), the triggers, ``times``, ``every``."""
    unknown = set(spec) - _KEYS - {"kind", "arg", "code"}
    if unknown:
        raise FaultPlanError(
            f"{where}: unknown field {sorted(unknown)[0]!r} "
            f"(known: kind, arg, code, {', '.join(sorted(_KEYS))})"
        )
    kind_value = spec.get("kind")
    try:
        kind = VoiceFaultKind(str(kind_value).strip())
    except ValueError:
        kinds = ", ".join(k.value for k in VoiceFaultKind)
        raise FaultPlanError(f"{where}: {kind_value!r} is not one of {kinds}") from None
    if "code" in spec and (kind is not VoiceFaultKind.CLOSE or "arg" in spec):
        raise FaultPlanError(f"{where}: field 'code': only voice-close takes one, instead of arg")
    given = spec.get("code", spec.get("arg"))
    arg = "" if given is None else str(given).strip()
    fields: dict[str, object] = {}
    if kind is VoiceFaultKind.CLOSE:
        if not arg:
            raise FaultPlanError(f"{where}: voice-close needs a code (voice-close:4015)")
        code = _int(given, f"{where}: code", 1000, 4999)
        if code < 4000 and code not in (1000, 1001, 1011):
            raise FaultPlanError(f"{where}: code {code} is neither a voice code nor 1000/1001/1011")
        if code >= 4000 and code not in VOICE_CLOSE_CODES:
            known = ", ".join(map(str, sorted(VOICE_CLOSE_CODES)))
            raise FaultPlanError(f"{where}: {code} is not a voice close code ({known})")
        fields["code"] = code
    elif kind is VoiceFaultKind.SERVER_UPDATE:
        try:
            fields["update"] = ServerUpdate(arg or "new-endpoint")
        except ValueError:
            kinds = ", ".join(u.value for u in ServerUpdate)
            raise FaultPlanError(f"{where}: {arg!r} is not one of {kinds}") from None
    elif kind in (VoiceFaultKind.DAVE_TRANSITION, VoiceFaultKind.DAVE_EPOCH):
        if arg:
            fields["transition_id"] = _int(given, f"{where}: transition id", 1, MAX_TRANSITION_ID)
    elif arg:
        raise FaultPlanError(f"{where}: {kind} takes no argument, got {arg!r}")
    chosen = [k for k in ("voice", "voice-op", "rtp") if k in spec]
    if len(chosen) != 1:
        raise FaultPlanError(f"{where}: exactly one of voice=, voice-op=, rtp= is needed")
    trigger: dict[str, int] = {}
    if "voice" in spec:
        trigger["server_op"], trigger["nth"] = _voice_op(
            spec["voice"], f"{where}: voice", _SERVER_OPS
        )
    elif "voice-op" in spec:
        trigger["client_op"], trigger["nth"] = _voice_op(
            spec["voice-op"], f"{where}: voice-op", _CLIENT_OPS
        )
    else:
        trigger["rtp"] = _int(spec["rtp"], f"{where}: rtp")
    if "voice-conn" in spec:
        trigger["conn"] = _int(spec["voice-conn"], f"{where}: voice-conn")
    times = _int(spec.get("times", 1), f"{where}: times", 1, 10_000)
    every = _int(spec["every"], f"{where}: every") if "every" in spec else None
    return VoiceFault(
        kind,
        VoiceTrigger(**trigger),
        times=times,
        every=every,
        source=source or where,
        **fields,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class VoicePlan:
    faults: tuple[VoiceFault, ...] = ()

    def expanded(self) -> list[VoiceFault]:
        return [f.occurrence(k) for f in self.faults for k in range(f.times)]


class VoiceInjector:
    """Which planned voice faults are due, told what happened (each fires once)."""

    def __init__(self, plan: VoicePlan) -> None:
        self.pending: list[VoiceFault] = plan.expanded()

    def _take(self, match: Callable[[VoiceFault], bool]) -> list[VoiceFault]:
        due = [f for f in self.pending if match(f)]
        for f in due:
            self.pending.remove(f)
        return due

    def after_server(self, conn: int, op: int, nth: int) -> list[VoiceFault]:
        return self._take(
            lambda f: (
                f.trigger.server_op == op
                and f.trigger.nth == nth
                and f.trigger.conn in (None, conn)
            )
        )

    def after_client(self, conn: int, op: int, nth: int) -> list[VoiceFault]:
        return self._take(
            lambda f: (
                f.trigger.client_op == op
                and f.trigger.nth == nth
                and f.trigger.conn in (None, conn)
            )
        )

    def after_rtp(self, conn: int | None, count: int) -> list[VoiceFault]:
        return self._take(
            lambda f: (
                f.trigger.rtp is not None
                and f.trigger.rtp <= count
                and f.trigger.conn in (None, conn)
            )
        )
