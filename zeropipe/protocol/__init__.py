"""ZMTP 3.1 as a sans-I/O state machine: bytes in, events out.

Nothing in this package imports socket, selectors, threading or asyncio.
"""

from zeropipe.protocol.commands import Metadata
from zeropipe.protocol.connection import LARGE_FRAME, Connection, ConnectionState, Message
from zeropipe.protocol.errors import (
    AuthenticationFailed,
    LocalProtocolError,
    NoZapHandler,
    PeerErrorReceived,
    ProtocolError,
    RemoteProtocolError,
    ZapError,
)
from zeropipe.protocol.events import (
    Cancel,
    Event,
    HandshakeComplete,
    Ping,
    Pong,
    Subscribe,
    UnknownCommand,
)
from zeropipe.protocol.frames import SHORT_HEADER, SHORT_HEADER_MORE, encode_frames, frame_header
from zeropipe.protocol.mechanisms import Security
from zeropipe.protocol.socket_types import VALID_PEERS, SocketType, compatible
from zeropipe.protocol.zap import ZapReply, ZapRequest

__all__ = [
    "LARGE_FRAME",
    "SHORT_HEADER",
    "SHORT_HEADER_MORE",
    "VALID_PEERS",
    "AuthenticationFailed",
    "Cancel",
    "Connection",
    "ConnectionState",
    "Event",
    "HandshakeComplete",
    "LocalProtocolError",
    "Message",
    "Metadata",
    "NoZapHandler",
    "PeerErrorReceived",
    "Ping",
    "Pong",
    "ProtocolError",
    "RemoteProtocolError",
    "Security",
    "SocketType",
    "Subscribe",
    "UnknownCommand",
    "ZapError",
    "ZapReply",
    "ZapRequest",
    "compatible",
    "encode_frames",
    "frame_header",
]
