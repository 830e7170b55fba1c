"""Typed sockets: a socket that carries one message type, checked at the boundary.

Each wrapper owns a zeropipe socket (``.socket``) and sends and receives objects of the
``@message`` class it was made for, as typed frames (docs/typed-messages.md)::

    pub = Publisher(ctx, Trade, codec="protobuf")       # a PUB socket for Trades
    pub.bind("tcp://*:5556")
    pub.send(trade)                                     # TypeError for anything not a Trade

    sub = Subscriber(ctx, Trade, codec="protobuf")      # subscribed to protobuf Trades only
    sub.connect("tcp://localhost:5556")
    trade = sub.recv()                                  # typed Trade for mypy and for you

``Pusher``/``Puller``, ``Requester``/``Replier`` (two types: the request's and the reply's)
work the same way, and ``AsyncPublisher``... are the asyncio versions (made from a
``zeropipe.asyncio`` Context, with ``async`` send and recv).

The first argument is a Context (the wrapper creates its socket, passing ``**options`` to
it: ``rcvtimeo=5000``) or an existing socket of the right type. ``codec`` is the codec the
wrapper sends with (and a Subscriber subscribes to); default: the socket's ``codec``
attribute, ``"json"``. Receivers accept their type in any codec, except a Subscriber, whose
subscription names one codec. ``max_size`` limits the payload of a received message
(default: the socket's MAXMSGSIZE when set, else none); a larger one is refused before it is
decoded.

``recv`` raises DecodeError for a message that is not a good ``T`` (another type, a corrupt
payload, an unknown codec or type, over ``max_size``); that message is consumed and the next
one can be received. Closing the wrapper (or leaving its ``with`` block) closes the socket.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from zeropipe.codecs import Codec, decode_message, get, pack_header, spec_of
from zeropipe.protocol import SocketType
from zeropipe.sdk.socket import Socket, _typed_limit

if TYPE_CHECKING:  # named in quoted base classes below, which ruff does not read
    from zeropipe.sdk import aio  # noqa: F401
    from zeropipe.sdk.context import Context  # noqa: F401

T = TypeVar("T")
Req = TypeVar("Req")
Rep = TypeVar("Rep")
SockT = TypeVar("SockT", bound=Socket)
CtxT = TypeVar("CtxT")
W = TypeVar("W", bound="_Typed[Any]")

CodecLike = str | int | Codec


class _Channel(Generic[T]):
    """One message class in one codec: its header, and checks on the way out and in."""

    __slots__ = ("cls", "codec", "full_name", "header")

    def __init__(self, cls: type[T], codec: Codec) -> None:
        self.cls = cls
        self.codec = codec
        self.full_name = spec_of(cls).full_name
        self.header = pack_header(codec, self.full_name)

    def frames(self, obj: T, sender: str) -> list[bytes]:
        if not isinstance(obj, self.cls):
            raise TypeError(
                f"{sender} sends {self.full_name} messages ({self.cls.__qualname__}), "
                f"not {type(obj).__qualname__}"
            )
        return [self.header, self.codec.encode(obj)]

    def decode(self, frames: Sequence[Any], limit: int | None) -> T:
        if len(frames) == 2 and frames[0] == self.header:
            payload = frames[1]
            if limit is None or len(payload) <= limit:
                return self.codec.decode(self.cls, payload)
        obj: T = decode_message(frames, self.cls, limit)  # any codec; or the DecodeError
        return obj

    def is_longer_name(self, frames: Sequence[Any]) -> bool:
        """A message of another type that a subscription to ``header`` lets through
        (``market.TradeBatch`` for ``market.Trade``): same codec, a longer name."""
        first = frames[0] if frames else b""
        return (
            len(frames) == 2
            and isinstance(first, bytes)
            and len(first) > len(self.header)
            and first.startswith(self.header)
        )


class _Typed(Generic[SockT]):
    """The wrapped socket: endpoints, lifetime and the settings every wrapper shares."""

    _kinds: ClassVar[tuple[SocketType, ...]]
    _asyncio: ClassVar[bool] = False

    socket: SockT
    """The zeropipe socket underneath, for options, polling and anything else."""
    codec: Codec
    """The codec this wrapper sends with (and a Subscriber subscribes to)."""
    max_size: int | None
    """The payload limit of received messages (None: the socket's MAXMSGSIZE, if set)."""

    def _open(
        self,
        source: Any,
        codec: CodecLike | None,
        max_size: int | None,
        options: dict[str, Any],
    ) -> None:
        name = type(self).__name__
        kind = self._kinds[0]
        sock: Any
        if isinstance(source, Socket):
            if options:
                raise TypeError(f"{name}: options are for a new socket, not for a socket given")
            if source.socket_type not in self._kinds:
                wanted = " or ".join(k.name for k in self._kinds)
                raise TypeError(f"{name} needs a {wanted} socket, not {source.socket_type.name}")
            sock = source
            owned = False
        else:
            sock = source.socket(kind, **options)
            owned = True
        try:
            if inspect.iscoroutinefunction(sock.recv_multipart) != self._asyncio:
                other = name[5:] if self._asyncio else "Async" + name
                what = "a blocking" if self._asyncio else "an asyncio"
                raise TypeError(f"{name} cannot use {what} socket: use {other}")
            if max_size is not None and max_size < 0:
                raise ValueError(f"max_size is a number of bytes or None, not {max_size}")
            self.socket = sock
            self.codec = get(sock.codec if codec is None else codec)
            self.max_size = max_size
        except BaseException:
            if owned:
                sock.close()
            raise

    def _limit(self) -> int | None:
        return _typed_limit(self.socket, self.max_size)

    def bind(self, addr: str) -> str:
        """Bind the socket; returns the endpoint bound (the port chosen for ``tcp://h:*``)."""
        self.socket.bind(addr)
        return self.last_endpoint

    def connect(self, addr: str) -> str:
        """Connect the socket; returns the endpoint."""
        self.socket.connect(addr)
        return self.last_endpoint

    def unbind(self, addr: str) -> None:
        self.socket.unbind(addr)

    def disconnect(self, addr: str) -> None:
        self.socket.disconnect(addr)

    @property
    def last_endpoint(self) -> str:
        return self.socket.last_endpoint.decode()

    @property
    def closed(self) -> bool:
        return self.socket.closed

    def close(self, linger: int | None = None) -> None:
        """Close the socket (even one the wrapper was given)."""
        self.socket.close(linger)

    def __enter__(self: W) -> W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._describe()} on {self.socket!r}>"

    def _describe(self) -> str:
        return ""


class _One(_Typed[SockT], Generic[SockT, CtxT, T]):
    """A wrapper for one message class (made from a ``CtxT`` context or a ``SockT`` socket)."""

    _subscribes: ClassVar[bool] = False

    message_type: type[T]
    """The class of the messages sent or received."""
    _channel: _Channel[T]

    def __init__(
        self,
        source: CtxT | SockT,
        cls: type[T],
        *,
        codec: CodecLike | None = None,
        max_size: int | None = None,
        **options: Any,
    ) -> None:
        spec_of(cls)  # a TypeError (ModelError) for a class that is not a @message
        self._open(source, codec, max_size, options)
        self.message_type = cls
        self._channel = _Channel(cls, self.codec)
        if self._subscribes:
            self.socket.subscribe(self._channel.header)

    def _describe(self) -> str:
        return f"{self._channel.full_name} ({self.codec.name})"


class _Two(_Typed[SockT], Generic[SockT, CtxT, Req, Rep]):
    """A wrapper for a request class and a reply class."""

    request_type: type[Req]
    reply_type: type[Rep]
    _requests: _Channel[Req]
    _replies: _Channel[Rep]

    def __init__(
        self,
        source: CtxT | SockT,
        request: type[Req],
        reply: type[Rep],
        *,
        codec: CodecLike | None = None,
        max_size: int | None = None,
        **options: Any,
    ) -> None:
        spec_of(request)
        spec_of(reply)
        self._open(source, codec, max_size, options)
        self.request_type = request
        self.reply_type = reply
        self._requests = _Channel(request, self.codec)
        self._replies = _Channel(reply, self.codec)

    def _describe(self) -> str:
        names = f"{self._requests.full_name} -> {self._replies.full_name}"
        return f"{names} ({self.codec.name})"


# -- blocking ---------------------------------------------------------------------------------


class _SyncOne(_One[Socket, "Context", T]):
    """A blocking wrapper for one message class."""


class _SyncTwo(_Two[Socket, "Context", Req, Rep]):
    """A blocking wrapper for a request class and a reply class."""


class Publisher(_SyncOne[T]):
    """A PUB (or XPUB) socket that publishes ``T`` messages."""

    _kinds = (SocketType.PUB, SocketType.XPUB)

    def send(self, obj: T, flags: int = 0) -> None:
        """Publish ``obj``; TypeError when it is not a ``T``."""
        self.socket.send_multipart(self._channel.frames(obj, "Publisher"), flags)


class Subscriber(_SyncOne[T]):
    """A SUB socket subscribed to the ``T`` messages in its codec, and nothing else.

    A subscription is a prefix match on the header, so it also lets through types whose
    names extend ``T``'s (``market.TradeBatch`` for ``market.Trade``): ``recv`` drops those
    quietly, since nothing subscribed to them.
    """

    _kinds = (SocketType.SUB,)
    _subscribes = True

    def recv(self, flags: int = 0) -> T:
        """The next ``T``; DecodeError for a bad one (consumed: the next can be received)."""
        channel = self._channel
        while True:
            frames = self.socket.recv_multipart(flags)
            if not channel.is_longer_name(frames):
                return channel.decode(frames, self._limit())


class Pusher(_SyncOne[T]):
    """A PUSH socket that sends ``T`` messages."""

    _kinds = (SocketType.PUSH,)

    def send(self, obj: T, flags: int = 0) -> None:
        """Send ``obj``; TypeError when it is not a ``T``."""
        self.socket.send_multipart(self._channel.frames(obj, "Pusher"), flags)


class Puller(_SyncOne[T]):
    """A PULL socket that receives ``T`` messages (in any codec)."""

    _kinds = (SocketType.PULL,)

    def recv(self, flags: int = 0) -> T:
        """The next ``T``; DecodeError for a bad one (consumed: the next can be received)."""
        return self._channel.decode(self.socket.recv_multipart(flags), self._limit())


class Requester(_SyncTwo[Req, Rep]):
    """A REQ socket that sends ``Req`` messages and receives ``Rep`` replies."""

    _kinds = (SocketType.REQ,)

    def send(self, obj: Req, flags: int = 0) -> None:
        self.socket.send_multipart(self._requests.frames(obj, "Requester"), flags)

    def recv(self, flags: int = 0) -> Rep:
        """The reply; DecodeError for a bad one (consumed: the REQ may send again)."""
        return self._replies.decode(self.socket.recv_multipart(flags), self._limit())

    def request(self, obj: Req) -> Rep:
        """Send ``obj`` and wait for the reply."""
        self.send(obj)
        return self.recv()


class Replier(_SyncTwo[Req, Rep]):
    """A REP socket that receives ``Req`` requests and sends ``Rep`` replies."""

    _kinds = (SocketType.REP,)

    def recv(self, flags: int = 0) -> Req:
        """The next request; DecodeError for a bad one (consumed, but REP still owes the
        peer a reply: send one, or the REP cannot receive again)."""
        return self._requests.decode(self.socket.recv_multipart(flags), self._limit())

    def send(self, obj: Rep, flags: int = 0) -> None:
        self.socket.send_multipart(self._replies.frames(obj, "Replier"), flags)


# -- asyncio ----------------------------------------------------------------------------------


class _AsyncOne(_One["aio.Socket", "aio.Context", T]):
    """An asyncio wrapper for one message class."""

    _asyncio = True


class _AsyncTwo(_Two["aio.Socket", "aio.Context", Req, Rep]):
    """An asyncio wrapper for a request class and a reply class."""

    _asyncio = True


class AsyncPublisher(_AsyncOne[T]):
    """:class:`Publisher` for asyncio."""

    _kinds = (SocketType.PUB, SocketType.XPUB)

    async def send(self, obj: T, flags: int = 0) -> None:
        await self.socket.send_multipart(self._channel.frames(obj, "AsyncPublisher"), flags)


class AsyncSubscriber(_AsyncOne[T]):
    """:class:`Subscriber` for asyncio."""

    _kinds = (SocketType.SUB,)
    _subscribes = True

    async def recv(self, flags: int = 0) -> T:
        channel = self._channel
        while True:
            frames = await self.socket.recv_multipart(flags)
            if not channel.is_longer_name(frames):
                return channel.decode(frames, self._limit())


class AsyncPusher(_AsyncOne[T]):
    """:class:`Pusher` for asyncio."""

    _kinds = (SocketType.PUSH,)

    async def send(self, obj: T, flags: int = 0) -> None:
        await self.socket.send_multipart(self._channel.frames(obj, "AsyncPusher"), flags)


class AsyncPuller(_AsyncOne[T]):
    """:class:`Puller` for asyncio."""

    _kinds = (SocketType.PULL,)

    async def recv(self, flags: int = 0) -> T:
        return self._channel.decode(await self.socket.recv_multipart(flags), self._limit())


class AsyncRequester(_AsyncTwo[Req, Rep]):
    """:class:`Requester` for asyncio."""

    _kinds = (SocketType.REQ,)

    async def send(self, obj: Req, flags: int = 0) -> None:
        await self.socket.send_multipart(self._requests.frames(obj, "AsyncRequester"), flags)

    async def recv(self, flags: int = 0) -> Rep:
        return self._replies.decode(await self.socket.recv_multipart(flags), self._limit())

    async def request(self, obj: Req) -> Rep:
        await self.send(obj)
        return await self.recv()


class AsyncReplier(_AsyncTwo[Req, Rep]):
    """:class:`Replier` for asyncio."""

    _kinds = (SocketType.REP,)

    async def recv(self, flags: int = 0) -> Req:
        return self._requests.decode(await self.socket.recv_multipart(flags), self._limit())

    async def send(self, obj: Rep, flags: int = 0) -> None:
        await self.socket.send_multipart(self._replies.frames(obj, "AsyncReplier"), flags)


__all__ = [
    "AsyncPublisher",
    "AsyncPuller",
    "AsyncPusher",
    "AsyncReplier",
    "AsyncRequester",
    "AsyncSubscriber",
    "Publisher",
    "Puller",
    "Pusher",
    "Replier",
    "Requester",
    "Subscriber",
]
