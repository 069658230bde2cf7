"""The conformance suite: case catalogue, runner, reports.

May import ``replay``, ``record``, ``synth``, ``archive``, ``gateway`` and below.
"""
