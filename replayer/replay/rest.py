"""The REST routes a client calls to find and start the gateway, answered without I/O.

Discord docs: Resources > Gateway (Get Gateway, Get Gateway Bot), Resources > User (Get
Current User), Resources > Application (Get Current Application). Any exchange recorded
in the archive is answered as recorded (matched by method and path, the API version
ignored); anything else gets Discord's JSON 404.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from replayer.archive.records import HttpRecord
from replayer.replay.script import ReplayScript

_API = re.compile(r"^/api(?:/v(?P<v>\d+))?(?P<rest>/[^?]*)?(?:\?.*)?$")
JSON_TYPE = "application/json"  # exactly: discord.py parses JSON only for this value


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    body: bytes
    content_type: str = JSON_TYPE


def _json(status: int, obj: Any) -> RestResponse:
    return RestResponse(status, json.dumps(obj, separators=(",", ":")).encode())


def not_found() -> RestResponse:
    return _json(404, {"message": "404: Not Found", "code": 0})


class RestRouter:
    """Answers REST requests for one replay."""

    def __init__(self, script: ReplayScript, gateway_url: str, token: str | None = None) -> None:
        self.script = script
        self.token = token.removeprefix("Bot ") if token else None
        self.gateway_url = gateway_url.rstrip("/")
        self._recorded: dict[tuple[str, str], HttpRecord] = {}
        for record in script.http:
            route = _route(record.path)
            if route is not None:
                self._recorded.setdefault((record.method.upper(), route), record)

    def handle(self, method: str, path: str, authorization: str | None = None) -> RestResponse:
        route = _route(path)
        if route is None:
            return not_found()
        # With a token set, a request with another one is refused as Discord does, so a
        # client fails at login (discord.py: LoginFailure) rather than at the gateway.
        if self.token is not None and route != "/gateway":
            given = (authorization or "").removeprefix("Bot ").strip()
            if given != self.token:
                return _json(401, {"message": "401: Unauthorized", "code": 0})
        method = method.upper()
        if method == "GET" and route == "/gateway":
            return _json(200, {"url": self.gateway_url})
        if method == "GET" and route == "/gateway/bot":
            # hikari refuses to start when `remaining` is below its shard count.
            return _json(
                200,
                {
                    "url": self.gateway_url,
                    "shards": self.script.num_shards,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 1000,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                },
            )
        recorded = self._recorded.get((method, route))
        if recorded is not None:
            content_type = JSON_TYPE
            for name, value in recorded.response_headers:
                if name.lower() == "content-type" and not value.lower().startswith(JSON_TYPE):
                    content_type = value
            return RestResponse(recorded.status, recorded.response_body, content_type)
        if method == "GET" and route == "/users/@me":
            return _json(200, self._user())
        if method == "GET" and route == "/oauth2/applications/@me":
            return _json(200, self._application())
        return not_found()

    def _user(self) -> dict[str, Any]:
        user = dict(self.script.ready_user or {})
        user.setdefault("id", "0")
        user.setdefault("username", "replayer")
        user.setdefault("discriminator", "0")
        user.setdefault("avatar", None)
        user.setdefault("bot", True)
        return user

    def _application(self) -> dict[str, Any]:
        """What discord.py's application_info needs (gateway-facts.md, Gotchas)."""
        user = self._user()
        app = dict(self.script.application or {})
        app.setdefault("id", user["id"])
        app.update(
            {
                "name": user["username"],
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": {k: user[k] for k in ("id", "username", "discriminator", "avatar")},
                "flags": app.get("flags", 0),
            }
        )
        return app


def _route(path: str) -> str | None:
    """``/api/v10/gateway/bot?x=1`` -> ``/gateway/bot``; None when not under /api."""
    m = _API.match(path)
    if m is None:
        return None
    return (m.group("rest") or "/").rstrip("/") or "/"
