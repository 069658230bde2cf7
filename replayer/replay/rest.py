"""The REST routes a client calls to find and start the gateway, answered without I/O.

Any exchange recorded in the archive is answered as recorded (matched by method and path,
the API version ignored). The routes the usual libraries call at start-up are answered
even when the archive lacks them, with a default (docs/gateway-conduct.md):

- ``GET /gateway``, ``GET /gateway/bot`` (Events > Gateway > Get Gateway, Get Gateway Bot):
  always this server's URL; ``session_start_limit`` live from :class:`SessionStarts`.
- ``GET /users/@me`` (Resources > User > Get Current User): READY's user.
- ``GET /oauth2/applications/@me`` (Topics > OAuth2 > Get Current Bot Application
  Information), ``GET /applications/@me`` (Resources > Application > Get Current
  Application): READY's application, with what discord.py needs.
- ``GET /soundboard-default-sounds`` (Resources > Soundboard > List Default Soundboard
  Sounds): ``[]``.
- ``GET``, ``POST`` and bulk ``PUT`` of ``/applications/{id}/commands`` and
  ``/applications/{id}/guilds/{id}/commands`` (Interactions > Application Commands):
  what this run PUT or POSTed, else what was recorded, else ``[]``.

Anything else gets Discord's JSON 404, and is listed (:meth:`RestRouter.answered_404`) so
that the replay can say at the end why a bot stalled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from replayer.archive.records import HttpRecord
from replayer.replay.script import ReplayScript
from replayer.replay.starts import SessionStarts, limit_for

_API = re.compile(r"^/api(?:/v(?P<v>\d+))?(?P<rest>/[^?]*)?(?:\?.*)?$")
# /applications/{application.id}/commands, /applications/{id}/guilds/{guild.id}/commands
_COMMANDS = re.compile(r"^/applications/(?P<app>[^/]+)(?:/guilds/(?P<guild>[^/]+))?/commands$")
MAX_404_ROUTES = 50  # distinct routes listed; the rest are counted
MAX_COMMANDS = 200  # Discord: 100 global + 100 guild commands per type and scope
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


def invalid_form_body(why: str) -> RestResponse:
    """Discord's 400 for a body it cannot take (Reference > Error Messages, code 50035)."""
    return _json(400, {"message": "Invalid Form Body", "code": 50035, "errors": {"_errors": why}})


class RestRouter:
    """Answers REST requests for one replay."""

    def __init__(
        self,
        script: ReplayScript,
        gateway_url: str,
        token: str | None = None,
        starts: SessionStarts | None = None,
    ) -> None:
        """``starts``: the replay's session starts (shared with the engine, so that
        ``remaining`` counts its IDENTIFYs); None: the archive's limit, never decremented."""
        self.script = script
        self.token = token.removeprefix("Bot ") if token else None
        self.gateway_url = gateway_url.rstrip("/")
        self.starts = starts or SessionStarts(limit_for(script.http, None))
        self._recorded: dict[tuple[str, str], HttpRecord] = {}
        for record in script.http:
            route = _route(record.path)
            if route is not None:
                self._recorded.setdefault((record.method.upper(), route), record)
        # (application id, guild id or None) -> the commands PUT or POSTed in this run
        self._commands: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self._next_id = 0
        self._404: dict[str, int] = {}  # "METHOD /path" -> times, in order of first answer
        self._404_more = 0  # answers to routes beyond MAX_404_ROUTES

    def answered_404(self) -> list[str]:
        """The routes answered with this replay's own 404 (not a recorded one), in order of
        first request: ``GET /api/v10/foo (3)``."""
        listed = [f"{route} ({n})" if n > 1 else route for route, n in self._404.items()]
        if self._404_more:
            listed.append(f"{self._404_more} more requests to other routes")
        return listed

    def _not_found(self, method: str, path: str) -> RestResponse:
        key = f"{method.upper()} {path.split('?', 1)[0]}"
        if key in self._404 or len(self._404) < MAX_404_ROUTES:
            self._404[key] = self._404.get(key, 0) + 1
        else:
            self._404_more += 1
        return not_found()

    def handle(
        self,
        method: str,
        path: str,
        authorization: str | None = None,
        body: bytes = b"",
        now_ns: int = 0,
    ) -> RestResponse:
        """Answer one request; ``now_ns`` on the replay's clock (``reset_after``)."""
        route = _route(path)
        if route is None:
            return self._not_found(method, path)
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
                    "session_start_limit": self.starts.current(now_ns).to_json(),
                },
            )
        commands = _COMMANDS.match(route)
        if commands is not None and method in ("PUT", "POST"):
            return self._put_commands(method, commands["app"], commands["guild"], body)
        if commands is not None and method == "GET":
            stored = self._commands.get((commands["app"], commands["guild"]))
            if stored is not None:
                return _json(200, stored)
        recorded = self._recorded.get((method, route))
        if recorded is not None:
            content_type = JSON_TYPE
            for name, value in recorded.response_headers:
                if name.lower() == "content-type" and not value.lower().startswith(JSON_TYPE):
                    content_type = value
            return RestResponse(recorded.status, recorded.response_body, content_type)
        if method == "GET" and route == "/users/@me":
            return _json(200, self._user())
        if method == "GET" and route in ("/oauth2/applications/@me", "/applications/@me"):
            return _json(200, self._application())
        if method == "GET" and route == "/soundboard-default-sounds":
            return _json(200, [])  # py-cord waits for it before on_ready
        if method == "GET" and commands is not None:
            return _json(200, [])
        return self._not_found(method, path)

    def _put_commands(
        self, method: str, app_id: str, guild_id: str | None, body: bytes
    ) -> RestResponse:
        """Bulk overwrite (PUT: a list, answered with the list) or create (POST: one
        command, 201; one of the same name and type is replaced, 200), echoed with ids
        (Interactions > Application Commands > Bulk Overwrite / Create)."""
        try:
            given = json.loads(body or b"null")
        except ValueError:
            return invalid_form_body("the body is not JSON")
        items = given if method == "PUT" else [given]
        if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
            what = "a list of command objects" if method == "PUT" else "a command object"
            return invalid_form_body(f"expected {what}")
        if len(items) > MAX_COMMANDS:
            return invalid_form_body(f"at most {MAX_COMMANDS} commands")
        scope = (app_id, guild_id)
        stored = [] if method == "PUT" else list(self._commands.get(scope, []))
        made = [self._command(c, app_id, guild_id) for c in items]
        status = 200
        if method == "POST":
            key = (made[0]["name"], made[0]["type"])
            kept = [c for c in stored if (c.get("name"), c.get("type")) != key]
            status = 200 if len(kept) < len(stored) else 201
            stored = kept
        stored += made
        self._commands[scope] = stored
        return _json(status, made if method == "PUT" else made[0])

    def _command(self, given: dict[str, Any], app_id: str, guild_id: str | None) -> dict[str, Any]:
        """An application command object as Discord answers it: ids and defaults added."""
        self._next_id += 1
        command: dict[str, Any] = {
            "id": str(given.get("id") or 1_000_000_000_000_000_000 + self._next_id),
            "application_id": app_id,
            "version": str(1_000_000_000_000_000_000 + self._next_id),
            "type": 1,
            "name": "",
            "description": "",
            "default_member_permissions": None,
            "nsfw": False,
        }
        command.update(given)
        command["application_id"] = app_id
        if guild_id is not None:
            command["guild_id"] = guild_id
        return command

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
