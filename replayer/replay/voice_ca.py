"""The voice face's TLS certificate, from a local CA created on first use (I/O: files).

Clients hard-code ``wss://`` for the voice gateway (discord.py: ``f"wss://{endpoint}/?v=8"``),
so the replay's voice face speaks TLS. Its certificate (for ``127.0.0.1``, ``::1`` and
``localhost``) is signed by a CA of the replayer's own, made with mitmproxy's certificate
code and kept in ``$REPLAYER_HOME/ca`` (default ``~/.replayer/ca``). A client trusts it with
``SSL_CERT_FILE`` (Python's ssl, so aiohttp and discord.py) or ``NODE_EXTRA_CA_CERTS``
(Node, discord.js).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy.certs import CertStore

from replayer.errors import ReplayerError

CA_BASENAME = "replayer"
KEY_BITS = 2048
FACE_HOSTS = ("localhost",)
FACE_ADDRESSES = ("127.0.0.1", "::1")


def default_ca_dir() -> Path:
    """``$REPLAYER_HOME/ca``, or ``~/.replayer/ca``."""
    home = os.environ.get("REPLAYER_HOME")
    return (Path(home) if home else Path.home() / ".replayer") / "ca"


@dataclass(frozen=True)
class VoiceTls:
    """The CA a client must trust, and the voice face's certificate chain and key."""

    ca_cert: Path  # the CA certificate alone (what SSL_CERT_FILE / NODE_EXTRA_CA_CERTS name)
    chain: Path  # the face's certificate then the CA's
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.chain, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a test client uses to trust the face (in-process, no environment)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def hints(self) -> list[str]:
        """The settings each client library needs to trust the CA."""
        return [f"SSL_CERT_FILE={self.ca_cert}", f"NODE_EXTRA_CA_CERTS={self.ca_cert}"]


class VoiceCaError(ReplayerError):
    """The CA directory cannot be read or written."""


def local_ca(directory: Path | None = None) -> VoiceTls:
    """The CA in ``directory`` (created on first use), and a certificate for the face;
    :class:`VoiceCaError` (one line) when the directory cannot be used."""
    directory = directory if directory is not None else default_ca_dir()
    try:
        return _local_ca(directory)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise VoiceCaError(f"voice CA in {directory}: {why} (--ca-dir chooses another)") from None


def _local_ca(directory: Path) -> VoiceTls:
    chain = directory / "voice-face-chain.pem"
    key = directory / "voice-face-key.pem"
    ca_cert = directory / f"{CA_BASENAME}-ca-cert.pem"
    if _still_good(chain, key, ca_cert):
        # Loading the CA's key is most of the cost (RSA key checks: ~0.7 s): skipped
        # while the face's certificate from last time is still valid for this CA.
        return VoiceTls(ca_cert, chain, key)
    store = CertStore.from_store(directory, CA_BASENAME, KEY_BITS)
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in FACE_HOSTS]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in FACE_ADDRESSES]
    entry = store.get_cert("localhost", sans)
    chain.write_bytes(entry.cert.to_pem() + ca_cert.read_bytes())
    with CertStore.umask_secret():
        key.write_bytes(
            entry.privatekey.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return VoiceTls(ca_cert, chain, key)


def _still_good(chain: Path, key: Path, ca_cert: Path) -> bool:
    """The face's certificate chain is there, ends with this CA, and has a week left."""
    try:
        pem = chain.read_bytes()
        ca = ca_cert.read_bytes()
        if not key.exists() or not pem.endswith(ca):
            return False
        cert = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError):
        return False
    left = cert.not_valid_after_utc - datetime.now(UTC)
    return left > timedelta(days=7)
