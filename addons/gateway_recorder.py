"""mitmproxy addon: record Discord gateway traffic into a replayer archive.

    mitmdump -s addons/gateway_recorder.py --set gateway_record=session.rpl

Needs replayer installed in mitmproxy's Python. Options and behaviour:
:mod:`replayer.record.addon`.
"""

from __future__ import annotations

from replayer.record.addon import GatewayRecorderAddon

addons = [GatewayRecorderAddon()]
