"""Where the files that ship with replayer are: sample archives, fault plans, the mitmdump addon.

Every lookup of a bundled file goes through this module, so the files can move (into the installed
package's data) without their users changing.
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def recordings_dir() -> Path:
    """The directory of the bundled sample archives."""
    return _ROOT / "recordings"


def sample_archive(name: str) -> Path:
    """The bundled archive ``name`` (e.g. ``"small-bot.rpl"``)."""
    return recordings_dir() / name


def sample_plan(name: str) -> Path:
    """The bundled fault plan ``name`` (e.g. ``"zombie.toml"``)."""
    return recordings_dir() / "plans" / name


def addon_path() -> Path:
    """The file to give ``mitmdump -s``."""
    return _ROOT / "addons" / "gateway_recorder.py"
