"""The NULL mechanism (RFC 23): both sides send READY with their metadata."""

from __future__ import annotations

from zeropipe.protocol.commands import (
    ERROR,
    READY,
    Metadata,
    decode_error,
    decode_metadata,
    encode_metadata,
)
from zeropipe.protocol.errors import (
    ZMTP_UNEXPECTED_COMMAND,
    PeerErrorReceived,
    RemoteProtocolError,
)
from zeropipe.protocol.mechanisms.base import Mechanism


class NullMechanism(Mechanism):
    """NULL security: no authentication, READY both ways."""

    name = b"NULL"

    def __init__(self, metadata: Metadata) -> None:
        super().__init__(metadata)
        self._sent = False

    def next_commands(self) -> list[tuple[bytes, bytes]]:
        if self._sent:
            return []
        self._sent = True
        return [(READY, encode_metadata(self.local_metadata))]

    def process_command(self, name: bytes, data: bytes) -> None:
        if name == ERROR:
            raise PeerErrorReceived(decode_error(data))
        if name != READY or self.peer_metadata is not None:
            raise RemoteProtocolError(
                f"unexpected command {name!r} during the NULL handshake",
                error_reason="Unexpected command",
                code=ZMTP_UNEXPECTED_COMMAND,
            )
        self.peer_metadata = decode_metadata(data)
