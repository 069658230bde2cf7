"""results.json read into typed records: the one place that knows the schema's fields.

The report writers take what :func:`parse_report` gives, so a field they show is a field
checked here. Unknown fields are allowed (the schema only ever adds fields) and ignored;
a missing optional field gets its empty value. A bad field is a :class:`ReportError`
naming the file and the field (``cases[3].timeline.connections[0].close.code``).
Schema: docs/conformance/results-schema.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replayer.errors import ReplayerError

SCHEMA_PREFIX = "replayer-conform/"
SCHEMA_MAJOR = 1
SCHEMA = f"{SCHEMA_PREFIX}{SCHEMA_MAJOR}"

# The results, best first; a case's result is the worst of its verdicts (INFO: it judges
# nothing; MISSING: only in a merged matrix, a case an agent did not run).
PASS = "PASS"
NON_STRICT = "NON-STRICT"
FAIL = "FAIL"
NOT_FIRED = "NOT FIRED"
INFO = "INFO"
MISSING = "MISSING"
RESULTS = (PASS, NON_STRICT, FAIL, NOT_FIRED, INFO, MISSING)
# A verdict's result: still open (None) only in a run that was cut short.
VERDICT_RESULTS = (PASS, NON_STRICT, FAIL, NOT_FIRED)

_CASE_ID = re.compile(r"[0-9]+(\.[0-9]+)*")


class ReportError(ReplayerError, ValueError):
    """A results.json that does not follow the schema: ``path: field 'x': message``."""

    def __init__(self, message: str, *, path: str, field: str | None = None) -> None:
        where = path if field is None else f"{path}: field {field!r}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.field = field


@dataclass(frozen=True)
class VerdictRow:
    name: str
    result: str | None
    docs: str
    expected: str
    observed: str
    t_fault_ms: float | None
    reaction_ms: float | None
    connection: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Close:
    code: int | None
    by: str
    reason: str


@dataclass(frozen=True)
class Frame:
    t_ms: float
    dir: str  # "server" | "client"
    op: int | None
    t: str | None


@dataclass(frozen=True)
class Connection:
    id: int
    kind: str
    opened_ms: float
    closed_ms: float | None
    close: Close | None
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class Mark:
    """A fault injected or a reaction of the client: when, on which connection, what."""

    t_ms: float
    conn: int | None
    what: str


@dataclass(frozen=True)
class Timeline:
    duration_ms: float
    connections: tuple[Connection, ...]
    faults: tuple[Mark, ...]
    reactions: tuple[Mark, ...]


@dataclass(frozen=True)
class Exit:
    code: int | None
    signal: str | None
    stopped_by: str | None


@dataclass(frozen=True)
class Case:
    id: str
    group: int
    group_title: str
    title: str
    docs: str
    archive: str
    plan: tuple[str, ...]
    rules: tuple[str, ...]
    time_limit_s: float | None
    result: str
    duration_ms: float
    expected: str
    observed: str
    verdicts: tuple[VerdictRow, ...]
    client_output: str | None  # relative to the report directory
    exit: Exit | None
    timeline: Timeline | None

    @property
    def sort_key(self) -> tuple[int, ...]:
        return case_sort_key(self.id)


@dataclass(frozen=True)
class Report:
    schema: str
    tool: str  # "replayer 0.1.0"
    agent: str
    client_kind: str
    client_name: str
    client_command: tuple[str, ...]
    started_at: str
    duration_ms: float
    strict: bool
    cases: tuple[Case, ...]

    def counts(self) -> dict[str, int]:
        """Cases per result, every result present (the summary, counted from the cases)."""
        counts = dict.fromkeys(RESULTS, 0)
        for case in self.cases:
            counts[case.result] += 1
        return counts


def case_sort_key(case_id: str) -> tuple[int, ...]:
    """``"3.10"`` after ``"3.9"``: ids sort by their numeric parts."""
    return tuple(int(part) for part in case_id.split("."))


class _Reader:
    """Reads one value of the document, naming where it is when it is wrong."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field: str, message: str) -> ReportError:
        return ReportError(message, path=self.path, field=field)

    def obj(self, value: object, field: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"expected an object, got {_kind(value)}")
        return value

    def items(self, value: object, field: str) -> Sequence[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {_kind(value)}")
        return value

    def text(self, value: object, field: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"expected a string, got {_kind(value)}")
        return value

    def opt_text(self, value: object, field: str) -> str | None:
        return None if value is None else self.text(value, field)

    def integer(self, value: object, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"expected an integer, got {_kind(value)}")
        return value

    def opt_integer(self, value: object, field: str) -> int | None:
        return None if value is None else self.integer(value, field)

    def num(self, value: object, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise self.fail(field, f"expected a finite number, got {value}")
        return float(value)

    def opt_num(self, value: object, field: str) -> float | None:
        return None if value is None else self.num(value, field)

    def flag(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, f"expected true or false, got {_kind(value)}")
        return value

    def texts(self, value: object, field: str) -> tuple[str, ...]:
        items = self.items(value, field)
        return tuple(self.text(item, f"{field}[{i}]") for i, item in enumerate(items))

    def choice(self, value: object, field: str, choices: Sequence[str]) -> str:
        text = self.text(value, field)
        if text not in choices:
            raise self.fail(field, f"{text!r} is not one of {', '.join(choices)}")
        return text


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )


def parse_report(data: object, *, path: str = "results.json") -> Report:
    """The report in ``data`` (a parsed results.json), checked; :class:`ReportError` if not."""
    r = _Reader(path)
    doc = r.obj(data, "(top level)")
    schema = r.text(doc.get("schema"), "schema")
    major = schema.removeprefix(SCHEMA_PREFIX)
    if not schema.startswith(SCHEMA_PREFIX) or not major.isdigit():
        raise r.fail("schema", f"{schema!r} is not a replayer-conform report")
    if int(major) != SCHEMA_MAJOR:
        raise r.fail("schema", f"{schema!r}: this replayer reads {SCHEMA}")
    tool = r.obj(doc.get("tool", {}), "tool")
    tool_text = " ".join(
        part
        for part in (
            r.text(tool.get("name", "replayer"), "tool.name"),
            r.text(tool.get("version", ""), "tool.version"),
        )
        if part
    )
    client = r.obj(doc.get("client", {}), "client")
    cases_raw = r.items(doc.get("cases"), "cases")
    cases = tuple(_case(r, raw, f"cases[{i}]") for i, raw in enumerate(cases_raw))
    seen: set[str] = set()
    for i, case in enumerate(cases):
        if case.id in seen:
            raise r.fail(f"cases[{i}].id", f"case {case.id} is listed twice")
        seen.add(case.id)
    return Report(
        schema=schema,
        tool=tool_text,
        agent=r.text(doc.get("agent"), "agent"),
        client_kind=r.text(client.get("kind", ""), "client.kind"),
        client_name=r.text(client.get("name", ""), "client.name"),
        client_command=r.texts(client.get("command", []), "client.command"),
        started_at=r.text(doc.get("started_at", ""), "started_at"),
        duration_ms=r.num(doc.get("duration_ms", 0), "duration_ms"),
        strict=r.flag(doc.get("strict", False), "strict"),
        cases=cases,
    )


def _case(r: _Reader, raw: object, at: str) -> Case:
    c = r.obj(raw, at)
    case_id = r.text(c.get("id"), f"{at}.id")
    if not _CASE_ID.fullmatch(case_id):
        raise r.fail(f"{at}.id", f"{case_id!r} is not a case id like 3.1")
    verdicts = r.items(c.get("verdicts", []), f"{at}.verdicts")
    timeline = c.get("timeline")
    exit_ = c.get("exit")
    return Case(
        id=case_id,
        group=r.integer(c.get("group"), f"{at}.group"),
        group_title=r.text(c.get("group_title", ""), f"{at}.group_title"),
        title=r.text(c.get("title", ""), f"{at}.title"),
        docs=r.text(c.get("docs", ""), f"{at}.docs"),
        archive=r.text(c.get("archive", ""), f"{at}.archive"),
        plan=r.texts(c.get("plan", []), f"{at}.plan"),
        rules=r.texts(c.get("rules", []), f"{at}.rules"),
        time_limit_s=r.opt_num(c.get("time_limit_s"), f"{at}.time_limit_s"),
        result=r.choice(c.get("result"), f"{at}.result", RESULTS),
        duration_ms=r.num(c.get("duration_ms", 0), f"{at}.duration_ms"),
        expected=r.text(c.get("expected", ""), f"{at}.expected"),
        observed=r.text(c.get("observed", ""), f"{at}.observed"),
        verdicts=tuple(_verdict(r, v, f"{at}.verdicts[{i}]") for i, v in enumerate(verdicts)),
        client_output=r.opt_text(c.get("client_output"), f"{at}.client_output"),
        exit=None if exit_ is None else _exit(r, exit_, f"{at}.exit"),
        timeline=None if timeline is None else _timeline(r, timeline, f"{at}.timeline"),
    )


def _verdict(r: _Reader, raw: object, at: str) -> VerdictRow:
    v = r.obj(raw, at)
    result = v.get("result")
    return VerdictRow(
        name=r.text(v.get("name"), f"{at}.name"),
        result=None if result is None else r.choice(result, f"{at}.result", VERDICT_RESULTS),
        docs=r.text(v.get("docs", ""), f"{at}.docs"),
        expected=r.text(v.get("expected", ""), f"{at}.expected"),
        observed=r.text(v.get("observed", ""), f"{at}.observed"),
        t_fault_ms=r.opt_num(v.get("t_fault_ms"), f"{at}.t_fault_ms"),
        reaction_ms=r.opt_num(v.get("reaction_ms"), f"{at}.reaction_ms"),
        connection=r.opt_integer(v.get("connection"), f"{at}.connection"),
        notes=r.texts(v.get("notes", []), f"{at}.notes"),
    )


def _exit(r: _Reader, raw: object, at: str) -> Exit:
    e = r.obj(raw, at)
    signal = e.get("signal")
    # A signal may be given by number or by name.
    signal_text = (
        None
        if signal is None
        else str(r.integer(signal, f"{at}.signal"))
        if not isinstance(signal, str)
        else signal
    )
    return Exit(
        code=r.opt_integer(e.get("code"), f"{at}.code"),
        signal=signal_text,
        stopped_by=r.opt_text(e.get("stopped_by"), f"{at}.stopped_by"),
    )


def _timeline(r: _Reader, raw: object, at: str) -> Timeline:
    t = r.obj(raw, at)
    conns = r.items(t.get("connections", []), f"{at}.connections")
    faults = r.items(t.get("faults", []), f"{at}.faults")
    reactions = r.items(t.get("reactions", []), f"{at}.reactions")
    return Timeline(
        duration_ms=r.num(t.get("duration_ms", 0), f"{at}.duration_ms"),
        connections=tuple(_connection(r, c, f"{at}.connections[{i}]") for i, c in enumerate(conns)),
        faults=tuple(_mark(r, m, f"{at}.faults[{i}]", "fault") for i, m in enumerate(faults)),
        reactions=tuple(
            _mark(r, m, f"{at}.reactions[{i}]", "what") for i, m in enumerate(reactions)
        ),
    )


def _connection(r: _Reader, raw: object, at: str) -> Connection:
    c = r.obj(raw, at)
    close = c.get("close")
    frames = r.items(c.get("frames", []), f"{at}.frames")
    return Connection(
        id=r.integer(c.get("id"), f"{at}.id"),
        kind=r.text(c.get("kind", "gateway"), f"{at}.kind"),
        opened_ms=r.num(c.get("opened_ms", 0), f"{at}.opened_ms"),
        closed_ms=r.opt_num(c.get("closed_ms"), f"{at}.closed_ms"),
        close=None if close is None else _close(r, close, f"{at}.close"),
        frames=tuple(_frame(r, f, f"{at}.frames[{i}]") for i, f in enumerate(frames)),
    )


def _close(r: _Reader, raw: object, at: str) -> Close:
    c = r.obj(raw, at)
    return Close(
        code=r.opt_integer(c.get("code"), f"{at}.code"),
        by=r.text(c.get("by", ""), f"{at}.by"),
        reason=r.text(c.get("reason", "") or "", f"{at}.reason"),
    )


def _frame(r: _Reader, raw: object, at: str) -> Frame:
    f = r.obj(raw, at)
    return Frame(
        t_ms=r.num(f.get("t_ms"), f"{at}.t_ms"),
        dir=r.choice(f.get("dir"), f"{at}.dir", ("server", "client")),
        op=r.opt_integer(f.get("op"), f"{at}.op"),
        t=r.opt_text(f.get("t"), f"{at}.t"),
    )


def _mark(r: _Reader, raw: object, at: str, what: str) -> Mark:
    m = r.obj(raw, at)
    return Mark(
        t_ms=r.num(m.get("t_ms"), f"{at}.t_ms"),
        conn=r.opt_integer(m.get("conn"), f"{at}.conn"),
        what=r.text(m.get(what), f"{at}.{what}"),
    )


def read_report(path: Path) -> tuple[Report, dict[str, Any]]:
    """A report directory's results.json (``path``): the checked report and the raw object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(
            "no such file (is this a `replayer conform` report?)", path=str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read it: {exc}", path=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}", path=str(path)
        ) from exc
    except RecursionError:
        raise ReportError("not JSON: nested too deeply", path=str(path)) from None
    report = parse_report(data, path=str(path))
    return report, data


def dump_json(data: object) -> str:
    """results.json's bytes: sorted keys, indent 2, one newline at the end: stable."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
