"""Decides when planned faults fire. Pure: the engine reports what happened (a dispatch
sent, a client payload, a connection ready, time passing) and gets back the faults due.
Each occurrence fires once in the whole replay."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from replayer.replay.faults import Fault, FaultPlan


class FaultInjector:
    def __init__(self, plan: FaultPlan) -> None:
        self.pending: list[Fault] = plan.expanded()
        self.fired: list[Fault] = []
        self._events: Counter[tuple[str, str]] = Counter()  # (session_id, event) -> sent
        self._t0_ns: int | None = None
        self._phases: Counter[tuple[str, int | None]] = Counter()  # (step, conn) -> reached
        self.live = 0  # run-time faults due now, not yet taken (due_now)

    def _take(self, due: list[Fault]) -> list[Fault]:
        for fault in due:
            self.pending.remove(fault)
            self.fired.append(fault)
        return due

    def arm(self, fault: Fault) -> None:
        """A fault injected at run time with a trigger: pending like a planned one (each
        occurrence of ``times``)."""
        self.pending.extend(fault.occurrence(k) for k in range(fault.times))

    def inject_now(self, fault: Fault, conn: int) -> Fault:
        """A fault injected at run time without a trigger: due on connection ``conn`` at
        its next :meth:`due_now` (pending until then; NOT FIRED if that never comes)."""
        now = replace(fault, trigger=replace(fault.trigger, now=True, conn=conn))
        self.pending.append(now)
        self.live += 1
        return now

    def due_now(self, conn: int) -> list[Fault]:
        """The run-time faults injected on ``conn`` that have not fired yet."""
        if not self.live:
            return []
        due = [f for f in self.pending if f.trigger.now and f.trigger.conn == conn]
        self.live -= len(due)
        return self._take(due)

    def started(self, now_ns: int) -> None:
        """The replay's clock starts with its first connection."""
        if self._t0_ns is None:
            self._t0_ns = now_ns

    def after_dispatch(
        self, conn: int, session_id: str, event: str, s: int, dispatches: int
    ) -> list[Fault]:
        """A recorded dispatch went out: ``dispatches`` is how many the session has had."""
        self._events[(session_id, event)] += 1
        count = self._events[(session_id, event)]
        due = []
        for fault in self.pending:
            t = fault.trigger
            if t.conn is not None and t.conn != conn:
                continue
            if (
                (t.dispatch is not None and t.dispatch == dispatches)
                or (t.seq is not None and t.seq == s)
                or (t.event is not None and t.event == event and t.nth == count)
            ):
                due.append(fault)
        return self._take(due)

    def after_client_payload(self, conn: int, op: int, count: int) -> list[Fault]:
        """The client's ``count``-th payload of ``op`` on connection ``conn`` arrived."""
        due = [
            f
            for f in self.pending
            if f.trigger.client_op == op
            and f.trigger.nth == count
            and (f.trigger.conn is None or f.trigger.conn == conn)
        ]
        return self._take(due)

    def after_handshake(self, conn: int) -> list[Fault]:
        """Connection ``conn`` finished IDENTIFY (READY sent) or RESUME (RESUMED sent)."""
        due = [
            f
            for f in self.pending
            if f.trigger.conn == conn
            and not f.trigger.now
            and f.trigger.dispatch is None
            and f.trigger.seq is None
            and f.trigger.event is None
            and f.trigger.client_op is None
            and f.trigger.t_ms is None
            and f.trigger.phase is None
        ]
        return self._take(due)

    def at_phase(self, phase: str, conn: int) -> list[Fault]:
        """The handshake reached ``phase`` (hello, identify, resume) on ``conn``: the
        faults that answer it instead. ``phase=identify#2`` counts over the whole replay;
        with ``conn=N``, on that connection."""
        self._phases[(phase, None)] += 1
        self._phases[(phase, conn)] += 1
        due = [
            f
            for f in self.pending
            if f.trigger.phase == phase
            and (f.trigger.conn is None or f.trigger.conn == conn)
            and f.trigger.nth == self._phases[(phase, f.trigger.conn)]
        ]
        return self._take(due)

    def next_time_ns(self, conn: int | None = None) -> int | None:
        """When the next timed fault is due (on connection ``conn``, when given)."""
        if self._t0_ns is None:
            return None
        # Fix: filtered by connection as due_by_time() is (see GatewayConnection.next_wakeup_ns).
        times = [
            self._t0_ns + f.trigger.t_ms * 1_000_000
            for f in self.pending
            if f.trigger.t_ms is not None
            and (conn is None or f.trigger.conn is None or f.trigger.conn == conn)
        ]
        return min(times, default=None)

    def due_by_time(self, conn: int, now_ns: int) -> list[Fault]:
        if self._t0_ns is None:
            return []
        due = [
            f
            for f in self.pending
            if f.trigger.t_ms is not None
            and now_ns >= self._t0_ns + f.trigger.t_ms * 1_000_000
            and (f.trigger.conn is None or f.trigger.conn == conn)
        ]
        return self._take(due)
