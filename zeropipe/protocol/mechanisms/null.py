"""The NULL mechanism (RFC 23): both sides send READY with their metadata.

A side with a ZAP domain asks its handler first and sends READY only if the
handler accepts (ERROR with the status code otherwise), as libzmq does.
"""

from __future__ import annotations

from zeropipe.protocol.commands import (
    ERROR,
    READY,
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
from zeropipe.protocol.zap import ZapRequest


class NullMechanism(Mechanism):
    """NULL security: no authentication, READY both ways."""

    name = b"NULL"

    _sent = False
    _asked = False

    def next_commands(self) -> list[tuple[bytes, bytes]]:
        if self._sent:
            return []
        if not self._asked:
            self._asked = True
            if self.ask_zap(ZapRequest(self.name, ())):
                return []
        if self.zap_request is not None:
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

    @property
    def done(self) -> bool:
        return self._sent and self.peer_metadata is not None
