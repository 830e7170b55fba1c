"""Protocol errors, split the h11 way.

``LocalProtocolError``: the code using the state machine asked for something
the protocol forbids (a programming error on our side).
``RemoteProtocolError``: the peer broke the protocol; the connection must be
closed and nothing it sent in the broken message may be delivered.
"""

from __future__ import annotations

#: libzmq's ZMQ_PROTOCOL_ERROR_* codes (reported by monitors with HANDSHAKE_FAILED_PROTOCOL).
ZMTP_UNSPECIFIED = 0x10000000
ZMTP_UNEXPECTED_COMMAND = 0x10000001
ZMTP_INVALID_SEQUENCE = 0x10000002
ZMTP_MALFORMED_COMMAND_READY = 0x10000014
ZMTP_INVALID_METADATA = 0x10000018
ZMTP_MECHANISM_MISMATCH = 0x11000002


class ProtocolError(Exception):
    """Base class of all ZMTP protocol errors."""


class LocalProtocolError(ProtocolError):
    """We misused the protocol state machine."""


class RemoteProtocolError(ProtocolError):
    """The peer violated ZMTP; close the connection.

    ``error_reason`` is sent in an ERROR command when it is not empty and the
    handshake has not finished (ZMTP only defines ERROR during the handshake).
    ``code`` is what a monitor reports with HANDSHAKE_FAILED_PROTOCOL.
    """

    def __init__(
        self, message: str, *, error_reason: str = "", code: int = ZMTP_UNSPECIFIED
    ) -> None:
        super().__init__(message)
        self.error_reason = error_reason
        #: libzmq's ZMQ_PROTOCOL_ERROR_* code (ZMTP_UNSPECIFIED unless set).
        self.code = code


class PeerErrorReceived(RemoteProtocolError):
    """The peer sent an ERROR command; the reason is in ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"peer sent ERROR: {reason!r}")
        self.reason = reason
