"""Whether each planned fault can fire on an archive at all. A trigger that can never come
(an event the archive lacks, a dispatch or seq beyond its stream, an opcode clients never
send) would end NOT FIRED after the whole run; refusing it before the server starts turns
a typo into one line. Pure: a plan and a script in, the first problem out."""

from __future__ import annotations

from collections import Counter

from replayer.gateway.opcodes import Direction, Opcode, as_opcode
from replayer.replay.faults import Fault, FaultPlan, FaultPlanError
from replayer.replay.script import ReplayScript


def check_reachable(plan: FaultPlan, script: ReplayScript) -> None:
    """Raise :class:`FaultPlanError` naming the first fault whose trigger cannot come."""
    longest = max(len(s) for s in script.shards.values())
    counts: Counter[str] = Counter()
    for shard in script.shards.values():
        for event, n in Counter(shard.events).items():
            counts[event] = max(counts[event], n)
    # Each fault can add one dispatch of the replayer's own (a RESUMED, a RATE_LIMITED),
    # so s can run past the recorded stream by at most that many.
    occurrences = plan.expanded()
    max_seq = longest + len(occurrences)
    where = f"{script.path.name} ({longest} dispatches)"
    for fault in occurrences:
        problem = _problem(fault, counts, longest, max_seq, where)
        if problem is not None:
            name = fault.source or fault.describe()
            raise FaultPlanError(
                f"fault {name!r}: {problem}; it could never fire (--allow-unfired runs it anyway)"
            )


def _problem(
    fault: Fault, counts: Counter[str], longest: int, max_seq: int, where: str
) -> str | None:
    t = fault.trigger
    if t.event is not None:
        if t.event not in counts:
            known = ", ".join(sorted(counts))
            return f"field 'event': {t.event} never occurs in {where}; its events: {known}"
        if t.nth > counts[t.event]:
            return (
                f"field 'event': {t.event} #{t.nth} never comes: {where} has "
                f"{counts[t.event]} {t.event}"
            )
    if t.dispatch is not None and t.dispatch > longest:
        return f"field 'dispatch': {t.dispatch} is beyond the stream of {where}"
    if t.seq is not None and t.seq > max_seq:
        return (
            f"field 'seq': {t.seq} is beyond the stream of {where}, whose s reaches "
            f"{max_seq} at most with this plan"
        )
    if t.client_op is not None:
        op = as_opcode(t.client_op)
        if isinstance(op, Opcode) and Direction.CLIENT not in op.sent_by:
            return f"field 'client-op': clients never send {op.name} (op {int(op)})"
    return None
