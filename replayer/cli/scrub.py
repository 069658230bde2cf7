"""``replayer scrub``: pseudonymise an archive so that it can be published (issue #14).

What is replaced and what is kept: :mod:`replayer.archive.scrub` and docs/privacy.md.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from replayer.archive.header import Header
from replayer.archive.reader import ArchiveReader
from replayer.archive.scrub import Scrubber
from replayer.archive.writer import ArchiveWriter
from replayer.cli.output import (
    ArchivePath,
    ForceOption,
    complete_records,
    err,
    fail,
    progress_bar,
)
from replayer.cli.root import app

KEY_ENV = "REPLAYER_SCRUB_KEY"


def scrub_key(key: str | None, option: str = "--key") -> tuple[bytes, bool]:
    """The key's bytes and whether it was given. None: a random key (the pseudonyms then
    differ from run to run, and the caller says so); empty: refused."""
    if key is None:
        return secrets.token_bytes(32), False
    if not key:
        fail(f"{option}: the key is empty")
    return key.encode("utf-8", "surrogateescape"), True


def scrub_key_text(key: str | None, option: str) -> str:
    """``scrub_key`` for a key that travels as text (recording: mitmproxy's option, the
    worker's environment): a random one is hex."""
    if key is None:
        return secrets.token_hex(32)
    if not key:
        fail(f"{option}: the key is empty")
    return key


def random_key_notice(option: str = "--key") -> str:
    return (
        f"no {option} (or {KEY_ENV}): a random key was used, so another run gives other "
        "pseudonyms; give a key to scrub the same way every time"
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


@app.command()
def scrub(
    archive: ArchivePath,
    output: Annotated[Path, typer.Option("--output", "-o", help="Scrubbed archive to write.")],
    key: Annotated[
        str | None,
        typer.Option(
            envvar=KEY_ENV,
            help="Secret key: the same key gives the same pseudonyms. Default: a random one.",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Pseudonymise an archive to publish it: ids, names, text replaced (keyed), replayable."""
    if _same_file(archive, output):
        fail(f"{output}: the output is the input archive; write the scrubbed copy elsewhere")
    if output.exists() and not force:
        fail(f"{output}: already exists (--force writes over it)")
    if output.is_dir():
        fail(f"{output}: is a directory")
    secret, given = scrub_key(key)
    with ArchiveReader(archive) as reader:
        scrubber = Scrubber(secret)
        header = Header(
            created_unix_ns=reader.header.created_unix_ns,
            metadata={**reader.header.metadata, "scrubbed": True},
        )
        partial = output.with_name(output.name + ".partial")
        try:
            with (
                ArchiveWriter(partial, header=header, transform=scrubber.scrub) as writer,
                progress_bar(f"scrubbing {archive}", reader.size) as progress,
            ):
                for n, record in enumerate(complete_records(reader)):
                    writer.write(record)
                    if not n % 4096:
                        progress(reader.end_offset, reader.size)
            os.replace(partial, output)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    s = scrubber.stats
    err.print(
        f"wrote {output}: {s.records} records; {s.ids} ids mapped, {s.names} names, "
        f"{s.texts} texts replaced, {s.undecoded} undecoded payloads and bodies "
        "replaced by placeholders",
        markup=False,
    )
    if not given:
        err.print(random_key_notice(), markup=False)
