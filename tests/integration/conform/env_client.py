"""A small client program for the --client-cmd and ``replayer test`` tests: it checks the
environment a case gives it, writes what it found to the file REPLAYER_ENV_OUT names, then
runs the reference client (its arguments go to it: --mistake ...)."""

from __future__ import annotations

import json
import os
import re
import sys

from replayer.conform import reference_client

names = ("REPLAYER_REST_BASE", "REPLAYER_GATEWAY_URL", "REPLAYER_TOKEN", "REPLAYER_CASE")
found = {name: os.environ.get(name) for name in names}
problems = [name for name, value in found.items() if not value]
if not re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v10", found["REPLAYER_REST_BASE"] or ""):
    problems.append("REPLAYER_REST_BASE")
if not re.fullmatch(r"ws://127\.0\.0\.1:\d+/", found["REPLAYER_GATEWAY_URL"] or ""):
    problems.append("REPLAYER_GATEWAY_URL")
if not re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", found["REPLAYER_TOKEN"] or ""):  # bot-token shape
    problems.append("REPLAYER_TOKEN")
case = found["REPLAYER_CASE"] or ""
with open(os.environ["REPLAYER_ENV_OUT"] + "." + case, "w") as out:
    json.dump({"env": found, "problems": problems, "argv": sys.argv[1:], "pid": os.getpid()}, out)
print(f"env client: case {case}, problems {problems}", flush=True)
if problems:
    sys.exit(3)
sys.exit(reference_client.main(sys.argv[1:]))
