"""What the JUnit and HTML writers both show as text: the client's log (its last KiB), the
verdict table, and text made safe for XML 1.0."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from replayer.conform.reports.schema import Case, VerdictRow

# A case page and a <system-out> show this much of the end of the client's log.
CLIENT_LOG_TAIL_BYTES = 64 * 1024

# Characters XML 1.0 does not allow (C0 controls but tab, newline and CR; lone
# surrogates; U+FFFE and U+FFFF): a log with ANSI colours has ESC in it.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold shown as ``\\xNN`` / ``\\uNNNN``."""
    return _NOT_XML.sub(lambda m: _escaped(m.group()), text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass(frozen=True)
class ClientLog:
    """The end of a case's client log, or why there is none (``note``)."""

    text: str
    total_bytes: int
    shown_bytes: int
    note: str  # "" when the whole log is shown
    path: Path | None = None  # the file read (resolved), when there was one

    @property
    def truncated(self) -> bool:
        return self.shown_bytes < self.total_bytes


def read_client_log(
    report_dir: Path, case: Case, tail_bytes: int = CLIENT_LOG_TAIL_BYTES
) -> ClientLog:
    """The last ``tail_bytes`` of ``case``'s log, a file under ``report_dir``. A path that
    leads out of the report directory is not read (a report from elsewhere must not make
    a page show ``/etc/passwd``)."""
    if case.client_output is None:
        return ClientLog("", 0, 0, "no client output was kept for this case")
    base = report_dir.resolve()
    path = (base / case.client_output).resolve()
    if not path.is_relative_to(base):
        return ClientLog("", 0, 0, f"{case.client_output}: outside the report directory")
    try:
        with path.open("rb") as f:
            total = f.seek(0, 2)
            start = max(0, total - tail_bytes)
            f.seek(start)
            data = f.read()
    except OSError as exc:
        return ClientLog("", 0, 0, f"{case.client_output}: cannot read it ({exc.strerror})")
    if start:
        # Start at a line boundary when there is one close by, not mid-character.
        newline = data.find(b"\n", 0, 4096)
        if newline >= 0:
            data = data[newline + 1 :]
    text = data.decode("utf-8", errors="replace")
    note = ""
    if len(data) < total:
        note = f"the last {_kib(len(data))} of {_kib(total)} shown"
    return ClientLog(text, total, len(data), note, path)


def _kib(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.1f} KiB"


def verdict_table(verdicts: tuple[VerdictRow, ...]) -> str:
    """The verdicts as plain text, one block per verdict (JUnit failure bodies)."""
    if not verdicts:
        return "(no verdicts: this case judges nothing)"
    blocks = []
    for v in verdicts:
        lines = [f"{v.result or 'OPEN':<10} {v.name}"]
        if v.connection is not None:
            lines[0] += f" (connection {v.connection})"
        lines.append(f"  expected: {v.expected}")
        lines.append(f"  observed: {v.observed}")
        if v.docs:
            lines.append(f"  docs: {v.docs}")
        lines.extend(f"  note: {note}" for note in v.notes)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def broken_rules(case: Case) -> tuple[VerdictRow, ...]:
    """The verdicts that made the case fail (FAIL, then NOT FIRED), else the NON-STRICT ones."""
    for wanted in (("FAIL", "NOT FIRED"), ("NON-STRICT",)):
        rows = tuple(v for v in case.verdicts if v.result in wanted)
        if rows:
            return rows
    return ()
