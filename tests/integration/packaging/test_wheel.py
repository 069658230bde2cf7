"""The installed package stands alone (issue 17 item 1): the wheel, installed into a fresh venv
and run from outside the repository with PYTHONPATH cleared, carries its sample archives, fault
plans, mitmdump addon and docs, so ``replayer --version``, ``replayer addon-path`` and
``replayer demo`` work from there.

The wheel is the one ``./dev test`` built (``REPLAYER_DIST``, its directory), or one built here.
The fresh venv gets the wheel alone (``--no-deps``); its dependencies come from the running
interpreter's site-packages through a plain path in a ``.pth`` file, which adds that directory but
not the ``.pth`` files in it (so not an editable install of this repository): the only replayer
the venv can import is the wheel's, and the test checks that it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
from pathlib import Path

import pytest

from replayer import __version__

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[3]
TIMEOUT_S = 180


def _clean_env() -> dict[str, str]:
    """This environment without what would let the repository's replayer in."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


def _built(tmp: Path, kind: str, pattern: str) -> Path:
    """The ``kind`` (``wheel`` or ``sdist``) ./dev test built, else one built here."""
    dist = os.environ.get("REPLAYER_DIST")
    if dist:
        found = sorted(Path(dist).glob(pattern))
        if found:
            return found[-1]
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", f"--{kind}", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    return next(out.glob(pattern))


def _built_wheel(tmp: Path) -> Path:
    return _built(tmp, "wheel", f"replayer-{__version__}-*.whl")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed in it, and nothing else of this repository."""
    tmp = tmp_path_factory.mktemp("packaging")
    wheel = _built_wheel(tmp)
    root = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            str(wheel),
        ],
        env=_clean_env(),
        check=True,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    # After the install: pip would otherwise see this repository's own install and skip the wheel.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_replayer_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return root


def _run(venv_root: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _clean_env()
    env["PATH"] = f"{venv_root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv_root / "bin" / "replayer"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _python(venv_root: Path, cwd: Path, code: str) -> str:
    return subprocess.check_output(
        [str(venv_root / "bin" / "python"), "-c", code], cwd=cwd, env=_clean_env(), text=True
    ).strip()


def test_the_venv_imports_the_wheel_not_the_repository(fresh_venv: Path, tmp_path: Path) -> None:
    where = Path(_python(fresh_venv, tmp_path, "import replayer; print(replayer.__file__)"))
    assert where.is_relative_to(fresh_venv), where
    assert not where.is_relative_to(REPO)


def test_version(fresh_venv: Path, tmp_path: Path) -> None:
    result = _run(fresh_venv, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"replayer {__version__}"


def test_the_wheel_carries_samples_plans_and_docs(fresh_venv: Path, tmp_path: Path) -> None:
    listing = _python(
        fresh_venv,
        tmp_path,
        "from replayer import resources as r; "
        "print(r.sample_archive('small-bot.rpl')); print(r.sample_plan('zombie.toml')); "
        "print(r.docs_dir() / 'faults.md')",
    ).splitlines()
    for line in listing:
        path = Path(line)
        assert path.is_relative_to(fresh_venv), path
        assert path.is_file(), path


def test_addon_path_is_a_loadable_mitmdump_script(fresh_venv: Path, tmp_path: Path) -> None:
    result = _run(fresh_venv, tmp_path, "addon-path")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_relative_to(fresh_venv), path
    # What mitmdump -s does with it: run the file, take its `addons`.
    loaded = _python(
        fresh_venv,
        tmp_path,
        f"import runpy; print(type(runpy.run_path({str(path)!r})['addons'][0]).__name__)",
    )
    assert loaded == "GatewayRecorderAddon"


def test_demo_runs_from_the_wheel(fresh_venv: Path, tmp_path: Path) -> None:
    result = _run(fresh_venv, tmp_path, "demo", "--output", "demo.rpl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
    assert (tmp_path / "demo.rpl").stat().st_size > 0


def test_the_sdist_carries_what_the_wheel_is_built_from(tmp_path: Path) -> None:
    sdist = _built(tmp_path, "sdist", f"replayer-{__version__}.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for shipped in (
        "replayer/data/recordings/small-bot.rpl",
        "replayer/data/recordings/sample-small.jsonl",
        "replayer/data/recordings/plans/zombie.toml",
        "replayer/data/gateway_recorder.py",
        "docs/faults.md",
        "addons/gateway_recorder.py",
        "recordings/make_recordings.py",
        "setup.py",
    ):
        assert shipped in names, shipped
