"""The package's boundaries (pyproject.toml's [tool.importlinter], docs/architecture.md):
lower layers never import higher ones, the pure core imports no event loop, web framework
or mitmproxy, and replay's engine side never imports its aiohttp shell.

``lint-imports`` checks them on the real package; each rule is also shown to fail on a
copy of the package with one offending import added."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

import replayer.replay

ROOT = Path(__file__).parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package under ``root``. ``-S`` leaves out the editable
    install's import hook, so ``root`` is what gets analysed; site-packages still give
    import-linter itself."""
    code = (
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv = ['lint-imports', '--no-logo', '--no-cache']; lint_imports_command()"
    )
    path = f"{root}:{sysconfig.get_paths()['purelib']}"
    return subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=root,
        env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_package_keeps_its_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "offence", "says"),
    [
        # a pure layer does I/O
        ("gateway/url.py", "import asyncio", "replayer.gateway is not allowed to import asyncio"),
        ("record/recorder.py", "import mitmproxy", "replayer.record.recorder is not allowed"),
        ("conform/catalogue.py", "import asyncio", "replayer.conform.catalogue is not allowed"),
        # a lower layer imports a higher one
        ("archive/reader.py", "import replayer.replay.script", "replayer.archive.reader"),
        ("replay/faults.py", "import replayer.cli", "replayer.replay.faults"),
        ("replay/verdicts.py", "import replayer.conform.runner", "replayer.replay.verdicts"),
        # the engine imports its shell
        ("replay/engine.py", "from replayer.replay import server", "replayer.replay.engine"),
    ],
)
def test_each_rule_fails_on_an_offending_import(
    tmp_path: Path, module: str, offence: str, says: str
) -> None:
    shutil.copytree(ROOT / "replayer", tmp_path / "replayer", ignore=shutil.ignore_patterns("*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "replayer" / module
    target.write_text(target.read_text() + f"\n{offence}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert says in result.stdout, result.stdout


def test_the_engine_side_contract_lists_every_module_of_replay_but_the_server() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["name"].startswith("replay's engine side")]
    modules = {f"replayer.replay.{m.name}" for m in pkgutil.iter_modules(replayer.replay.__path__)}
    assert set(contract["source_modules"]) == modules - {"replayer.replay.server"}
