"""Session starts and identify concurrency, sans-I/O: what ``/gateway/bot`` serves as
``session_start_limit``, which IDENTIFYs may start a session, and the verdicts on both.

Discord docs, Events > Gateway:
- Identifying: "Apps are limited by maximum concurrency (``max_concurrency``) when
  identifying. If your app exceeds this limit, Discord will respond with a Invalid Session
  (opcode 9)"; "Clients are limited to 1000 IDENTIFY calls [...] in a 24-hour period [...]
  does not include RESUME calls. Upon hitting this limit, all active sessions [...] will be
  terminated, the bot token will be reset".
- Sharding > Max Concurrency: ``rate_limit_key = shard_id % max_concurrency``; shards start
  by bucket, ``max_concurrency`` of them at a time.
- Session Start Limit Object: ``total``, ``remaining``, ``reset_after`` (ms) and
  ``max_concurrency`` ("number of identify requests allowed per 5 seconds").

Read together: each bucket takes one IDENTIFY per 5 s, so at most ``max_concurrency`` start
per 5 s in all (what discord.js, twilight and hikari's start-up windows do).
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from replayer.archive.records import HttpRecord
from replayer.replay.verdicts import Result, Verdict

NS_PER_MS = 1_000_000
IDENTIFY_WINDOW_NS = 5_000 * NS_PER_MS  # Session Start Limit Object: "per 5 seconds"
START_PERIOD_MS = 86_400_000  # Identifying: "1000 IDENTIFY calls [...] in a 24-hour period"
MAX_EXAMPLES = 5  # IDENTIFYs named in a verdict, per kind
FIELDS = ("total", "remaining", "reset_after", "max_concurrency")

DOCS_SESSION_STARTS = (
    "Events > Gateway > Identifying (1000 IDENTIFY calls per 24 hours); Session Start Limit "
    "Object; Events > Gateway > Resuming"
)
DOCS_CONCURRENCY = "Events > Gateway > Identifying; Events > Gateway > Sharding (Max Concurrency)"


class StartLimitError(ValueError):
    """A session start limit given by the user that cannot be one (names the field)."""


@dataclass(frozen=True, slots=True)
class SessionStartLimit:
    """The session start limit object (Events > Gateway > Session Start Limit Object)."""

    total: int = 1000
    remaining: int = 1000
    reset_after_ms: int = START_PERIOD_MS
    max_concurrency: int = 1

    def to_json(self) -> dict[str, int]:
        return {
            "total": self.total,
            "remaining": self.remaining,
            "reset_after": self.reset_after_ms,
            "max_concurrency": self.max_concurrency,
        }

    def with_overrides(self, text: str) -> SessionStartLimit:
        """``remaining=3,max_concurrency=16`` over this limit (any of FIELDS, each an
        integer; ``max_concurrency`` at least 1, the others at least 0)."""
        values = self.to_json()
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in FIELDS:
                raise StartLimitError(
                    f"{part!r}: expected KEY=INTEGER with KEY one of {', '.join(FIELDS)}"
                )
            try:
                number = int(value.strip())
            except ValueError:
                raise StartLimitError(f"{key}: {value.strip()!r} is not an integer") from None
            low = 1 if key == "max_concurrency" else 0
            if number < low:
                raise StartLimitError(f"{key}: {number} is below {low}")
            values[key] = number
        return _from_fields(values)


def _from_fields(values: dict[str, int]) -> SessionStartLimit:
    return SessionStartLimit(
        values["total"], values["remaining"], values["reset_after"], values["max_concurrency"]
    )


def recorded_limit(http: Iterable[HttpRecord]) -> SessionStartLimit | None:
    """The ``session_start_limit`` of the first recorded 200 answer to ``GET /gateway/bot``;
    None if the archive has none. Fields missing or not integers keep Discord's defaults
    (hikari, too, takes ``max(max_concurrency, 1)``)."""
    default = SessionStartLimit().to_json()
    for record in http:
        path = record.path.split("?", 1)[0].rstrip("/")
        if record.method.upper() != "GET" or record.status != 200:
            continue
        if not path.endswith("/gateway/bot"):
            continue
        try:
            body = json.loads(record.response_body)
        except ValueError:
            continue
        limit = body.get("session_start_limit") if isinstance(body, dict) else None
        if not isinstance(limit, dict):
            continue
        values = {
            key: limit[key] if type(limit.get(key)) is int and limit[key] >= 0 else default[key]
            for key in FIELDS
        }
        values["max_concurrency"] = max(1, values["max_concurrency"])
        return _from_fields(values)
    return None


class Admission(enum.Enum):
    """What the gateway does with one IDENTIFY."""

    START = "start"  # a new session: READY
    RATE_LIMITED = "rate limited"  # its bucket took one within 5 s: op 9 d=false
    EXHAUSTED = "exhausted"  # no session starts left: the token is reset (close 4004)


@dataclass(frozen=True, slots=True)
class _Identify:
    conn: int
    shard_id: int
    t_ns: int
    admission: Admission
    could_resume: str | None  # a session of this shard the client could have RESUMEd

    @property
    def t_s(self) -> float:
        return self.t_ns / 1e9


@dataclass
class SessionStarts:
    """The session start limit of one replay, and every IDENTIFY judged against it.

    ``concurrency``: refuse IDENTIFYs beyond ``max_concurrency`` per 5 s (op 9);
    ``enforce``: refuse IDENTIFYs once ``remaining`` is 0 (close 4004). Time is ``now_ns``
    on the server's clock, which starts at 0 with the replay: ``reset_after`` counts from
    there, and each reset opens a new 24-hour period with ``total`` starts.
    """

    limit: SessionStartLimit = field(default_factory=SessionStartLimit)
    concurrency: bool = True
    enforce: bool = True
    remaining: int = field(init=False)
    _reset_at_ns: int = field(init=False)
    _bucket_ns: dict[int, int] = field(init=False, default_factory=dict)
    # Bounded whatever the client sends: counts, and the first few of each kind as examples.
    counts: Counter[str] = field(init=False, default_factory=Counter)
    examples: dict[str, list[_Identify]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.remaining = self.limit.remaining
        self._reset_at_ns = self.limit.reset_after_ms * NS_PER_MS

    def _roll(self, now_ns: int) -> None:
        while now_ns >= self._reset_at_ns:
            self.remaining = self.limit.total
            self._reset_at_ns += START_PERIOD_MS * NS_PER_MS

    def current(self, now_ns: int) -> SessionStartLimit:
        """The limit as ``/gateway/bot`` serves it now."""
        self._roll(now_ns)
        left_ms = max(0, (self._reset_at_ns - now_ns) // NS_PER_MS)
        # Counted down in whole minutes (seconds under one), rounded up: two runs of the
        # same client serve the same answer, so their transcripts compare equal.
        step_ms = 60_000 if left_ms >= 60_000 else 1_000
        reset_after_ms = -(-left_ms // step_ms) * step_ms
        return replace(self.limit, remaining=self.remaining, reset_after_ms=reset_after_ms)

    def bucket(self, shard_id: int) -> int:
        """Sharding > Max Concurrency: ``rate_limit_key = shard_id % max_concurrency``."""
        return shard_id % self.limit.max_concurrency

    def identify(
        self, conn: int, shard_id: int, now_ns: int, could_resume: str | None = None
    ) -> Admission:
        """One IDENTIFY (never a RESUME) on connection ``conn``: whether it starts a
        session. ``could_resume``: the id of a session of the same shard that was still
        resumable, with no connection (the start is burned where a RESUME would do)."""
        self._roll(now_ns)
        bucket = self.bucket(shard_id)
        last = self._bucket_ns.get(bucket)
        if self.concurrency and last is not None and now_ns - last < IDENTIFY_WINDOW_NS:
            admission = Admission.RATE_LIMITED
        elif self.enforce and self.remaining <= 0:
            admission = Admission.EXHAUSTED
        else:
            admission = Admission.START
            self.remaining = max(0, self.remaining - 1)
            self._bucket_ns[bucket] = now_ns
        kind = "burned" if admission is Admission.START and could_resume else admission.value
        self.counts["identify"] += 1
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(_Identify(conn, shard_id, now_ns, admission, could_resume))
        return admission

    # --- verdicts ----------------------------------------------------------------------

    def verdicts(self) -> list[Verdict]:
        """ "session starts" once any IDENTIFY came; "identify concurrency" once two did
        (with the rule on): one alone cannot exceed it."""
        if not self.counts["identify"]:
            return []
        out = [self._starts_verdict()]
        if self.concurrency and self.counts["identify"] > 1:
            out.append(self._concurrency_verdict())
        return out

    def _listed(self, kind: str, what: str) -> str:
        shown = self.examples.get(kind, [])
        text = ", ".join(what.format(i=i, bucket=self.bucket(i.shard_id)) for i in shown)
        more = self.counts[kind] - len(shown)
        return text + (f" and {more} more" if more > 0 else "")

    def _starts_verdict(self) -> Verdict:
        limit = self.limit
        started = self.counts[Admission.START.value] + self.counts["burned"]
        burned = self.counts["burned"]
        refused = self.counts[Admission.EXHAUSTED.value]
        observed = [
            f"{started} session start{'s' * (started != 1)}, {self.remaining} of {limit.total} left"
        ]
        if burned:
            observed.append(
                f"{burned} where a RESUME would do: "
                + self._listed("burned", "connection {i.conn} (shard {i.shard_id}, session "
                               "{i.could_resume} resumable)")
            )  # fmt: skip
        if refused:
            observed.append(
                f"{refused} with none left, closed 4004 as Discord resets the token: "
                + self._listed(Admission.EXHAUSTED.value, "connection {i.conn}")
            )
        result = Result.FAIL if refused else Result.NON_STRICT if burned else Result.PASS
        return Verdict(
            name="session starts",
            expected=(
                f"at most {limit.remaining} session starts (remaining), and a fresh "
                "IDENTIFY only where no session could be RESUMEd"
            ),
            observed="; ".join(observed),
            result=result,
            docs=DOCS_SESSION_STARTS,
        )

    def _concurrency_verdict(self) -> Verdict:
        limited = self.counts[Admission.RATE_LIMITED.value]
        mc = self.limit.max_concurrency
        total = self.counts["identify"]
        observed = f"{total} IDENTIFYs, none refused"
        if limited:
            observed = f"{total} IDENTIFYs, {limited} refused with op 9: " + self._listed(
                Admission.RATE_LIMITED.value,
                "connection {i.conn} (shard {i.shard_id}, bucket {bucket}, "
                "{i.t_s:.1f} s into the replay)",
            )
        return Verdict(
            name="identify concurrency",
            expected=(
                f"at most one IDENTIFY per 5 s in each bucket shard_id % {mc} "
                f"(max_concurrency {mc})"
            ),
            observed=observed,
            result=Result.NON_STRICT if limited else Result.PASS,
            docs=DOCS_CONCURRENCY,
        )


def limit_for(http: Iterable[HttpRecord], given: SessionStartLimit | None) -> SessionStartLimit:
    """The limit a replay serves: ``given`` (options), else the archive's, else Discord's
    default for a new bot (1000 a day, ``max_concurrency`` 1)."""
    if given is not None:
        return given
    return recorded_limit(http) or SessionStartLimit()
