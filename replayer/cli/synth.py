"""``replayer synth``: generate a realistic synthetic session as an archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from replayer.cli.output import ForceOption, err, fail, fmt_bytes, output_file
from replayer.cli.root import app


@app.command()
def synth(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Archive to write (a directory: a new file in it)."),
    ],
    guilds: Annotated[int, typer.Option(help="Guilds the bot is in.")] = 3,
    channels: Annotated[
        int, typer.Option(help="Channels per guild (from 3: a category and a voice channel).")
    ] = 5,
    roles: Annotated[
        int, typer.Option(help="Roles per guild, @everyone and the bot's role included.")
    ] = 4,
    members: Annotated[int, typer.Option(help="Members per guild, besides the bot.")] = 20,
    messages: Annotated[
        int, typer.Option(help="MESSAGE_CREATE dispatches (with --size: their share).")
    ] = 30,
    shards: Annotated[int, typer.Option(help="Shards, each its own connection.")] = 1,
    encoding: Annotated[str, typer.Option(help="Payload encoding: json or etf.")] = "json",
    compress: Annotated[
        str | None,
        typer.Option(help="zlib-stream or zstd-stream: in the URL and the wire sizes."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same session.")] = 0,
    chunk_requests: Annotated[
        int,
        typer.Option(
            min=0,
            help="REQUEST_GUILD_MEMBERS the client makes (answered by GUILD_MEMBERS_CHUNK). "
            "0 for clients that never ask (discord.py without chunking).",
        ),
    ] = 1,
    size: Annotated[
        str | None,
        typer.Option(
            help="Go on with events until the payloads reach this size (200MB, 1GB; 1 KB = 1024 B)."
        ),
    ] = None,
    voice: Annotated[
        bool,
        typer.Option(
            "--voice",
            help="The bot joins a voice channel: VOICE_STATE_UPDATE, VOICE_SERVER_UPDATE and a "
            "voice connection (HELLO, READY, SESSION DESCRIPTION, SPEAKING, heartbeats).",
        ),
    ] = False,
    force: ForceOption = False,
) -> None:
    """Generate a realistic synthetic gateway session (no Discord needed) as an archive.
    An existing archive is never replaced without --force."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from replayer.synth import SynthOptions, parse_size, write_synth

    output = output_file(output, force=force)

    for option, value, least in (
        ("--guilds", guilds, 0),
        ("--channels", channels, 1),
        ("--roles", roles, 1),
        ("--members", members, 0),
        ("--messages", messages, 0),
        ("--shards", shards, 1),
    ):
        if value < least:
            fail(f"{option} must be at least {least}, got {value}")
    if encoding not in ("json", "etf"):
        fail(f"--encoding must be json or etf, got {encoding!r}")
    if compress is not None and compress not in ("zlib-stream", "zstd-stream"):
        fail(f"--compress must be zlib-stream or zstd-stream, got {compress!r}")
    target: int | None = None
    if size is not None:
        try:
            target = parse_size(size)
        except ValueError as exc:
            fail(f"--size: {exc}")
        if guilds == 0:
            fail("--size needs at least one guild (--guilds) to send events in")
    if voice and (guilds < 1 or channels < 3):
        fail("--voice needs a guild with a voice channel: --guilds 1 or more, --channels 3 or more")
    try:
        options = SynthOptions(
            guilds=guilds, channels_per_guild=channels, roles_per_guild=roles,
            members_per_guild=members, messages=messages, shards=shards, encoding=encoding,
            compress=compress, seed=seed, target_bytes=target, member_chunk_requests=chunk_requests,
            voice=voice,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))
    payload = 0

    def seen(n: int) -> None:
        nonlocal payload
        payload = n

    try:
        if target is None:
            count = write_synth(output, options, seen, overwrite=force)
        else:
            columns = (BarColumn(), DownloadColumn(binary_units=True), TransferSpeedColumn())
            with Progress(
                "{task.description}", *columns, TimeRemainingColumn(), console=err, transient=True
            ) as bar:
                task = bar.add_task("synth", total=target)

                def step(n: int) -> None:
                    seen(n)
                    bar.update(task, completed=min(n, target))

                count = write_synth(output, options, step, overwrite=force)
    except FileExistsError:
        fail(f"{output}: already exists (--force replaces it; a directory gets a new file)")
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    err.print(
        f"wrote {output}: {count} records, {fmt_bytes(payload)} of payloads "
        f"({fmt_bytes(output.stat().st_size)} file), {guilds} guild(s), {shards} shard(s), "
        f"{'a voice connection, ' if voice else ''}seed {seed}"
    )
