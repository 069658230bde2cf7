"""The voice session's negotiated parts (Voice Connections > Establishing a Voice UDP
Connection; Transport Encryption Modes).

The two modes Discord still offers: ``aead_aes256_gcm_rtpsize`` (preferred when available)
and ``aead_xchacha20_poly1305_rtpsize`` (required); the others are deprecated and gone since
2024-11-18. The secret key is 32 bytes.
"""

from __future__ import annotations

ENCRYPTION_MODES: tuple[str, ...] = (
    "aead_aes256_gcm_rtpsize",
    "aead_xchacha20_poly1305_rtpsize",
)
SECRET_KEY_BYTES = 32
VOICE_GATEWAY_VERSION = 8  # heartbeats {t, seq_ack}, server messages carry seq


def heartbeat_fields(d: object) -> tuple[int | None, int | None]:
    """``(t, seq_ack)`` of a v8 HEARTBEAT's d (``{"t": nonce, "seq_ack": n}``); a bare
    integer d (v4 and older) is a nonce with no seq_ack."""
    if isinstance(d, dict):
        t, seq_ack = d.get("t"), d.get("seq_ack")
        return (t if type(t) is int else None, seq_ack if type(seq_ack) is int else None)
    if type(d) is int:
        return d, None
    return None, None
