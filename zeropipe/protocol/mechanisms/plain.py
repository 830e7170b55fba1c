"""The PLAIN mechanism (RFC 24): a username and password, checked by the server's ZAP handler.

Client: HELLO (credentials) -> WELCOME -> INITIATE (metadata) -> READY.
Server: HELLO -> ZAP verdict -> WELCOME, or ERROR -> INITIATE -> READY.
PLAIN sends the password in clear; it authenticates, it does not protect.
"""

from __future__ import annotations

from zeropipe.protocol.commands import (
    LIBZMQ_PLAIN_ERROR,
    READY,
    Metadata,
    decode_metadata,
    encode_error,
    encode_metadata,
)
from zeropipe.protocol.errors import (
    ZMTP_INVALID_METADATA,
    ZMTP_MALFORMED_COMMAND_HELLO,
    ZMTP_MALFORMED_COMMAND_WELCOME,
    RemoteProtocolError,
)
from zeropipe.protocol.frames import frame_header
from zeropipe.protocol.mechanisms.base import SteppedMechanism
from zeropipe.protocol.zap import ZapRequest

HELLO = b"HELLO"
WELCOME = b"WELCOME"
INITIATE = b"INITIATE"


def encode_hello(username: bytes, password: bytes) -> bytes:
    """HELLO's data: each credential with a one-byte length."""
    if len(username) > 255 or len(password) > 255:
        raise ValueError("PLAIN username and password are at most 255 bytes each")
    return bytes((len(username),)) + username + bytes((len(password),)) + password


def decode_hello(data: bytes) -> tuple[bytes, bytes]:
    """(username, password) of a HELLO, refusing any length that does not fit exactly."""
    fields = []
    pos = 0
    for _ in range(2):
        if pos >= len(data) or pos + 1 + data[pos] > len(data):
            raise _malformed_hello()
        size = data[pos]
        fields.append(data[pos + 1 : pos + 1 + size])
        pos += 1 + size
    if pos != len(data):
        raise _malformed_hello()
    return fields[0], fields[1]


def _malformed_hello() -> RemoteProtocolError:
    return RemoteProtocolError(
        "malformed PLAIN HELLO", error_reason="Malformed HELLO", code=ZMTP_MALFORMED_COMMAND_HELLO
    )


def peer_metadata(data: bytes) -> Metadata:
    """Decode INITIATE/READY metadata with libzmq's error code."""
    try:
        return decode_metadata(data)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(str(exc), code=ZMTP_INVALID_METADATA) from None


class PlainMechanism(SteppedMechanism):
    """Either side of PLAIN; the server always needs a ZAP handler (as libzmq)."""

    name = b"PLAIN"

    def __init__(
        self,
        metadata: Metadata,
        *,
        as_server: bool,
        username: bytes = b"",
        password: bytes = b"",
    ) -> None:
        super().__init__(metadata, as_server=as_server, zap=True, zap_required=True)
        self._expect = HELLO if as_server else WELCOME
        if not as_server:
            self._queue.append((HELLO, encode_hello(username, password)))

    def process_command(self, name: bytes, data: bytes) -> None:
        self._take(name, data)
        if name == HELLO:
            username, password = decode_hello(data)
            self.ask_zap(ZapRequest(self.name, (username, password)))
        elif name == WELCOME:
            if data:
                raise RemoteProtocolError(
                    "malformed PLAIN WELCOME", code=ZMTP_MALFORMED_COMMAND_WELCOME
                )
            self._expect = READY
            self._queue.append((INITIATE, encode_metadata(self.local_metadata)))
        elif name == INITIATE:
            self.peer_metadata = peer_metadata(data)
            self._queue.append((READY, encode_metadata(self.local_metadata)))
        else:  # READY, client side
            self.peer_metadata = peer_metadata(data)

    def error_frame(self, reason: str) -> bytes:
        # In libzmq's form: a PLAIN client of libzmq's reads no other (see LIBZMQ_PLAIN_ERROR).
        body = LIBZMQ_PLAIN_ERROR + encode_error(reason)
        return frame_header(len(body), command=True) + body

    def zap_granted(self) -> None:
        self._expect = INITIATE
        self._queue.append((WELCOME, b""))
