"""replay, inspect, export, import, verify, diff and the pytest plugin where the POSIX-only
pieces are missing, as on Windows (issue 17 item 8): each command runs in a Python whose
sitecustomize makes ``import fcntl`` / ``import resource`` fail, removes ``os.pread`` and makes
``loop.add_signal_handler`` raise NotImplementedError (what Windows' event loops do). The mitmdump
addon's recorder worker (fcntl) is not there, so the addon records in mitmdump's thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from replayer.resources import sample_archive
from tests.clients.conftest import TIMEOUT

SAMPLE = sample_archive("small-bot.rpl")
REPO = Path(__file__).resolve().parents[3]
SHIM = '''
import asyncio, os, sys

class _AsOnWindows:
    """Refuses the modules Windows does not have."""

    def find_spec(self, name, path=None, target=None):
        if name in ("fcntl", "resource", "termios"):
            raise ImportError(f"No module named {name!r} (as on Windows)", name=name)
        return None

for _name in ("fcntl", "resource", "termios"):
    sys.modules.pop(_name, None)
sys.meta_path.insert(0, _AsOnWindows())
del os.pread

def _no_signal_handlers(self, *args, **kwargs):
    raise NotImplementedError

asyncio.SelectorEventLoop.add_signal_handler = _no_signal_handlers
'''

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="simulates Windows on POSIX")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM)
    path = os.pathsep.join([str(shim), str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "80"}


def run(env: dict[str, str], *args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 4,
        check=False,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_the_shim_takes_the_posix_pieces_away(env: dict[str, str]) -> None:
    probe = """
import asyncio, os
try:
    import fcntl
except ImportError:
    print("no fcntl")
try:
    import resource
except ImportError:
    print("no resource")
print("pread" if hasattr(os, "pread") else "no pread")
loop = asyncio.new_event_loop()
try:
    loop.add_signal_handler(2, print)
except NotImplementedError:
    print("no signal handlers")
from replayer.record.addon import _worker_class
print("worker" if _worker_class() else "records in mitmdump's thread")
"""
    assert run(env, "-c", probe).split("\n")[:5] == [
        "no fcntl",
        "no resource",
        "no pread",
        "no signal handlers",
        "records in mitmdump's thread",
    ]


def test_the_archive_commands(env: dict[str, str], tmp_path: Path) -> None:
    cli = ("-m", "replayer")
    assert "READY" in run(env, *cli, "inspect", SAMPLE)
    assert "GUILD_CREATE" in run(env, *cli, "inspect", SAMPLE, "--stats")
    assert run(env, *cli, "verify", SAMPLE).startswith("ok:")
    exported = tmp_path / "s.jsonl"
    run(env, *cli, "export", SAMPLE, "-o", exported)
    imported = tmp_path / "s.rpl"
    run(env, *cli, "import", exported, "-o", imported)
    assert "the same" in run(env, *cli, "diff", SAMPLE, imported)


async def test_replay_serves_and_stops_on_sigterm(env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replayer", "replay", str(SAMPLE), "--speed", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    url = ""
    async with asyncio.timeout(TIMEOUT):
        while line := (await process.stdout.readline()).decode():
            if line.startswith("gateway URL:"):
                url = line.split(":", 1)[1].strip()
                break
    assert url, "replayer replay exited before serving"
    async with websockets.connect(url + "?v=10&encoding=json", max_queue=None) as ws:
        assert json.loads(await ws.recv())["op"] == 10
        await ws.send(json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": 4097}}))
        assert json.loads(await ws.recv())["t"] == "READY"
        process.send_signal(signal.SIGTERM)  # reaches it through signal.signal, not the loop
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1001
    _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert await process.wait() == 0, err.decode()
    assert "Traceback" not in err.decode()


PLUGIN_TEST = f"""
import json
import pytest
from websockets.sync.client import connect

@pytest.mark.replayer(archive={str(SAMPLE)!r})
def test_ready(replayer_gateway):
    with connect(replayer_gateway.gateway_url + "?v=10&encoding=json", compression=None) as ws:
        assert json.loads(ws.recv())["op"] == 10
        ws.send(json.dumps({{"op": 2, "d": {{"token": "t", "properties": {{}}, "intents": 4097}}}}))
        assert json.loads(ws.recv())["t"] == "READY"
"""


def test_the_pytest_plugin(env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_bot.py").write_text(PLUGIN_TEST)
    out = run(env, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bot.py", cwd=project)
    assert "1 passed" in out
