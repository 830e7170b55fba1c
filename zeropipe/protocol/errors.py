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
ZMTP_KEY_EXCHANGE = 0x10000003
ZMTP_MALFORMED_COMMAND_UNSPECIFIED = 0x10000011
ZMTP_MALFORMED_COMMAND_MESSAGE = 0x10000012
ZMTP_MALFORMED_COMMAND_HELLO = 0x10000013
ZMTP_MALFORMED_COMMAND_INITIATE = 0x10000014
ZMTP_MALFORMED_COMMAND_ERROR = 0x10000015
ZMTP_MALFORMED_COMMAND_READY = 0x10000016
ZMTP_MALFORMED_COMMAND_WELCOME = 0x10000017
ZMTP_INVALID_METADATA = 0x10000018
ZMTP_CRYPTOGRAPHIC = 0x11000001
ZMTP_MECHANISM_MISMATCH = 0x11000002
ZAP_UNSPECIFIED = 0x20000000
ZAP_MALFORMED_REPLY = 0x20000001
ZAP_BAD_REQUEST_ID = 0x20000002
ZAP_BAD_VERSION = 0x20000003
ZAP_INVALID_STATUS_CODE = 0x20000004
ZAP_INVALID_METADATA = 0x20000005

#: Every code above by name (the monitor constants PROTOCOL_ERROR_<name>).
PROTOCOL_ERROR_CODES = {
    name: value
    for name, value in dict(globals()).items()
    if name.startswith(("ZMTP_", "ZAP_")) and isinstance(value, int)
}


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
    """The peer sent an ERROR command; the reason is in ``reason``.

    ``status_code`` is the ZAP status (300, 400 or 500) when the reason is
    one, as libzmq servers send when authentication fails; else 0.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"peer sent ERROR: {reason!r}")
        self.reason = reason
        self.status_code = int(reason) if reason in ("300", "400", "500") else 0


class AuthenticationFailed(RemoteProtocolError):
    """The ZAP handler refused the peer (``status_code`` 300, 400 or 500).

    A 400 or 500 sends the peer an ERROR naming the status; a 300
    (temporary) sends nothing and the connection waits for the handshake
    timeout, as libzmq does.
    """

    def __init__(self, status_code: int, status_text: str = "") -> None:
        reason = str(status_code) if status_code != 300 else ""
        super().__init__(
            f"authentication failed: {status_code} {status_text}".rstrip(),
            error_reason=reason,
        )
        self.status_code = status_code


class ZapError(RemoteProtocolError):
    """The ZAP handler answered something RFC 27 does not allow (``code`` says what)."""


class NoZapHandler(RemoteProtocolError):
    """Authentication needs a ZAP handler and none is bound (libzmq reports EFAULT)."""

    def __init__(self) -> None:
        super().__init__("no ZAP handler is bound at inproc://zeromq.zap.01")
