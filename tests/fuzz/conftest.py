"""The fuzz suite's profiles and its tally.

Every fuzz target is one function, run twice: ``fuzz-ci`` (a few dozen examples, part of
the default suite: the whole directory stays under a minute on 2 cores) and, under the
``slow`` marker, ``fuzz-long`` (many more; ``pytest tests/fuzz -m slow``). The tally counts
the cases run and the unexpected exceptions (tracebacks a user would see) by type and
place, and prints both at the end of the run.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

settings.register_profile(
    "fuzz-ci",
    parent=settings.get_profile("replayer"),
    max_examples=int(os.environ.get("REPLAYER_FUZZ_CI_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz-long",
    parent=settings.get_profile("fuzz-ci"),
    max_examples=int(os.environ.get("REPLAYER_FUZZ_LONG_EXAMPLES", "5000")),
)


class Tally:
    cases = 0
    unexpected: dict[str, int] = {}  # noqa: RUF012 - one tally per run


def fuzz_target(
    *allowed: type[BaseException],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Count each case; an exception not in ``allowed`` is tallied and re-raised."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            Tally.cases += 1
            try:
                fn(*args, **kwargs)
            except allowed:
                pass
            except Exception as exc:
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                where = f"{type(exc).__name__} at {os.path.basename(frame.filename)}:{frame.lineno}"
                Tally.unexpected[where] = Tally.unexpected.get(where, 0) + 1
                raise

        return run

    return wrap


def fuzz_pair(
    target: Callable[..., None], **strategies: st.SearchStrategy[Any]
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The short run and the long (slow-marked) run of one fuzz target."""
    short = settings.get_profile("fuzz-ci")(given(**strategies)(target))
    long = pytest.mark.slow(settings.get_profile("fuzz-long")(given(**strategies)(target)))
    return short, long


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not Tally.cases:
        return
    terminalreporter.write_line(
        f"fuzz: {Tally.cases} cases run, {sum(Tally.unexpected.values())} unexpected "
        f"exceptions in {len(Tally.unexpected)} places"
    )
    for where, count in sorted(Tally.unexpected.items()):
        terminalreporter.write_line(f"  {where}: {count} cases")
