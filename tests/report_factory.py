"""Conformance report dicts for the report writers' tests, as ``replayer conform`` writes
them (docs/conformance/results-schema.md). Pure: the builders return plain dicts;
:func:`write_logs` is the one that touches the disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# What a hostile client prints or sends as a close reason: markup, quotes, an ANSI colour
# (ESC), a NUL and a character outside the BMP.
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp; \' \x1b[31mred\x00 🦀'


def frame(t_ms: float, direction: str, op: int, t: str | None = None) -> dict[str, Any]:
    return {"t_ms": t_ms, "dir": direction, "op": op, "t": t}


def connection(
    conn_id: int,
    opened_ms: float,
    closed_ms: float | None,
    close: dict[str, Any] | None,
    frames: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "id": conn_id,
        "kind": "gateway",
        "opened_ms": opened_ms,
        "closed_ms": closed_ms,
        "close": close,
        "frames": frames,
    }


def handshake(t0_ms: float, *, resume: bool = False) -> list[dict[str, Any]]:
    """HELLO, IDENTIFY (or RESUME), READY (or RESUMED), a heartbeat and its ACK."""
    return [
        frame(t0_ms + 1.0, "server", 10),
        frame(t0_ms + 5.0, "client", 6 if resume else 2),
        frame(t0_ms + 9.0, "server", 0, "RESUMED" if resume else "READY"),
        frame(t0_ms + 40.0, "client", 1),
        frame(t0_ms + 41.0, "server", 11),
    ]


def verdict(
    name: str,
    result: str,
    *,
    expected: str = "a RESUME of the session with the last seq received",
    observed: str = "RESUME on conn 2",
    docs: str = "Events > Gateway > Resuming",
    connection: int | None = 1,
) -> dict[str, Any]:
    return {
        "name": name,
        "result": result,
        "passed": result in ("PASS", "NON-STRICT"),
        "docs": docs,
        "expected": expected,
        "observed": observed,
        "t_fault_ms": 100.0,
        "reaction_ms": 30.0,
        "connection": connection,
        "notes": [],
    }


def case(
    case_id: str,
    title: str,
    result: str,
    *,
    group_title: str,
    verdicts: list[dict[str, Any]] | None = None,
    connections: list[dict[str, Any]] | None = None,
    faults: list[dict[str, Any]] | None = None,
    reactions: list[dict[str, Any]] | None = None,
    plan: list[str] | None = None,
    expected: str = "closes with a non-1000 code and RESUMEs at the resume URL",
    observed: str = "RESUME on conn 2 at resume_gateway_url, seq 12",
    duration_ms: int = 2345,
) -> dict[str, Any]:
    if connections is None:
        connections = [connection(1, 0.0, None, None, handshake(0.0))]
    if verdicts is None:
        verdicts = [] if result == "INFO" else [verdict("rule-" + case_id, result)]
    return {
        "id": case_id,
        "group": int(case_id.split(".", maxsplit=1)[0]),
        "group_title": group_title,
        "title": title,
        "docs": "Gateway > Resuming",
        "archive": "small-bot.rpl",
        "plan": plan or [],
        "rules": [v["name"] for v in verdicts],
        "time_limit_s": 20,
        "result": result,
        "duration_ms": duration_ms,
        "expected": expected,
        "observed": observed,
        "verdicts": verdicts,
        "client_output": f"cases/{case_id}/client.log",
        "exit": {"code": 0, "signal": None, "stopped_by": "replayer"},
        "timeline": {
            "duration_ms": duration_ms,
            "connections": connections,
            "faults": faults or [],
            "reactions": reactions or [],
        },
    }


def reconnect_connections(close_code: int, reason: str) -> list[dict[str, Any]]:
    """Two connections: the first closed by the client with ``close_code``, the second
    resuming."""
    return [
        connection(
            1,
            0.0,
            812.4,
            {"code": close_code, "by": "client", "reason": reason},
            [*handshake(0.0), frame(800.0, "server", 7)],
        ),
        connection(
            2,
            820.0,
            2300.0,
            {"code": 1000, "by": "server", "reason": ""},
            handshake(820.0, resume=True),
        ),
    ]


def report(agent: str, cases: list[dict[str, Any]], *, strict: bool = False) -> dict[str, Any]:
    summary = dict.fromkeys(("PASS", "NON-STRICT", "FAIL", "NOT FIRED", "INFO", "MISSING"), 0)
    for c in cases:
        summary[c["result"]] += 1
    return {
        "schema": "replayer-conform/1",
        "tool": {"name": "replayer", "version": "0.1.0"},
        "agent": agent,
        "client": {"kind": "adapter", "name": "discord.py", "command": ["python", "-m", "bot"]},
        "started_at": "2026-12-04T20:30:00Z",
        "duration_ms": 123456,
        "strict": strict,
        "summary": summary,
        "cases": cases,
    }


def sample_cases(*, hostile: str = HOSTILE) -> list[dict[str, Any]]:
    """Seven cases in four groups, every result but MISSING, out of id order (3.10 and 3.2),
    one with two connections, faults and reactions; ``hostile`` in a FAIL's strings."""
    reconnect_fault = [{"t_ms": 800.0, "conn": 1, "fault": "reconnect after-ready"}]
    return [
        case("1.1", "connect and IDENTIFY", "PASS", group_title="CONNECT AND IDENTIFY"),
        case(
            "3.10",
            "op 7 RECONNECT mid-stream",
            "PASS",
            group_title="RECONNECT",
            plan=["reconnect after-ready"],
            connections=reconnect_connections(4000, "reconnecting"),
            faults=reconnect_fault,
            reactions=[{"t_ms": 825.0, "conn": 2, "what": "RESUME"}],
        ),
        case(
            "3.2",
            "op 7 RECONNECT instead of HELLO " + hostile,
            "FAIL",
            group_title="RECONNECT",
            plan=["reconnect @hello"],
            verdicts=[
                verdict(
                    "reconnect-resumes",
                    "FAIL",
                    expected="a new connection that RESUMEs the session",
                    observed="IDENTIFY on conn 2 " + hostile,
                    docs="Events > Gateway Events > Reconnect",
                ),
                verdict("RESUMEs on resume_gateway_url", "PASS", connection=None),
            ],
            expected="a RESUME on a new connection",
            observed="a fresh IDENTIFY " + hostile,
            connections=reconnect_connections(4999, hostile),
            faults=[
                {"t_ms": 800.0, "conn": 1, "fault": "reconnect " + hostile},
                {"t_ms": 1500.0, "conn": None, "fault": "drop"},
            ],
            reactions=[{"t_ms": 826.0, "conn": 2, "what": "IDENTIFY " + hostile}],
        ),
        case(
            "2.3",
            "heartbeat on schedule",
            "NON-STRICT",
            group_title="HEARTBEAT",
            verdicts=[
                verdict("heartbeat-interval", "NON-STRICT", observed="a gap of 1.6 intervals")
            ],
            expected="a HEARTBEAT every heartbeat_interval",
            observed="a gap of 1.6 intervals",
        ),
        case(
            "2.4",
            "op 1 HEARTBEAT request",
            "NOT FIRED",
            group_title="HEARTBEAT",
            plan=["heartbeat-request @dispatch=5000"],
            verdicts=[verdict("heartbeat-request", "NOT FIRED", observed="the trigger never came")],
            observed="the trigger never came",
        ),
        case(
            "9.1",
            "what the client sends in IDENTIFY",
            "INFO",
            group_title="RECORDED",
            observed="intents 513",
        ),
        case("2.1", "first heartbeat jittered", "PASS", group_title="HEARTBEAT"),
    ]


def sample_report(
    agent: str = "discord.py 2.7.1", *, strict: bool = False, hostile: str = HOSTILE
) -> dict[str, Any]:
    return report(agent, sample_cases(hostile=hostile), strict=strict)


def client_log_text(case_id: str, agent: str) -> str:
    return f"[{agent}] case {case_id}: connecting\n{HOSTILE}\n\x1b[0mdone\n"


def shown(text: str) -> str:
    """``text`` as the reports show it: the control characters of HOSTILE as escapes."""
    return text.replace("\x1b", "\\x1b").replace("\x00", "\\x00")


def write_logs(
    report_dir: Path, report_dict: dict[str, Any], *, size_bytes: int | None = None
) -> None:
    """Write each case's client log where its report says (``size_bytes``: padded to that)."""
    for c in report_dict["cases"]:
        path = report_dir / c["client_output"]
        path.parent.mkdir(parents=True, exist_ok=True)
        text = client_log_text(c["id"], report_dict["agent"])
        if size_bytes is not None:
            filler = "".join(
                f"line {i} of the client's chatter\n" for i in range(size_bytes // 30 + 1)
            )
            text = ("FIRST LINE\n" + filler)[: size_bytes - len(text)] + text
        path.write_text(text, encoding="utf-8")
