"""How to point each common client library at a replay or a recorder: data, printed by
``replayer replay`` and ``replayer record`` and tabled in the README.

Each snippet has the placeholders ``{rest_base}`` (``http://HOST:PORT/api/v10``), ``{api_root}``
(the same without the version, what discord.js takes), ``{gateway_url}`` and ``{token}`` (the
code snippets use a variable ``token`` instead).
Libraries that take their gateway URL from ``GET /gateway`` or ``/gateway/bot`` (py-cord,
nextcord, disnake, hikari, discord.js) need only the REST base: the replay and the recorder
answer those routes with their own gateway URL. discord.py has a fixed default gateway, so it
needs both. py-cord is imported as ``discord`` too, but builds its URLs from
``Route.API_BASE_URL``: a ``Route.BASE`` set for discord.py leaves it talking to discord.com.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientSettings:
    """One library's settings: its name and the lines that point it at the replay."""

    library: str
    language: str  # "python", "js" or "sh": what the lines are
    lines: tuple[str, ...]


CLIENTS: tuple[ClientSettings, ...] = (
    ClientSettings(
        "discord.py",
        "python",
        (
            "import discord, yarl",
            'discord.http.Route.BASE = "{rest_base}"',
            'discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("{gateway_url}")',
        ),
    ),
    # py-cord's discord/http.py: Route.API_BASE_URL, formatted with API_VERSION; its gateway
    # comes from GET /gateway (discord/gateway.py, from_client).
    ClientSettings(
        "py-cord (imported as discord)",
        "python",
        ("import discord", 'discord.http.Route.API_BASE_URL = "{rest_base}"'),
    ),
    # nextcord/http.py and disnake/http.py: Route.BASE, a class attribute; gateway from REST.
    ClientSettings(
        "nextcord", "python", ("import nextcord", 'nextcord.http.Route.BASE = "{rest_base}"')
    ),
    ClientSettings(
        "disnake", "python", ("import disnake", 'disnake.http.Route.BASE = "{rest_base}"')
    ),
    ClientSettings(
        "hikari",
        "python",
        (
            "import hikari",
            'bot = hikari.GatewayBot(token, rest_url="{rest_base}", banner=None)',
            "bot.run(check_for_updates=False)",
        ),
    ),
    ClientSettings(
        "discord.js",
        "js",
        ('const client = new Client({ intents, rest: { api: "{api_root}" } });',),
    ),
    ClientSettings(
        "@discordjs/ws",
        "js",
        (
            'const rest = new REST({ api: "{api_root}" }).setToken(token);',
            "const manager = new WebSocketManager({ token, intents, rest });",
        ),
    ),
    # What `replayer conform` gives the client it runs; a bot of one's own can read the same.
    ClientSettings(
        "any client (environment)",
        "sh",
        (
            "REPLAYER_REST_BASE={rest_base}",
            "REPLAYER_GATEWAY_URL={gateway_url}",
            "REPLAYER_TOKEN={token}",
        ),
    ),
)

# discord.js 14 (its WebSocketShard) sends RESUME with the seq it had before a burst it has not
# processed yet: op 7 in the same burst as READY gets a RESUME with a stale seq. --speed 0
# (everything at once) makes that burst likely.
DISCORD_JS_NOTE = (
    "discord.js 14 resumes with a stale seq when op 7 arrives in the same burst as READY, "
    "which --speed 0 makes likely: give it a pace (--speed 1) or a later trigger."
)


def api_root(rest_base: str) -> str:
    """``http://HOST:PORT/api`` from ``http://HOST:PORT/api/v10``."""
    head, _, last = rest_base.rstrip("/").rpartition("/")
    return head if last.startswith("v") and last[1:].isdigit() else rest_base


def readme_row(settings: ClientSettings) -> str:
    """The README's table row of ``settings``, for a replay on port ``P``."""
    lines = filled(settings, "http://127.0.0.1:P/api/v10", "ws://127.0.0.1:P/", "<token>")
    return f"| {settings.library} | " + "; ".join(f"`{line}`" for line in lines) + " |"


def filled(settings: ClientSettings, rest_base: str, gateway_url: str, token: str) -> list[str]:
    """The lines of ``settings`` with every placeholder filled."""
    values = {
        "{rest_base}": rest_base,
        "{api_root}": api_root(rest_base),
        "{gateway_url}": gateway_url,
        "{token}": token,
    }

    def fill(line: str) -> str:
        for placeholder, value in values.items():
            line = line.replace(placeholder, value)
        return line

    return [fill(line) for line in settings.lines]


def render(rest_base: str, gateway_url: str, token: str = "<token>") -> str:
    """Every library's settings, as ``replay`` and ``record`` print them."""
    blocks = []
    for settings in CLIENTS:
        body = "\n".join(f"    {line}" for line in filled(settings, rest_base, gateway_url, token))
        blocks.append(f"{settings.library}:\n{body}")
    blocks.append(f"note: {DISCORD_JS_NOTE}")
    return "\n".join(blocks)
