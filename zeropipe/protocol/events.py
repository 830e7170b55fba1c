"""Events the connection emits besides data messages.

Data messages are not wrapped in event objects: they go straight into the
connection's ``messages`` deque (a ``bytes``-like for a one-frame message, a
``list`` of frames otherwise), which keeps the hot path free of allocations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zeropipe.protocol.commands import Metadata
from zeropipe.protocol.socket_types import SocketType
from zeropipe.protocol.zap import ZapRequest


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake succeeded; the peer may now join routing."""

    peer_type: SocketType
    peer_minor: int
    routing_id: bytes
    metadata: Metadata = field(default_factory=Metadata)


@dataclass(frozen=True)
class Subscribe:
    """The peer subscribed to ``topic`` (3.1 command or 3.0 message form)."""

    topic: bytes


@dataclass(frozen=True)
class Cancel:
    """The peer cancelled a subscription to ``topic``."""

    topic: bytes


@dataclass(frozen=True)
class Ping:
    """The peer sent PING; a PONG has already been queued."""

    ttl_ds: int
    context: bytes


@dataclass(frozen=True)
class Pong:
    """The peer answered one of our PINGs."""

    context: bytes


@dataclass(frozen=True)
class UnknownCommand:
    """A command we do not know; libzmq ignores these and so do we."""

    name: bytes


Event = HandshakeComplete | Subscribe | Cancel | Ping | Pong | UnknownCommand | ZapRequest
