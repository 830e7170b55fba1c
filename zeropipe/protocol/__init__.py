"""ZMTP 3.1 as a sans-I/O state machine: bytes in, events out.

Nothing in this package imports socket, selectors, threading or asyncio.
"""

from zeropipe.protocol.commands import Metadata
from zeropipe.protocol.connection import LARGE_FRAME, Connection, ConnectionState, Message
from zeropipe.protocol.errors import (
    LocalProtocolError,
    PeerErrorReceived,
    ProtocolError,
    RemoteProtocolError,
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
from zeropipe.protocol.socket_types import VALID_PEERS, SocketType, compatible

__all__ = [
    "LARGE_FRAME",
    "SHORT_HEADER",
    "SHORT_HEADER_MORE",
    "VALID_PEERS",
    "Cancel",
    "Connection",
    "ConnectionState",
    "Event",
    "HandshakeComplete",
    "LocalProtocolError",
    "Message",
    "Metadata",
    "PeerErrorReceived",
    "Ping",
    "Pong",
    "ProtocolError",
    "RemoteProtocolError",
    "SocketType",
    "Subscribe",
    "UnknownCommand",
    "compatible",
    "encode_frames",
    "frame_header",
]
