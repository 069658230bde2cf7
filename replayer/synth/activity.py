"""The event stream's payloads: MESSAGE_CREATE (with mentions and attachments),
PRESENCE_UPDATE and TYPING_START, in guilds of a :class:`World`."""

from __future__ import annotations

import itertools
import random
from bisect import bisect_right

from replayer.synth.guilds import STATUS_WEIGHTS, STATUSES, Guild, World, words
from replayer.synth.ids import JSON, Mint, below, encode_json, iso_time, random_hex, session_ms
from replayer.synth.options import SynthOptions

CONTENT_POOL = 4096
_STATUS_CUM_WEIGHTS = list(itertools.accumulate(STATUS_WEIGHTS))
_STATUS_TOTAL = _STATUS_CUM_WEIGHTS[-1] + 0.0
_WORDS = words(
    "the a to and of is it you that in for on this was with i just have be so but not are "
    "what like can do my we get if all at no your out up about how one they good think "
    "know really yeah when time people now there would more me lol go some see make going "
    "back also why any any only new then here game server bot update patch build test "
    "deploy queue raid match ranked stream tonight tomorrow weekend anyone later thanks "
    "nice cool idea bug fix crash works broken again maybe probably definitely agree "
    "music song playlist meme channel voice role mod admin discord link check message"
)


class Activity:
    """What members do; message texts come from a pool drawn when this is built."""

    def __init__(self, options: SynthOptions, rng: random.Random, mint: Mint, world: World) -> None:
        self.o = options
        self.rng = rng
        self.flake = mint.flake
        self.world = world
        # Message texts are drawn from a pool: cheaper than composing each one.
        self._contents = [self._content() for _ in range(CONTENT_POOL)]
        self._random, self._bits = rng.random, rng.getrandbits
        self._contents_json: list[str] | None = None  # their JSON, once a message needs it

    def _content(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.02:
            words = rng.randrange(150, 330)  # a wall of text, near the 2000-character limit
        elif roll < 0.25:
            words = rng.randrange(12, 40)
        else:
            words = rng.randrange(1, 12)
        return " ".join(rng.choices(_WORDS, k=words))[:2000]

    def _author(self, guild: Guild) -> int:
        """A member index; a few members do most of the talking."""
        members = self.o.members_per_guild
        if not members:
            return -1
        return int(members * self.rng.random() ** 2)

    def _user_of(self, guild: Guild, k: int) -> JSON:
        return self.world.bot_user if k < 0 else self.world.member(guild.index, k)[0]

    def _partial_member(self, guild: Guild, k: int) -> JSON:
        if k < 0:
            member = dict(self.world.bot_member(guild))
            del member["user"]
            return member
        return self.world.member(guild.index, k)[1]

    def _channel(self, guild: Guild) -> str:
        text = guild.text_channel_ids
        return text[0] if self.rng.random() < 0.5 else self.rng.choice(text)

    def _draw_message(
        self, guild: Guild, t_ns: int
    ) -> tuple[int, str, int, str, int, int | None, JSON | None, str | None]:
        """What a message draws from ``rng``, in order: (now_ms, channel_id, author, id,
        content index, mentioned member or None, attachment or None, nonce or None)."""
        random_, bits = self._random, self._bits
        now_ms = session_ms(t_ns)
        # _channel and _author, inline (the draws in the same order)
        text = guild.text_channel_ids
        channel_id = text[0] if random_() < 0.5 else text[below(bits, len(text))]
        members = self.o.members_per_guild
        k = int(members * random_() ** 2) if members else -1
        message_id = str(self.flake(now_ms))
        content = below(bits, CONTENT_POOL)
        other = None
        if random_() < 0.1 and members:
            other = below(bits, members)
        attachment = self._attachment(now_ms, channel_id) if random_() < 0.04 else None
        # Sent from a client: it carries the client's nonce.
        nonce = str(self.flake(now_ms - 50 - below(bits, 350))) if random_() < 0.8 else None
        return now_ms, channel_id, k, message_id, content, other, attachment, nonce

    def _attachment(self, now_ms: int, channel_id: str) -> JSON:
        """Resources > Message > Attachment Object."""
        rng = self.rng
        attachment_id = str(self.flake(now_ms))
        name = rng.choice(("image.png", "screenshot.png", "clip.mp4", "log.txt"))
        path = f"attachments/{channel_id}/{attachment_id}/{name}"
        expiry = f"?ex={now_ms // 1000 + 86400:x}&is={now_ms // 1000:x}&hm={random_hex(rng, 64)}&"
        attachment: JSON = {
            "id": attachment_id,
            "filename": name,
            "size": rng.randrange(2_000, 8_000_000),
            "url": f"https://cdn.discordapp.com/{path}{expiry}",
            "proxy_url": f"https://media.discordapp.net/{path}{expiry}",
            "content_type": {"png": "image/png", "mp4": "video/mp4"}.get(
                name.rsplit(".", 1)[1], "text/plain; charset=utf-8"
            ),
        }
        if name.endswith(".png"):
            attachment.update(width=rng.choice((1920, 1280, 800)), height=rng.choice((1080, 720)))
        return attachment

    def message(self, guild: Guild, t_ns: int) -> JSON:
        """Resources > Message > Message Object, as MESSAGE_CREATE carries it."""
        now_ms, channel_id, k, message_id, c, other, attachment, nonce = self._draw_message(
            guild, t_ns
        )
        content = self._contents[c]
        mentions: list[JSON] = []
        if other is not None:
            user = self.world.member(guild.index, other)[0]
            content = f"<@{user['id']}> {content}"[:2000]
            mentions.append({**user, "member": self._partial_member(guild, other)})
        message: JSON = {
            "type": 0,
            "tts": False,
            "timestamp": iso_time(now_ms),
            "pinned": False,
            "mentions": mentions,
            "mention_roles": [],
            "mention_everyone": False,
            "member": self._partial_member(guild, k),
            "id": message_id,
            "flags": 0,
            "embeds": [],
            "edited_timestamp": None,
            "content": content,
            "components": [],
            "channel_id": channel_id,
            "author": self._user_of(guild, k),
            "attachments": [] if attachment is None else [attachment],
            "guild_id": str(guild.id),
        }
        if nonce is not None:
            message["nonce"] = nonce
        return message

    def message_json(self, guild: Guild, t_ns: int) -> str:
        """:meth:`message` as JSON text (``encode_json``'s), from the same draws: built
        from cached fragments (members, texts) rather than a dict encoded whole."""
        now_ms, channel_id, k, message_id, c, other, attachment, nonce = self._draw_message(
            guild, t_ns
        )
        world = self.world
        g = guild.index
        if other is None:
            mentions = "[]"
            contents_json = self._contents_json
            if contents_json is None:
                contents_json = self._contents_json = list(map(encode_json, self._contents))
            content = contents_json[c]
        else:
            user_json, partial, _ = world.member_json(g, other)
            user_id = world.member(g, other)[0]["id"]
            content = encode_json(f"<@{user_id}> {self._contents[c]}"[:2000])
            mentions = f'[{user_json[:-1]},"member":{partial}}}]'
        author, member, _ = world.member_json(g, k)
        attachments = "[]" if attachment is None else f"[{encode_json(attachment)}]"
        tail = "}" if nonce is None else f',"nonce":"{nonce}"}}'
        return (
            f'{{"type":0,"tts":false,"timestamp":"{iso_time(now_ms)}","pinned":false,'
            f'"mentions":{mentions},"mention_roles":[],"mention_everyone":false,'
            f'"member":{member},"id":"{message_id}","flags":0,"embeds":[],'
            f'"edited_timestamp":null,"content":{content},"components":[],'
            f'"channel_id":"{channel_id}","author":{author},"attachments":{attachments},'
            f'"guild_id":"{guild.id}"{tail}'
        )

    def _bot_presence(self, guild: Guild) -> JSON:
        return {
            "user": {"id": self.world.bot_user["id"]},
            "status": "online",
            "guild_id": str(guild.id),
            "client_status": {"web": "online"},
            "activities": [],
        }

    def presence_update(self, guild: Guild, t_ns: int) -> JSON:
        """Events > Gateway Events > Presence Update."""
        rng = self.rng
        members = self.o.members_per_guild
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        if not members:  # only the bot: its own presence
            return self._bot_presence(guild)
        presence = self.world.presence(
            guild.index, rng.randrange(members), status, session_ms(t_ns), rng
        )
        return {
            "user": presence["user"],
            "status": presence["status"],
            "guild_id": str(guild.id),
            "client_status": presence["client_status"],
            "activities": presence["activities"],
        }

    def presence_update_json(self, guild: Guild, t_ns: int) -> str:
        """:meth:`presence_update` as JSON text (``encode_json``'s), from the same draws."""
        # rng.choices(STATUSES, STATUS_WEIGHTS)[0], with choices' own arithmetic
        status = STATUSES[bisect_right(_STATUS_CUM_WEIGHTS, self._random() * _STATUS_TOTAL, 0, 3)]
        members = self.o.members_per_guild
        if not members:
            return encode_json(self._bot_presence(guild))
        k = below(self._bits, members)
        return self.world.presence_json(
            guild.index, k, status, session_ms(t_ns), self.rng, str(guild.id)
        )

    def typing(self, guild: Guild, t_ns: int) -> JSON:
        """Events > Gateway Events > Typing Start (``timestamp`` in Unix seconds)."""
        k = self._author(guild)
        return {
            "user_id": self._user_of(guild, k)["id"],
            "timestamp": session_ms(t_ns) // 1000,
            "member": self.world.member_with_user(guild.index, k),
            "channel_id": self._channel(guild),
            "guild_id": str(guild.id),
        }

    def typing_json(self, guild: Guild, t_ns: int) -> str:
        """:meth:`typing` as JSON text (``encode_json``'s), from the same draws."""
        k = self._author(guild)
        user_id = self._user_of(guild, k)["id"]
        member = self.world.member_json(guild.index, k)[2]
        return (
            f'{{"user_id":"{user_id}","timestamp":{session_ms(t_ns) // 1000},'
            f'"member":{member},"channel_id":"{self._channel(guild)}","guild_id":"{guild.id}"}}'
        )
