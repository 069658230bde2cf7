"""pytest plugin (entry point ``pytest11``): a fake Discord gateway per test.

    @pytest.mark.replayer(archive="recordings/bot.rpl", faults=["reconnect@event=READY"])
    async def test_my_bot_resumes(replayer_gateway):
        bot = make_bot(rest=replayer_gateway.rest_base, gateway=replayer_gateway.gateway_url)
        ...
        await replayer_gateway.wait_for(event="RESUMED", timeout=30)
        assert replayer_gateway.passed, replayer_gateway.report()

The server runs on its own event loop in a background thread, bound to 127.0.0.1 on a
free port, so the fixture works the same for sync tests, pytest-asyncio and anyio. A
failed test that used the fixture gets the verdict table as a report section.

Record modes, as vcrpy and pytest-recording have them (``record_mode=`` on the marker,
``--replayer-record-mode``, ini ``replayer_record_mode``; default ``none`` when ``CI``
is set, else ``once``): ``once`` and ``new`` record a missing archive through
``replayer record``'s proxy in front of the real gateway and replay one that exists;
``all`` records every time; ``none`` never records, and a missing archive fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import FrameRecord, Record
from replayer.gateway.encoding import Encoding
from replayer.replay.control import Injection
from replayer.replay.engine import ReplayOptions
from replayer.replay.faults import parse_fault
from replayer.replay.intents import parse_grant
from replayer.replay.observed import Frame, FrameLog, frame_match
from replayer.replay.plans import combine, load_plan, parse_faults
from replayer.replay.reachability import check_reachable
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.starts import StartLimitError, limit_for
from replayer.replay.verdicts import Verdict, all_ok, summary
from replayer.replay.voice_server import VoiceOptions

if TYPE_CHECKING:
    from replayer.record.proxy import RecordingProxy

MARKER = "replayer"
RECORD_MODES = ("none", "once", "new", "all")
MODE_ALIASES = {"new_episodes": "new"}  # pytest-recording's name
DEFAULT_UPSTREAM = "https://discord.com"
DEFAULT_GATEWAY_UPSTREAM = "wss://gateway.discord.gg"
# A token of the shape libraries check (hikari reads the bot id from it); the replay
# takes any token unless the marker's token= names one.
REPLAY_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.replayer.token"
# The marker's own keys; every other key is a ReplayOptions field (docs/pytest.md).
_PLUGIN_KEYS = frozenset(
    {"archive", "faults", "plan", "allow_unfired", "strict", "record_mode", "token_env",
     "upstream", "gateway_upstream", "voice", "ca_dir", "options"}
)  # fmt: skip
# Marker keys under another name, or in another form, than ReplayOptions has them.
_RENAMED = {"at_end": "close_at_end"}
_PLUGIN_DEFAULTS: dict[str, Any] = {"speed": 0.0}  # ReplayOptions' own default is 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("replayer", "replayer: Discord gateway record and replay")
    group.addoption(
        "--replayer-record-mode",
        dest="replayer_record_mode",
        choices=[*RECORD_MODES, *MODE_ALIASES],
        default=None,
        help="none: replay only; once / new: record a missing archive, replay one there; "
        "all: record every time (default: none when CI is set, else once)",
    )
    group.addoption(
        "--replayer-upstream",
        dest="replayer_upstream",
        default=None,
        help=f"REST upstream to record from (default {DEFAULT_UPSTREAM})",
    )
    group.addoption(
        "--replayer-gateway-upstream",
        dest="replayer_gateway_upstream",
        default=None,
        help=f"gateway upstream to record from (default {DEFAULT_GATEWAY_UPSTREAM} with the "
        "default REST upstream, else the url of the upstream's /gateway)",
    )
    parser.addini("replayer_record_mode", "the record mode (as --replayer-record-mode)")
    parser.addini("replayer_upstream", "REST upstream to record from")
    parser.addini("replayer_gateway_upstream", "gateway upstream to record from")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(archive, faults=(), plan=None, record_mode=None, token_env=None, "
        "upstream=None, gateway_upstream=None, allow_unfired=False, strict=False, "
        "voice=False, ca_dir=None, options={}, **replay_options): the archive and faults "
        "the replayer_gateway fixture serves (docs/pytest.md)",
    )


@dataclass
class GatewaySettings:
    """The marker, resolved: where the archive is, what to break, how to get it."""

    archive: Path
    faults: Sequence[str] = ()
    plan: Path | None = None
    allow_unfired: bool = False  # serve a plan whose triggers cannot all come
    strict: bool = False  # NON-STRICT verdicts fail ``passed`` too
    record_mode: str | None = None  # None: the command line's, the ini's, or the default
    token_env: str | None = None  # the environment variable with the bot token (recording)
    upstream: str | None = None
    gateway_upstream: str | None = None
    # Issue #18: the voice face (docs/voice.md); on by itself with a voice fault in
    # ``faults``. Its CA goes in ``ca_dir`` (default: the test's tmp_path).
    voice: bool = False
    ca_dir: Path | None = None
    # ReplayOptions fields by name (the marker's other keys land here too), e.g.
    # {"rate_limit": False, "session_ttl_ms": 1000}; see docs/gateway-conduct.md.
    options: Mapping[str, Any] = field(default_factory=dict)


class WaitTimeout(TimeoutError, AssertionError):
    """``wait_for`` gave up: what it waited for, what came instead, the verdicts so far."""


class RecordingError(RuntimeError):
    """What only a replay can do, asked of a test that is recording."""


@dataclass
class ReplayerGateway:
    """What a test gets: where to point the client, then the transcript and verdicts.
    While recording (``recording`` is the archive being made) the gateway is the real
    one: there are no faults, and no verdicts."""

    rest_base: str
    gateway_url: str
    transcript_path: Path
    _server: ReplayServer | None
    _loop: asyncio.AbstractEventLoop
    strict: bool = False
    _verdicts: list[Verdict] | None = field(default=None)
    _frames: FrameLog = field(default_factory=FrameLog)
    # What the bot should log in with: the real token while recording, so never in repr
    # (pytest prints the fixture's repr in assertion messages, which CI logs keep).
    token: str | None = field(default=REPLAY_TOKEN, repr=False)
    recording: Path | None = None
    _proxy: RecordingProxy | None = None

    voice_ca: Path | None = None  # the CA certificate a voice client must trust (voice=True)

    def voice_ssl_context(self) -> ssl.SSLContext:
        """An ssl context trusting the voice face (e.g. ``aiohttp.TCPConnector(ssl=...)``)."""
        if self.voice_ca is None:
            raise pytest.UsageError("voice_ssl_context needs @pytest.mark.replayer(voice=True)")
        return ssl.create_default_context(cafile=str(self.voice_ca))

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=timeout)

    def _replay(self, what: str) -> ReplayServer:
        if self._server is None:
            raise RecordingError(
                f"{what} needs a replay: this run records {self.recording} from the real "
                "gateway; run the test again to replay it"
            )
        return self._server

    @property
    def control_url(self) -> str:
        """The replay's control API (docs/faults.md): for a client in another process."""
        return self._replay("control_url").control_url

    def inject(self, fault: str) -> dict[str, Any]:
        """A fault now, in the ``--fault`` syntax: ``inject("reconnect")`` sends op 7 on
        the newest open connection at once (``"reconnect@conn=2"``: on connection 2); a
        fault with a trigger (``"close:4000@event=MESSAGE_CREATE#2"``) is armed as a planned
        one. Judged as planned faults are (NOT FIRED with no connection to send it on).
        Returns what became of it, as ``POST /_replayer/faults`` answers."""
        server = self._replay("inject()")
        parsed = parse_fault(fault, now_ok=True)
        injection: Injection = self._call(_async(lambda: server.inject(parsed)))
        return injection.to_json()

    def status(self) -> dict[str, Any]:
        """Connections, sessions, faults and verdicts so far (``GET /_replayer/status``)."""
        return self._call(_async(self._replay("status()").status))  # type: ignore[no-any-return]

    async def wait_for(
        self,
        event: str | None = None,
        *,
        op: int | str | None = None,
        predicate: Callable[[Frame], object] | None = None,
        direction: str | None = None,
        nth: int = 1,
        timeout: float = 30.0,
    ) -> Frame:
        """Wait, without polling, until the ``nth`` frame of this run that matches has
        crossed the socket, and return it (a :class:`~replayer.replay.observed.Frame`:
        ``direction``, ``conn``, ``op``, ``t``, ``s``, ``payload``, ``d``). Frames sent
        before the call count too, so there is no race with a fast replay.

        ``event="RESUMED"``: a dispatch the replay sent. ``op=7`` or ``op="RESUME"``: a
        payload of that opcode, from the side that sends it (op 1: the client's
        heartbeats). ``predicate=f``: ``f(frame)`` true, on the client's payloads unless
        ``direction`` says otherwise. They combine (all must hold); ``direction`` is
        ``"server"``, ``"client"`` or ``"any"``. On ``timeout`` seconds: :class:`WaitTimeout`
        with what was awaited, the frames seen and the verdicts so far."""
        __tracebackhide__ = True  # the failure is the test's: show its line, not ours
        match, what = frame_match(event, op, predicate, direction)
        found: Future[Frame] = Future()
        handle = self._call(
            _async(lambda: self._frames.watch(match, found.set_result, found.set_exception, nth))
        )
        try:
            return await asyncio.wait_for(asyncio.wrap_future(found), timeout)
        except TimeoutError:
            self._call(_async(lambda: self._frames.unwatch(handle)))
            seen = self._call(_async(self._frames.describe))
            verdicts = self._call(_async(self._verdicts_so_far))
            nth_text = f" #{nth}" if nth > 1 else ""
            raise WaitTimeout(
                f"replayer_gateway.wait_for: no {what}{nth_text} within {timeout:g} s; "
                f"{seen}\nverdicts so far:\n{verdict_table(verdicts)}"
            ) from None

    def _verdicts_so_far(self) -> list[Verdict]:
        if self._server is None or self._server.replay is None:
            return []
        replay = self._server.replay
        replay.judge.tick(self._server.now_ns())
        return list(self._verdicts if self._verdicts is not None else replay.judge.verdicts)

    def wait_for_verdicts(self, timeout: float = 30.0) -> list[Verdict]:
        """Wait until every planned fault has fired and its reaction has been judged (or
        ``timeout`` seconds), then judge the run: a fault still unfired is NOT FIRED, a
        reaction still awaited FAILs. Calling :meth:`verdicts` early locks in those."""
        server = self._server
        if self._verdicts is None and server is not None:

            async def settled() -> None:
                replay = server.replay
                assert replay is not None
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    replay.judge.tick(server.now_ns())
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
        """Judge the run so far (once; later calls return the same verdicts). While
        recording: none (the real gateway is not judged)."""
        server = self._server
        if self._verdicts is None:
            self._verdicts = [] if server is None else self._call(_async(server.verdicts))
        return self._verdicts

    @property
    def passed(self) -> bool:
        """No FAIL and no NOT FIRED (with ``strict``, no NON-STRICT either)."""
        return all_ok(self.verdicts(), self.strict)

    def report(self) -> str:
        """The verdicts as text, for assertion messages and the failed test's report."""
        if self.recording is not None:
            return f"recording {self.recording} from the real gateway: no faults, no verdicts"
        lines = [verdict_table(self.verdicts())]
        routes = self.answered_404
        if routes:
            lines.append(f"answered 404: {', '.join(routes)}")
        return "\n".join(lines)

    @property
    def answered_404(self) -> list[str]:
        """The REST routes the replay answered with its own 404 so far (``GET
        /api/v10/foo (3)``): what the bot asked for that the archive cannot answer."""
        if self._server is None:
            return []
        return self._call(_async(self._server.answered_404))  # type: ignore[no-any-return]

    def transcript(self) -> list[Record]:
        """What the client and the fake gateway exchanged so far, as archive records."""
        return read_records(self.transcript_path)[1]

    @property
    def connections(self) -> int:
        """Gateway connections the client opened so far."""
        if self._server is not None:
            return self._server.connections_total
        recorder = self._proxy.recorder if self._proxy is not None else None
        return len(recorder.stats) if recorder is not None else 0


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    """One line per verdict (``OPEN``: its reaction still awaited), then the summary."""
    lines = [
        f"{v.result or 'OPEN'} {v.name}: expected {v.expected}; observed {v.observed}"
        + "".join(f"; {note}" for note in v.notes)
        + (f" [{v.docs}]" if v.docs else "")
        for v in verdicts
    ]
    still_open = sum(1 for v in verdicts if v.result is None)
    lines.append(summary(list(verdicts)) + (f", {still_open} open" if still_open else ""))
    return "\n".join(lines)


async def _async(call: Callable[[], Any]) -> Any:
    """``call()`` on the server's loop (its state belongs to that thread)."""
    return call()


# --- settings ------------------------------------------------------------------------


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
    # Every key that is not the marker's own is a replay option (options= wins).
    options = {_RENAMED.get(k, k): kwargs.pop(k) for k in list(kwargs) if k not in _PLUGIN_KEYS}
    options.update(kwargs.pop("options", None) or {})
    return GatewaySettings(
        archive=archive if archive.is_absolute() else root / archive,
        plan=None if plan is None else (Path(plan) if Path(plan).is_absolute() else root / plan),
        options=options,
        **kwargs,
    )


def replay_options(settings: GatewaySettings, script_http: Sequence[Any]) -> ReplayOptions:
    """The marker's replay options: ReplayOptions fields by name, with the plugin's
    defaults (speed 0), ``session_start_limit`` as ``--session-start-limit`` takes it
    (text or a mapping) and ``grant_intents`` as ``--grant-intents`` does."""
    values = {**_PLUGIN_DEFAULTS, **settings.options}
    known = {f.name for f in dataclasses.fields(ReplayOptions)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: no such replay option {', '.join(unknown)} "
            f"(see docs/pytest.md and docs/gateway-conduct.md)"
        )
    limit = values.get("session_start_limit")
    if isinstance(limit, str | Mapping):
        text = limit if isinstance(limit, str) else ",".join(f"{k}={v}" for k, v in limit.items())
        try:
            values["session_start_limit"] = limit_for(script_http, None).with_overrides(text)
        except StartLimitError as exc:
            raise pytest.UsageError(f"@pytest.mark.replayer session_start_limit: {exc}") from None
    grant = values.get("grant_intents")
    if isinstance(grant, str):
        values["grant_intents"] = parse_grant(grant)
    return ReplayOptions(**values)


def record_mode(config: pytest.Config, settings: GatewaySettings) -> tuple[str, str]:
    """The record mode and where it comes from: the marker's, else
    ``--replayer-record-mode``, else the ini's, else ``none`` when ``CI`` is set (as
    pytest-recording and most CI services have it), else ``once``."""
    given: tuple[object, str] = next(
        (value, source)
        for value, source in (
            (settings.record_mode, "the marker's record_mode"),
            (config.getoption("replayer_record_mode", None), "--replayer-record-mode"),
            (config.getini("replayer_record_mode"), "ini replayer_record_mode"),
            ("none" if os.environ.get("CI") else "once", "CI is set" if os.environ.get("CI")
             else "CI is not set"),
        )
        if value
    )  # fmt: skip
    mode = MODE_ALIASES.get(str(given[0]), str(given[0]))
    if mode not in RECORD_MODES:
        raise pytest.UsageError(
            f"replayer: record mode {given[0]!r} ({given[1]}) is not one of "
            f"{', '.join(RECORD_MODES)}"
        )
    return mode, given[1]


def _upstreams(config: pytest.Config, settings: GatewaySettings) -> tuple[str, str | None]:
    rest = (
        settings.upstream
        or config.getoption("replayer_upstream", None)
        or config.getini("replayer_upstream")
        or DEFAULT_UPSTREAM
    )
    gateway = (
        settings.gateway_upstream
        or config.getoption("replayer_gateway_upstream", None)
        or config.getini("replayer_gateway_upstream")
        or (DEFAULT_GATEWAY_UPSTREAM if rest == DEFAULT_UPSTREAM else None)
    )
    return str(rest), (str(gateway) if gateway else None)


def _missing_archive(settings: GatewaySettings, source: str) -> str:
    token = f" with ${settings.token_env} set" if settings.token_env else ""
    return (
        f"replayer: no archive {settings.archive}, and record mode 'none' ({source}) never "
        f"records: record it once, from the real gateway, with `pytest "
        f"--replayer-record-mode=once`{token} (or `replayer record -o {settings.archive}`)"
    )


# --- the fixture ---------------------------------------------------------------------


class BackgroundLoop:
    """An event loop of its own in a daemon thread: what the fixture's server runs on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def serve(
        self,
        start: Callable[[], Coroutine[Any, Any, None]],
        stop: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        """Run ``start()`` there; return once it has (raising what it raised)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                await start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                await self._stop.wait()
            finally:
                await stop()

        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),))
        self._thread.daemon = True
        self._thread.start()
        ready.wait(timeout=60)
        if failure:
            self.close()
            raise failure[0]

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def replayer_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReplayerGateway]:
    """A replay of the marker's archive and faults on a free loopback port; or, when the
    record mode says so, a recording of the real gateway into that archive."""
    settings = _settings(request)
    mode, source = record_mode(request.config, settings)
    present = settings.archive.exists()
    if mode == "all" or (mode in ("once", "new") and not present):
        yield from _recording(request.config, settings, replace=mode == "all")
        return
    if not present:
        pytest.fail(_missing_archive(settings, source), pytrace=False)
    plans = [parse_faults(settings.faults)]
    if settings.plan is not None:
        plans.append(load_plan(settings.plan))
    script = load_script(settings.archive)
    run_plan = combine(plans)
    plan, voice_plan = run_plan.gateway, run_plan.voice
    if not settings.allow_unfired:
        check_reachable(plan, script)
    options = replay_options(settings, script.http)
    transcript = tmp_path / "replayer-transcript.rpl"
    frames = FrameLog()
    voice = None
    if settings.voice or voice_plan.faults:
        voice = VoiceOptions(ca_dir=settings.ca_dir or tmp_path / "replayer-ca", plan=voice_plan)
    server = ReplayServer(
        script, options, transcript=transcript, plan=plan, frame_log=frames, voice=voice
    )
    background = BackgroundLoop()
    background.serve(server.start, server.stop)
    token = options.token or REPLAY_TOKEN
    tls = server.voice.tls if server.voice is not None else None
    gateway = ReplayerGateway(
        server.rest_base, server.gateway_url, transcript, server, background.loop,
        settings.strict, _frames=frames, token=token,
        voice_ca=tls.ca_cert if tls is not None else None,
    )  # fmt: skip
    try:
        yield gateway
    finally:
        background.close()


def _recording(
    config: pytest.Config, settings: GatewaySettings, *, replace: bool
) -> Iterator[ReplayerGateway]:
    """Record the session through ``replayer record``'s in-process proxy into a part
    file of this process's own (xdist workers may record the same archive), moved onto
    the archive at the end if it holds a gateway connection. An archive that is there
    by then (another worker's) is replaced only with ``replace`` (mode ``all``)."""
    from replayer.record.proxy import RecordingProxy, RecordSettings

    token: str | None = None
    if settings.token_env:
        token = os.environ.get(settings.token_env)
        if not token:
            pytest.fail(
                f"replayer: recording {settings.archive} from the real gateway needs the bot "
                f"token in ${settings.token_env} (the marker's token_env); set it, or add the "
                "archive and replay it",
                pytrace=False,
            )
    rest, gateway_upstream = _upstreams(config, settings)
    settings.archive.parent.mkdir(parents=True, exist_ok=True)
    part = settings.archive.with_name(f"{settings.archive.name}.{os.getpid()}.part")
    proxy = RecordingProxy(
        RecordSettings(part, upstream=rest, gateway_upstream=gateway_upstream, overwrite=True)
    )
    frames = FrameLog()
    background = BackgroundLoop()

    async def start() -> None:
        await proxy.start()
        recorder = proxy.recorder
        if recorder is not None:
            recorder.writer = _Observed(recorder.writer, frames)  # type: ignore[assignment]

    background.serve(start, proxy.stop)
    gateway = ReplayerGateway(
        proxy.rest_base, proxy.gateway_url, part, None, background.loop,
        _frames=frames, token=token, recording=settings.archive, _proxy=proxy,
    )  # fmt: skip
    try:
        yield gateway
    finally:
        connections = gateway.connections
        background.close()
        if connections and (replace or not settings.archive.exists()):
            os.replace(part, settings.archive)
        else:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()


class _Observed:
    """The recorder's archive writer, also logging each gateway frame for ``wait_for``."""

    def __init__(self, writer: Any, frames: FrameLog) -> None:
        self._writer = writer
        self._frames = frames

    def write(self, record: Record) -> None:
        self._writer.write(record)
        if isinstance(record, FrameRecord):
            encoding = Encoding.ETF if record.payload[:1] == b"\x83" else Encoding.JSON
            self._frames.add(
                Frame(record.direction, record.conn_id, record.op, record.t, record.s,
                      record.payload, encoding)
            )  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


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
