"""Monitor events and the connection-state view of a socket.

``Socket.monitor(addr, events)`` works as ``zmq_socket_monitor``: a PAIR
socket bound to ``addr`` (inproc) receives one two-frame message per event,
the first frame 6 bytes (uint16 event, uint32 value, machine byte order), the
second the endpoint, exactly as libzmq sends them, so pyzmq's
``parse_monitor_message`` reads them. A full or unconnected monitor misses
events rather than ever blocking the connection that reports them.
"""

from __future__ import annotations

import inspect
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from zeropipe.transports.monitor import Event

if TYPE_CHECKING:
    from zeropipe.patterns import SocketCore
    from zeropipe.sdk.socket import Socket

_HEADER = struct.Struct("=HI")


class MonitorMessage(TypedDict):
    event: Event
    value: int
    endpoint: bytes


def emitter(monitor: Socket) -> Any:
    """A callback that sends events on ``monitor`` without ever blocking."""
    core: SocketCore = monitor._core
    pack = _HEADER.pack

    def emit(kind: int, value: int, endpoint: str) -> None:
        frames = [pack(kind, value & 0xFFFFFFFF), endpoint.encode()]
        with core.lock:
            if not core.closed:
                core.xsend(frames)  # type: ignore[arg-type]

    return emit


def parse_monitor_message(msg: list[bytes]) -> MonitorMessage:
    """Decode one monitor message (the two frames ``recv_multipart`` returned)."""
    if len(msg) != 2 or len(msg[0]) != 6:
        raise RuntimeError(f"Invalid event message format: {msg!r}")
    kind, value = _HEADER.unpack(msg[0])
    if value >= 1 << 31:
        value -= 1 << 32
    return {"event": Event(kind), "value": value, "endpoint": bytes(msg[1])}


def recv_monitor_message(socket: Socket, flags: int = 0) -> Any:
    """Receive and decode the next event from a monitor socket.

    With an asyncio socket this returns an awaitable, as pyzmq's does.
    """
    frames = socket.recv_multipart(flags)
    if inspect.isawaitable(frames):
        return _parse_later(frames)
    return parse_monitor_message(frames)


async def _parse_later(frames: Any) -> MonitorMessage:
    return parse_monitor_message(await frames)


@dataclass(frozen=True)
class Peer:
    """One peer this socket is connected to (handshake done)."""

    #: The endpoint it came through: one this socket bound, or connected to.
    endpoint: str
    #: ``"connect"`` when this socket connected, ``"bind"`` when the peer did.
    direction: str
    #: The peer's address: its IP for tcp, the socket's path for ipc, the endpoint for inproc.
    address: str
    #: The peer's socket type, as it announced it.
    socket_type: str
    #: The routing id it announced (its ROUTING_ID option), or b"".
    routing_id: bytes


__all__ = [
    "MonitorMessage",
    "Peer",
    "emitter",
    "parse_monitor_message",
    "recv_monitor_message",
]
