"""pytest plugin (entry point ``pytest11``): a fake Discord gateway per test.

    @pytest.mark.replayer(archive="recordings/small-bot.rpl", faults=["reconnect@event=READY"])
    async def test_my_bot_resumes(replayer_gateway):
        bot = make_bot(rest=replayer_gateway.rest_base, gateway=replayer_gateway.gateway_url)
        ...
        replayer_gateway.wait_for_verdicts(timeout=30)  # every planned fault judged
        assert replayer_gateway.passed, replayer_gateway.report()

The server runs on its own event loop in a background thread, bound to 127.0.0.1 on a
free port, so the fixture works the same for sync tests, pytest-asyncio and anyio. A
failed test that used the fixture gets the verdict table as a report section.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import Record
from replayer.replay.engine import ReplayOptions
from replayer.replay.faults import FaultPlan, combine, load_plan, parse_fault
from replayer.replay.intents import parse_grant
from replayer.replay.reachability import check_reachable
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.starts import StartLimitError, limit_for
from replayer.replay.verdicts import Verdict, all_ok, summary
from replayer.replay.voice.faults import VoicePlan, is_voice_fault, parse_voice_fault
from replayer.replay.voice_server import VoiceOptions

MARKER = "replayer"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(archive, faults=(), plan=None, speed=0, token=None, at_end=None, "
        "heartbeat_interval_ms=None, recorded_faults=True, allow_unfired=False, strict=False, "
        "session_start_limit=None, identify_concurrency=True, enforce_session_start_limit=True, "
        "check_intents=True, grant_intents=None, filter_intents=True, check_shards=True, "
        "require_sharding=False, reroute_shards=True, validate_payloads=True, "
        "payload_compression=True, answer_from_state=True, member_rate_limit_s=30.0, "
        "voice=False, ca_dir=None, options={}): "
        "the archive and faults the replayer_gateway fixture serves",
    )


@dataclass
class GatewaySettings:
    archive: Path
    faults: Sequence[str] = ()
    plan: Path | None = None
    speed: float = 0.0
    token: str | None = None
    at_end: int | None = None  # close code after the last dispatch; None: stay
    verdict_window_ms: int = 15_000
    heartbeat_interval_ms: int | None = None  # HELLO's interval; None: the recorded one
    recorded_faults: bool = True  # replay the archive's own op 7 / op 9 / closes / drops
    allow_unfired: bool = False  # serve a plan whose triggers cannot all come
    strict: bool = False  # NON-STRICT verdicts fail ``passed`` too
    # Item 6 of #15: "remaining=3,max_concurrency=2" or {"remaining": 3} over the archive's
    session_start_limit: str | Mapping[str, int] | None = None
    identify_concurrency: bool = True  # op 9 beyond max_concurrency IDENTIFYs per 5 s
    enforce_session_start_limit: bool = True  # 4004 once no session starts remain
    # Issue 15 items 5 and 7 (ReplayOptions has their meaning); grant_intents as
    # --grant-intents takes it ("all", "members,presences", ...) or a number.
    check_intents: bool = True
    grant_intents: str | int | None = None
    filter_intents: bool = True
    check_shards: bool = True
    require_sharding: bool = False
    reroute_shards: bool = True
    # Issue #15 items 8 and 9: ReplayOptions' fields of the same names.
    validate_payloads: bool = True
    payload_compression: bool = True
    answer_from_state: bool = True
    member_rate_limit_s: float = 30.0
    # Issue #18: the voice face (docs/voice.md); on by itself with a voice fault in
    # ``faults``. Its CA goes in ``ca_dir`` (default: the test's tmp_path).
    voice: bool = False
    ca_dir: Path | None = None
    # Any other ReplayOptions field by name: the switches of Discord's rules
    # (docs/gateway-conduct.md), e.g. {"rate_limit": False, "session_ttl_ms": 1000}.
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ReplayerGateway:
    """What a test gets: where to point the client, then the transcript and verdicts."""

    rest_base: str
    gateway_url: str
    transcript_path: Path
    _server: ReplayServer
    _loop: asyncio.AbstractEventLoop
    strict: bool = False
    _verdicts: list[Verdict] | None = field(default=None)
    voice_ca: Path | None = None  # the CA certificate a voice client must trust (voice=True)

    def voice_ssl_context(self) -> ssl.SSLContext:
        """An ssl context trusting the voice face (e.g. ``aiohttp.TCPConnector(ssl=...)``)."""
        if self.voice_ca is None:
            raise pytest.UsageError("voice_ssl_context needs @pytest.mark.replayer(voice=True)")
        return ssl.create_default_context(cafile=str(self.voice_ca))

    def _call(self, coro: Any, timeout: float = 60.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=timeout)

    def wait_for_verdicts(self, timeout: float = 30.0) -> list[Verdict]:
        """Wait until every planned fault has fired and its reaction has been judged (or
        ``timeout`` seconds), then judge the run: a fault still unfired is NOT FIRED, a
        reaction still awaited FAILs. Calling :meth:`verdicts` early locks in those."""
        if self._verdicts is None:

            async def settled() -> None:
                replay = self._server.replay
                assert replay is not None
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    replay.judge.tick(self._server.now_ns())
                    if not (
                        replay.injector.pending
                        or replay.rejected_resumes
                        or replay.judge.open_expectations
                    ):
                        return
                    await asyncio.sleep(0.05)

            self._call(settled(), timeout + 10)
        return self.verdicts()

    def verdicts(self) -> list[Verdict]:
        """Judge the run so far (once; later calls return the same verdicts)."""
        if self._verdicts is None:

            async def judge() -> list[Verdict]:
                return self._server.verdicts()

            self._verdicts = self._call(judge())
        return self._verdicts

    @property
    def passed(self) -> bool:
        """No FAIL and no NOT FIRED (with ``strict``, no NON-STRICT either)."""
        return all_ok(self.verdicts(), self.strict)

    def report(self) -> str:
        """The verdicts as text, for assertion messages and the failed test's report."""
        lines = []
        for v in self.verdicts():
            lines.append(
                f"{v.result} {v.name}: expected {v.expected}; observed {v.observed}"
                + "".join(f"; {note}" for note in v.notes)
                + (f" [{v.docs}]" if v.docs else "")
            )
        lines.append(summary(self.verdicts()))
        routes = self.answered_404
        if routes:
            lines.append(f"answered 404: {', '.join(routes)}")
        return "\n".join(lines)

    @property
    def answered_404(self) -> list[str]:
        """The REST routes the replay answered with its own 404 so far (``GET
        /api/v10/foo (3)``): what the bot asked for that the archive cannot answer."""
        return self._call(_async(self._server.answered_404))  # type: ignore[no-any-return]

    def transcript(self) -> list[Record]:
        """What the client and the fake gateway exchanged so far, as archive records."""
        return read_records(self.transcript_path)[1]

    @property
    def connections(self) -> int:
        return self._server.connections_total


async def _async(call: Callable[[], Any]) -> Any:
    """``call()`` on the server's loop (its state belongs to that thread)."""
    return call()


def _settings(request: pytest.FixtureRequest) -> GatewaySettings:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        raise pytest.UsageError(
            "replayer_gateway needs @pytest.mark.replayer(archive=...) on the test"
        )
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("archive", marker.args[0])
    if "archive" not in kwargs:
        raise pytest.UsageError("@pytest.mark.replayer needs archive=PATH")
    root = Path(str(request.config.rootpath))
    archive = Path(kwargs.pop("archive"))
    plan = kwargs.pop("plan", None)
    return GatewaySettings(
        archive=archive if archive.is_absolute() else root / archive,
        plan=None if plan is None else (Path(plan) if Path(plan).is_absolute() else root / plan),
        **kwargs,
    )


@pytest.fixture
def replayer_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReplayerGateway]:
    """A replay of the marker's archive and faults on a free loopback port."""
    settings = _settings(request)
    voice_faults = [f for f in settings.faults if is_voice_fault(f)]
    voice_plan = VoicePlan(tuple(parse_voice_fault(f) for f in voice_faults))
    plans = [FaultPlan(tuple(parse_fault(f) for f in settings.faults if not is_voice_fault(f)))]
    if settings.plan is not None:
        plans.append(load_plan(settings.plan))
    script = load_script(settings.archive)
    plan = combine(plans)
    if not settings.allow_unfired:
        check_reachable(plan, script)
    limit = None
    if settings.session_start_limit is not None:
        text = settings.session_start_limit
        if not isinstance(text, str):
            text = ",".join(f"{key}={value}" for key, value in text.items())
        try:
            limit = limit_for(script.http, None).with_overrides(text)
        except StartLimitError as exc:
            raise pytest.UsageError(f"@pytest.mark.replayer session_start_limit: {exc}") from None
    options = ReplayOptions(
        speed=settings.speed,
        token=settings.token,
        close_at_end=settings.at_end,
        verdict_window_ms=settings.verdict_window_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        recorded_faults=settings.recorded_faults,
        session_start_limit=limit,
        identify_concurrency=settings.identify_concurrency,
        enforce_session_start_limit=settings.enforce_session_start_limit,
        check_intents=settings.check_intents,
        grant_intents=(
            parse_grant(str(settings.grant_intents)) if settings.grant_intents is not None else None
        ),
        filter_intents=settings.filter_intents,
        check_shards=settings.check_shards,
        require_sharding=settings.require_sharding,
        reroute_shards=settings.reroute_shards,
        validate_payloads=settings.validate_payloads,
        payload_compression=settings.payload_compression,
        answer_from_state=settings.answer_from_state,
        member_rate_limit_s=settings.member_rate_limit_s,
    )
    known = {f.name for f in dataclasses.fields(ReplayOptions)}
    unknown = sorted(set(settings.options) - known)
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}(options=...): no such replay option {', '.join(unknown)} "
            f"(see docs/gateway-conduct.md)"
        )
    options = dataclasses.replace(options, **settings.options)
    transcript = tmp_path / "replayer-transcript.rpl"
    loop = asyncio.new_event_loop()
    voice = None
    if settings.voice or voice_plan.faults:
        voice = VoiceOptions(ca_dir=settings.ca_dir or tmp_path / "replayer-ca", plan=voice_plan)
    server = ReplayServer(script, options, transcript=transcript, plan=plan, voice=voice)
    ready = threading.Event()
    stop: asyncio.Event | None = None
    failure: list[BaseException] = []

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            await server.start()
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            await stop.wait()
        finally:
            await server.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if failure:
        raise failure[0]
    tls = server.voice.tls if server.voice is not None else None
    gateway = ReplayerGateway(
        server.rest_base, server.gateway_url, transcript, server, loop, settings.strict,
        voice_ca=tls.ca_cert if tls is not None else None,
    )  # fmt: skip
    try:
        yield gateway
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used ``replayer_gateway`` gets the verdict table in its report."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    gateway = getattr(item, "funcargs", {}).get("replayer_gateway")
    if isinstance(gateway, ReplayerGateway):
        try:
            text = gateway.report()
        except Exception as exc:  # the server itself broke: say so, keep the failure
            text = f"no verdicts: {exc!r}"
        report.sections.append(("replayer verdicts", text))
