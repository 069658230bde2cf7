"""mitmproxy addon: record Discord gateway traffic into a replayer archive.

    mitmdump -s "$(replayer addon-path)" --set gateway_record=session.rpl

Shipped in the package (``replayer addon-path`` prints its path); needs replayer installed in
mitmproxy's Python. Options and behaviour: :mod:`replayer.record.addon`.
"""

from __future__ import annotations

from replayer.record.addon import GatewayRecorderAddon

addons = [GatewayRecorderAddon()]
