"""Where the files that ship with replayer are: sample archives, fault plans, the mitmdump addon,
the docs.

Every lookup of a bundled file goes through this module. The samples, plans and the addon live in
the package (``replayer/data/``, package data in pyproject.toml), so an installed wheel carries
them. The docs stay at the repository's top level (``docs/``, where they are read and linked) and
the build copies them into ``replayer/data/docs`` (setup.py); in a checkout or an editable install
there is no copy and the top-level directory is the one.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_DATA = _PACKAGE / "data"


def recordings_dir() -> Path:
    """The directory of the bundled sample archives."""
    return _DATA / "recordings"


def sample_archive(name: str) -> Path:
    """The bundled archive ``name`` (e.g. ``"small-bot.rpl"``)."""
    return recordings_dir() / name


def sample_plan(name: str) -> Path:
    """The bundled fault plan ``name`` (e.g. ``"zombie.toml"``)."""
    return recordings_dir() / "plans" / name


def addon_path() -> Path:
    """The file to give ``mitmdump -s``."""
    return _DATA / "gateway_recorder.py"


def docs_dir() -> Path:
    """The directory of the Markdown docs (faults.md, pytest.md, ...)."""
    shipped = _DATA / "docs"
    return shipped if shipped.is_dir() else _PACKAGE.parent / "docs"
