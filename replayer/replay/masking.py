"""RFC 6455 section 5.1: "a server MUST close the connection upon receiving a frame that
is not masked" (and Discord's gateway does). A tracker of frame boundaries in the
client's byte stream that says when a frame without the mask bit begins; pure, fed
with whatever chunks the transport delivers."""

from __future__ import annotations

PROTOCOL_ERROR = 1002  # RFC 6455 section 7.4.1


class MaskCheck:
    """Feed the client's bytes in order; :meth:`feed` is False from the first unmasked
    frame on."""

    __slots__ = ("_head", "_skip", "unmasked")

    def __init__(self) -> None:
        self._head = b""  # the bytes of a frame header read so far
        self._skip = 0  # payload bytes of the current frame still to come
        self.unmasked = False

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        if self.unmasked:
            return False
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            # A frame header: 2 bytes, 0, 2 or 8 of extended length, 4 of mask key.
            head = self._head + bytes(data[pos : pos + 14 - len(self._head)])
            if len(head) < 2:
                self._head = head
                return True
            if not head[1] & 0x80:
                self.unmasked = True
                return False
            size7 = head[1] & 0x7F
            extra = 2 if size7 == 126 else 8 if size7 == 127 else 0
            need = 2 + extra + 4
            if len(head) < need:  # the rest of the header is still to come
                self._head = head
                return True
            pos += need - len(self._head)
            self._head = b""
            self._skip = int.from_bytes(head[2 : 2 + extra], "big") if extra else size7
        return True
