"""Socket events, with libzmq's numbers (``zmq_socket_monitor``).

The transports report what happens to connections through
``PipeOwner.event(kind, value, endpoint)``; the SDK turns each report into
libzmq's two-frame monitor message. ``value`` is what libzmq puts there: a
file descriptor, an errno, a reconnect delay in ms, or a protocol error code.
"""

from __future__ import annotations

import enum


class Event(enum.IntFlag):
    CONNECTED = 0x0001
    CONNECT_DELAYED = 0x0002
    CONNECT_RETRIED = 0x0004
    LISTENING = 0x0008
    BIND_FAILED = 0x0010
    ACCEPTED = 0x0020
    ACCEPT_FAILED = 0x0040
    CLOSED = 0x0080
    CLOSE_FAILED = 0x0100
    DISCONNECTED = 0x0200
    MONITOR_STOPPED = 0x0400
    HANDSHAKE_FAILED_NO_DETAIL = 0x0800
    HANDSHAKE_SUCCEEDED = 0x1000
    HANDSHAKE_FAILED_PROTOCOL = 0x2000
    HANDSHAKE_FAILED_AUTH = 0x4000
    ALL = 0xFFFF


#: ``value`` of HANDSHAKE_FAILED_PROTOCOL when nothing more precise applies.
PROTOCOL_ERROR_ZMTP_UNSPECIFIED = 0x10000000
