"""A run's whole fault plan: the main gateway's faults (faults.py) and the voice face's
(voice/faults.py, docs/voice.md), from ``--fault`` texts and TOML plans alike.

This is the one place that tells the two apart (a kind starting with ``voice-`` or
``dave-`` is a voice fault), so ``replay``, the pytest plugin and conform split a plan the
same way::

    [[fault]]                      [[fault]]
    kind = "close"                 kind = "voice-close"
    code = 4000                    code = 4015        # or arg = 4015
    event = "GUILD_CREATE#2"       voice = "READY"    # voice-op, rtp, voice-conn, times, every
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from replayer.replay import faults
from replayer.replay.faults import Fault, FaultPlan, fault_from_mapping, parse_fault, read_plan
from replayer.replay.voice.faults import (
    VoiceFault,
    VoicePlan,
    is_voice_fault,
    is_voice_kind,
    parse_voice_fault,
    voice_fault_from_mapping,
)


@dataclass(frozen=True)
class RunPlan:
    """The faults of one run: ``gateway`` for the main gateway, ``voice`` for the voice face."""

    gateway: FaultPlan = field(default_factory=FaultPlan)
    voice: VoicePlan = field(default_factory=VoicePlan)


def parse_faults(texts: Iterable[str]) -> RunPlan:
    """``--fault`` texts (or a marker's ``faults=``), each parsed by its own syntax."""
    gateway: list[Fault] = []
    voice: list[VoiceFault] = []
    for text in texts:
        if is_voice_fault(text):
            voice.append(parse_voice_fault(text))
        else:
            gateway.append(parse_fault(text))
    return RunPlan(FaultPlan(tuple(gateway)), VoicePlan(tuple(voice)))


def load_plan(path: Path) -> RunPlan:
    """A TOML plan: ``seed = 1`` and ``[[fault]]`` tables with the short syntax's keys,
    the main gateway's (faults.py) or the voice face's (a voice kind); a bad table is one
    :class:`~replayer.replay.faults.FaultPlanError` naming the file, its index and the key."""
    tables, seed = read_plan(path)
    gateway: list[Fault] = []
    voice: list[VoiceFault] = []
    for where, spec in tables:
        if is_voice_kind(spec.get("kind")):
            voice.append(voice_fault_from_mapping(spec, where))
        else:
            gateway.append(fault_from_mapping(spec, where))
    return RunPlan(FaultPlan(tuple(gateway), seed=seed), VoicePlan(tuple(voice)))


def combine(plans: Iterable[RunPlan]) -> RunPlan:
    """Several plans as one: their faults in order, the last seed given."""
    plans = list(plans)
    voice = tuple(f for plan in plans for f in plan.voice.faults)
    return RunPlan(faults.combine(plan.gateway for plan in plans), VoicePlan(voice))


__all__ = ["RunPlan", "combine", "load_plan", "parse_faults"]
