"""mitmproxy addon: record Discord gateway traffic into a replayer archive.

    mitmdump -s addons/gateway_recorder.py --set gateway_record=session.rpl

The repository's path to the addon the package ships (``replayer addon-path`` prints where an
installed replayer has it): both load the same :mod:`replayer.record.addon`. Needs replayer
installed in mitmproxy's Python.
"""

from __future__ import annotations

from replayer.record.addon import GatewayRecorderAddon

addons = [GatewayRecorderAddon()]
