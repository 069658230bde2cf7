"""A mitmproxy addon whose websocket_message hook does nothing: what any recording addon
pays for being called once per message (record_bench's "mitmdump+noop hook" runs)."""

from __future__ import annotations

from mitmproxy import http


class NoopHook:
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        pass


addons = [NoopHook()]
