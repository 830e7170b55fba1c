"""zeropipe: broker-free messaging for Python, a pure-Python ZeroMQ.

``import zeropipe as zmq`` runs ordinary pyzmq code: every classic socket
type (PAIR, PUB/SUB, XPUB/XSUB, REQ/REP, DEALER/ROUTER, PUSH/PULL) over
tcp://, ipc:// and inproc://, with pyzmq's Poller, monitor, proxy and devices.
"""

from __future__ import annotations

from typing import Any

from zeropipe.errors import (
    EFSM,
    EMTHREAD,
    ENOCOMPATPROTO,
    ETERM,
    Again,
    ContextTerminated,
    NotDone,
    ZMQBaseError,
    ZMQBindError,
    ZMQError,
    strerror,
)
from zeropipe.protocol import SocketType
from zeropipe.protocol.errors import PROTOCOL_ERROR_CODES
from zeropipe.sdk import Context, Frame, Message, Socket
from zeropipe.sdk.constants import ContextOption, Errno, Flag, PollEvent, SocketOption
from zeropipe.sdk.keys import curve_keypair, curve_public, has_curve
from zeropipe.sdk.monitor import Peer
from zeropipe.sdk.poll import Poller, select
from zeropipe.sdk.proxy import (
    FORWARDER,
    QUEUE,
    STREAMER,
    DeviceType,
    device,
    proxy,
    proxy_steerable,
)
from zeropipe.sdk.security import SecurityMechanism
from zeropipe.sdk.typed import (
    AsyncPublisher,
    AsyncPuller,
    AsyncPusher,
    AsyncReplier,
    AsyncRequester,
    AsyncSubscriber,
    Publisher,
    Puller,
    Pusher,
    Replier,
    Requester,
    Subscriber,
)
from zeropipe.transports.monitor import PROTOCOL_ERROR_ZMTP_UNSPECIFIED, Event

__version__ = "0.1.0"
VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = 4, 3, 5

globals().update({name: member for name, member in SocketType.__members__.items()})
globals().update({name: member for name, member in SocketOption.__members__.items()})
globals().update({name: member for name, member in ContextOption.__members__.items()})
globals().update({name: member for name, member in Flag.__members__.items()})
globals().update({name: member for name, member in PollEvent.__members__.items()})
globals().update({name: member for name, member in Errno.__members__.items()})
globals().update({f"EVENT_{name}": member for name, member in Event.__members__.items()})
globals().update({name: member for name, member in SecurityMechanism.__members__.items()})
globals().update({f"PROTOCOL_ERROR_{name}": code for name, code in PROTOCOL_ERROR_CODES.items()})
MORE = 1  # pyzmq's MessageOption.MORE, for Frame.get(zmq.MORE)
XREQ = SocketType.DEALER
XREP = SocketType.ROUTER


def zmq_version_info() -> tuple[int, int, int]:
    """The libzmq version whose behaviour and wire protocol we follow."""
    return (VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH)


def zmq_version() -> str:
    return ".".join(str(x) for x in zmq_version_info())


def pyzmq_version() -> str:
    """zeropipe's own version (pyzmq code sometimes prints this)."""
    return __version__


def pyzmq_version_info() -> tuple[int, ...]:
    return tuple(int(x) for x in __version__.split("."))


def has(capability: str) -> bool:
    """Which optional capabilities are available (pyzmq's ``zmq.has``)."""
    if capability == "curve":
        return has_curve()
    return capability in {"ipc"}


def __getattr__(name: str) -> Any:
    if name == "asyncio":
        import importlib

        return importlib.import_module("zeropipe.asyncio")
    raise AttributeError(f"module 'zeropipe' has no attribute {name!r}")


__all__ = [
    "EFSM",
    "EMTHREAD",
    "ENOCOMPATPROTO",
    "ETERM",
    "FORWARDER",
    "PROTOCOL_ERROR_ZMTP_UNSPECIFIED",
    "QUEUE",
    "STREAMER",
    "Again",
    "AsyncPublisher",
    "AsyncPuller",
    "AsyncPusher",
    "AsyncReplier",
    "AsyncRequester",
    "AsyncSubscriber",
    "Context",
    "ContextOption",
    "ContextTerminated",
    "DeviceType",
    "Errno",
    "Event",
    "Flag",
    "Frame",
    "Message",
    "NotDone",
    "Peer",
    "PollEvent",
    "Poller",
    "Publisher",
    "Puller",
    "Pusher",
    "Replier",
    "Requester",
    "SecurityMechanism",
    "Socket",
    "SocketOption",
    "SocketType",
    "Subscriber",
    "ZMQBaseError",
    "ZMQBindError",
    "ZMQError",
    "curve_keypair",
    "curve_public",
    "device",
    "has",
    "proxy",
    "proxy_steerable",
    "pyzmq_version",
    "pyzmq_version_info",
    "select",
    "strerror",
    "zmq_version",
    "zmq_version_info",
]
