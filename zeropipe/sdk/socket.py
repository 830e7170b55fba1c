"""The blocking ``Socket``: pyzmq's API over a pattern core.

The caller's thread does the work: ``send`` routes and frames the message
and writes a batch when it is due; ``recv`` takes a queued message or reads
and parses from the kernel itself. Only when nothing can be done does the
thread park: it polls the connections' descriptors and the socket's waker
until the reactor, an inproc peer or the kernel makes progress possible.
"""

from __future__ import annotations

import builtins
import errno
import json
import pickle
import random
import select
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from zeropipe.codecs import Codec, decode_message, encode_message, pack_header, spec_of
from zeropipe.errors import Again, ContextTerminated, ZMQBindError, ZMQError
from zeropipe.patterns import CORES, SocketCore, SubCore, XPubCore
from zeropipe.protocol import Message, SocketType
from zeropipe.protocol.frames import Buffer
from zeropipe.sdk.constants import (
    OPTION_RANGES,
    READ_ONLY_OPTIONS,
    SOCKET_OPTIONS,
    TYPE_OPTIONS,
    Flag,
    PollEvent,
    SocketOption,
)
from zeropipe.sdk.frame import Frame
from zeropipe.sdk.monitor import Peer, emitter
from zeropipe.sdk.security import (
    SECURITY_OPTIONS,
    check_credentials,
    get_security_option,
    set_security_option,
)
from zeropipe.transports.endpoint import EndpointError, parse_endpoint
from zeropipe.transports.inproc import InprocError
from zeropipe.transports.monitor import Event
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import InprocPipe
from zeropipe.transports.session import Connecter, Listener

if TYPE_CHECKING:
    from zeropipe.sdk.context import Context

T = TypeVar("T")

NOBLOCK = int(Flag.NOBLOCK)
SNDMORE = int(Flag.SNDMORE)
POLLIN = int(PollEvent.POLLIN)
POLLOUT = int(PollEvent.POLLOUT)

_monotonic = time.monotonic
_OPTION_NAMES = {name.lower(): int(value) for name, value in SocketOption.__members__.items()}


class _EndpointContext:
    """Returned by bind/connect so ``with sock.bind(url):`` unbinds on exit."""

    def __init__(self, socket: Socket, endpoint: str, kind: str) -> None:
        self.socket = socket
        self.endpoint = endpoint
        self.kind = kind

    def __enter__(self) -> Socket:
        return self.socket

    def __exit__(self, *exc: object) -> None:
        if self.socket.closed:
            return
        if self.kind == "bind":
            self.socket.unbind(self.endpoint)
        else:
            self.socket.disconnect(self.endpoint)


class Socket:
    """A ZeroMQ socket. Create it with ``Context.socket(type)``."""

    _core: SocketCore
    _closed: bool
    _rcvmore: bool
    _send_parts: list[Buffer]
    _recv_parts: deque[Buffer]
    _listeners: dict[str, Listener]
    _connecters: dict[str, Connecter]
    _inproc: dict[str, InprocPipe]
    _inproc_binds: set[str]
    _pollset: _PollSet
    _monitor: Socket | None
    _monitor_socket: Socket | None
    context: Context
    codec: str | int | Codec = "json"
    """The codec of :meth:`send_message` and :meth:`subscribe_type` when they name none: a
    name (``"protobuf"``), a wire id or a codec. ``"json"`` by default because it always
    works (the standard library's json when orjson is not installed); ``"protobuf"`` is the
    fastest and the most compact but needs ``pip install 'zeropipe[protobuf]'``."""

    def __init__(self, context: Context, socket_type: int, **options: Any) -> None:
        try:
            stype = SocketType(socket_type)
        except ValueError:
            raise ZMQError(errno.EINVAL, f"invalid socket type {socket_type!r}") from None
        core_class = CORES.get(stype)
        if core_class is None:
            raise ZMQError(errno.EINVAL, f"socket type {stype.name} is not supported yet")
        defaults = context._socket_defaults()
        opts = Options(**defaults)
        if stype in (SocketType.SUB, SocketType.XSUB) and "linger" not in defaults:
            opts.linger = 0  # libzmq: closing a subscriber never waits for its subscriptions
        self._core = core_class(opts)
        self._core.inproc = context._inproc
        self.context = context
        self._reactor = context._reactor
        self._closed = False
        self._send_parts = []
        self._recv_parts = deque()
        self._rcvmore = False
        self._listeners = {}
        self._connecters = {}
        self._inproc = {}
        self._inproc_binds = set()
        self._pollset = _PollSet()
        self._monitor = self._monitor_socket = None
        context._register(self)
        for name, value in options.items():
            setattr(self, name, value)

    # -- identity ------------------------------------------------------------

    @property
    def socket_type(self) -> SocketType:
        return self._core.socket_type

    @property
    def type(self) -> SocketType:
        return self._core.socket_type

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def underlying(self) -> int:
        return id(self._core)

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<zeropipe.Socket({self.socket_type.name}){state} at {hex(id(self))}>"

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:
                pass

    # -- options -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ZMQError(errno.ENOTSOCK, "Socket operation on a closed socket")

    def setsockopt(self, option: int, value: int | bytes | str) -> None:
        """Set an option, with libzmq's numbers and units."""
        self._check_open()
        if option == SocketOption.HWM:
            self.setsockopt(SocketOption.SNDHWM, value)
            self.setsockopt(SocketOption.RCVHWM, value)
            return
        if option in (SocketOption.SUBSCRIBE, SocketOption.UNSUBSCRIBE):
            self._set_subscription(option == SocketOption.SUBSCRIBE, value)
            return
        if option in SECURITY_OPTIONS:
            set_security_option(self._core.options, option, value)
            return
        if option in READ_ONLY_OPTIONS:
            raise ZMQError(errno.EINVAL, f"option {SocketOption(option).name} is read-only")
        spec = SOCKET_OPTIONS.get(option)
        if spec is None:
            raise ZMQError(errno.EINVAL, f"option {_option_name(option)} is not supported")
        types = TYPE_OPTIONS.get(option)
        if types is not None and self._core.socket_type not in types:
            raise ZMQError(
                errno.EINVAL,
                f"option {_option_name(option)} does not apply to "
                f"{self._core.socket_type.name} sockets",
            )
        attr, kind = spec
        setattr(self._core.options, attr, _coerce(option, kind, value))

    def getsockopt(self, option: int) -> int | bytes | str:
        """Read an option."""
        self._check_open()
        if option == SocketOption.TYPE:
            return int(self._core.socket_type)
        if option == SocketOption.RCVMORE:
            return int(self._rcvmore)
        if option == SocketOption.EVENTS:
            return self._events()
        if option == SocketOption.LAST_ENDPOINT:
            return self._core.options.last_endpoint.encode()
        if option == SocketOption.FD:
            return self._core.waker.fd
        if option in SECURITY_OPTIONS:
            return get_security_option(self._core.options, option)
        if option == SocketOption.THREAD_SAFE:
            return 0
        if option == SocketOption.HWM:
            return self._core.options.sndhwm
        spec = SOCKET_OPTIONS.get(option)
        if spec is None:
            raise ZMQError(errno.EINVAL, f"option {_option_name(option)} is not supported")
        value: int | bytes | str = getattr(self._core.options, spec[0])
        return value

    set = setsockopt
    get = getsockopt

    def subscribe(self, topic: str | bytes) -> None:
        """Subscribe a SUB socket to messages starting with ``topic`` (str is UTF-8)."""
        if isinstance(topic, str):
            topic = topic.encode("utf-8")
        self.setsockopt(SocketOption.SUBSCRIBE, topic)

    def unsubscribe(self, topic: str | bytes) -> None:
        """Cancel one earlier ``subscribe(topic)``."""
        if isinstance(topic, str):
            topic = topic.encode("utf-8")
        self.setsockopt(SocketOption.UNSUBSCRIBE, topic)

    def subscribe_type(self, cls: builtins.type, codec: str | int | Codec | None = None) -> None:
        """Subscribe a SUB socket to the typed messages of class ``cls`` in ``codec``
        (default: the socket's :attr:`codec`).

        The topic is the typed-frame header, so the filter is by type *and* codec: a
        subscription to JSON trades does not receive protobuf ones. It is a prefix match
        like any subscription (``market.Trade`` also matches ``market.TradeBatch``), so
        :meth:`recv_message` with ``expected=cls`` still checks the type.
        """
        self.subscribe(_type_topic(self, cls, codec))

    def unsubscribe_type(self, cls: builtins.type, codec: str | int | Codec | None = None) -> None:
        """Cancel one earlier ``subscribe_type(cls, codec)``."""
        self.unsubscribe(_type_topic(self, cls, codec))

    def _set_subscription(self, add: bool, topic: Any) -> None:
        core = self._core
        raw = _as_bytes_option(SocketOption.SUBSCRIBE, topic)
        if type(core) is SubCore:
            with core.lock:
                if add:
                    core.subscribe(raw)
                else:
                    core.unsubscribe(raw)
            return
        if isinstance(core, XPubCore) and core.options.xpub_manual:
            with core.lock:
                core.manual_subscription(raw, subscribe=add)
            return
        name = "SUBSCRIBE" if add else "UNSUBSCRIBE"
        raise ZMQError(
            errno.EINVAL,
            f"{name} is for SUB sockets (and XPUB with XPUB_MANUAL), not {core.socket_type.name}",
        )

    def set_hwm(self, value: int) -> None:
        """Set both SNDHWM and RCVHWM."""
        self.setsockopt(SocketOption.HWM, value)

    def get_hwm(self) -> int:
        """The send high-water mark (pyzmq returns SNDHWM)."""
        return int(self.getsockopt(SocketOption.SNDHWM))

    hwm = property(get_hwm, set_hwm)

    def set_string(self, option: int, value: str, encoding: str = "utf-8") -> None:
        self.setsockopt(option, value.encode(encoding))

    def get_string(self, option: int, encoding: str = "utf-8") -> str:
        value = self.getsockopt(option)
        return value.decode(encoding) if isinstance(value, bytes) else str(value)

    setsockopt_string = set_string
    getsockopt_string = get_string

    @property
    def last_endpoint(self) -> bytes:
        return self._core.options.last_endpoint.encode()

    @property
    def rcvmore(self) -> bool:
        return self._rcvmore

    @property
    def dropped(self) -> int:
        """How many messages this socket dropped by design (a zeropipe extension).

        PUB and XPUB count each copy a subscriber at its high-water mark
        missed; ROUTER counts messages to an unknown or full peer.
        """
        return self._core.dropped

    # -- endpoints -----------------------------------------------------------

    def bind(self, addr: str) -> _EndpointContext:
        """Bind to an endpoint; ``tcp://host:*`` picks a free port (see ``last_endpoint``)."""
        self._check_open()
        check_credentials(self._core.options)
        ep = _parse(addr)
        core = self._core
        if ep.transport == "inproc":
            try:
                self.context._inproc.bind(ep.address, core)
            except InprocError as exc:
                raise ZMQError(exc.errno, str(exc)) from None
            self._inproc_binds.add(ep.address)
            endpoint = str(ep)
        else:
            try:
                listener = Listener(core, self._reactor, ep)
            except EndpointError as exc:
                core.event(Event.BIND_FAILED, errno.EINVAL, str(ep))
                raise ZMQError(errno.EINVAL, str(exc)) from None
            except OSError as exc:
                code = exc.errno or errno.EINVAL
                core.event(Event.BIND_FAILED, code, str(ep))
                raise ZMQError(code, f"{addr}: {exc.strerror}") from None
            endpoint = listener.endpoint
            self._listeners[endpoint] = listener
            self._reactor.add_owner_soon(core)
            self._reactor.start()
        core.options.last_endpoint = endpoint
        return _EndpointContext(self, endpoint, "bind")

    def bind_to_random_port(
        self,
        addr: str,
        min_port: int = 49152,
        max_port: int = 65536,
        max_tries: int = 100,
    ) -> int:
        """Bind to a random port in a range and return it."""
        if min_port == 49152 and max_port == 65536:
            self.bind(f"{addr}:*")
            return int(self.last_endpoint.rsplit(b":", 1)[-1])
        for _ in range(max_tries):
            port = random.randrange(min_port, max_port)
            try:
                self.bind(f"{addr}:{port}")
            except ZMQError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                continue
            return port
        raise ZMQBindError("Could not bind socket to random port.")

    def connect(self, addr: str) -> _EndpointContext:
        """Connect to an endpoint; the peer need not exist yet."""
        self._check_open()
        check_credentials(self._core.options)
        ep = _parse(addr)
        core = self._core
        endpoint = str(ep)
        connect_id = core.options.connect_routing_id
        core.options.connect_routing_id = b""  # it names the peer of this connect only
        if ep.transport == "inproc":
            pipe = self.context._inproc.connect(ep.address, core, connect_id)
            if pipe is not None:
                self._inproc[endpoint] = pipe
        else:
            if ep.transport == "tcp" and not ep.host:
                raise ZMQError(errno.EINVAL, f"cannot connect to a wildcard address: {addr}")
            if ep.transport == "tcp" and ep.port == 0:
                raise ZMQError(errno.EINVAL, f"a port is required to connect: {addr}")
            self._connecters[endpoint] = Connecter(core, self._reactor, ep, connect_id)
            self._reactor.add_owner_soon(core)
            self._reactor.start()
        core.options.last_endpoint = endpoint
        return _EndpointContext(self, endpoint, "connect")

    def unbind(self, addr: str | bytes) -> None:
        """Stop listening on a bound endpoint and close its connections."""
        self._check_open()
        endpoint = addr.decode() if isinstance(addr, bytes) else addr
        listener = self._listeners.pop(endpoint, None)
        if listener is not None:
            listener.close()
            self._close_pipes_from(listener)
            return
        ep = _parse(endpoint)
        if ep.transport == "inproc" and ep.address in self._inproc_binds:
            self._inproc_binds.discard(ep.address)
            self.context._inproc.unbind(ep.address, self._core)
            return
        raise ZMQError(errno.ENOENT, f"{endpoint} is not bound")

    def disconnect(self, addr: str | bytes) -> None:
        """Drop a connected endpoint and stop reconnecting to it."""
        self._check_open()
        endpoint = addr.decode() if isinstance(addr, bytes) else addr
        # As libzmq's zmq_disconnect: what that peer sent and was not read yet
        # goes with it (the socket's own end of the pipe is terminated).
        connecter = self._connecters.pop(endpoint, None)
        if connecter is not None:
            with self._core.lock:
                if connecter.pipe is not None:
                    connecter.pipe.discard_input()
                    self._core.detach(connecter.pipe)
            connecter.stop(0)
            return
        pipe = self._inproc.pop(endpoint, None)
        if pipe is not None:
            with self._core.lock:
                pipe.discard_input()
                self._core.detach(pipe)
                pipe.close()
            return
        raise ZMQError(errno.ENOENT, f"{endpoint} is not connected")

    def _close_pipes_from(self, listener: Listener) -> None:
        core = self._core
        with core.lock:
            for pipe in list(core.pipes):
                if pipe.listener is listener:
                    pipe.discard_input()
                    core.detach(pipe)
                    pipe.close(0)

    # -- sending -------------------------------------------------------------

    def send(
        self,
        data: Any,
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        routing_id: int | None = None,
        group: str | None = None,
    ) -> None:
        """Queue one message part; with SNDMORE, more parts follow."""
        if type(data) is not bytes:
            data = _as_buffer(data, copy)
        if not flags and not self._send_parts:
            core = self._core
            with core.lock:
                sent = core.xsend(data)
            if not sent:
                self._send_blocking(data, flags)
            return
        self._check_open()
        if flags & SNDMORE:
            if not self._send_parts and self._core.routes_first_frame:
                self._check_route(data, flags)
            self._send_parts.append(data)
            return
        parts = self._send_parts
        if parts:
            parts.append(data)
            self._send_parts = []
            try:
                self._send_message(parts, flags)
            except Again:
                self._send_parts = parts[:-1]
                raise
            return
        core = self._core
        with core.lock:
            sent = core.xsend(data)
        if not sent:
            self._send_blocking(data, flags)

    def _check_route(self, routing_id: Buffer, flags: int) -> None:
        """ROUTER_MANDATORY: fail on the routing-id frame itself, as libzmq does."""
        core = self._core
        with core.lock:
            if core.route_ready(routing_id):
                return
        if flags & NOBLOCK:
            raise Again()
        self._wait(
            lambda: True if core.route_ready(routing_id) else None,
            POLLOUT,
            core.options.sndtimeo,
        )

    def _send_message(self, msg: Message, flags: int) -> None:
        core = self._core
        with core.lock:
            if core.xsend(msg):
                return
        self._send_blocking(msg, flags)

    def _send_blocking(self, msg: Message, flags: int) -> None:
        if flags & NOBLOCK:
            raise Again()
        core = self._core
        self._wait(lambda: True if core.xsend(msg) else None, POLLOUT, core.options.sndtimeo)

    def send_multipart(
        self,
        msg_parts: Sequence[Any],
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        **kwargs: Any,
    ) -> None:
        """Send a whole multipart message, atomically."""
        self._send_message(self._multipart(msg_parts, copy), flags)

    def _multipart(self, msg_parts: Sequence[Any], copy: bool) -> Message:
        """One message from the parts given (after any SNDMORE parts already queued)."""
        self._check_open()
        parts = [p if type(p) is bytes else _as_buffer(p, copy) for p in msg_parts]
        if not parts:
            raise ZMQError(errno.EINVAL, "cannot send an empty multipart message")
        if self._send_parts:
            parts = self._send_parts + parts
            self._send_parts = []
        return parts if len(parts) > 1 else parts[0]

    def send_many(self, messages: Iterable[Any], flags: int = 0, copy: bool = True) -> None:
        """Send many messages under one lock: each item is a bytes-like or a list of parts.

        A zeropipe extension for moving many small messages: it blocks (or
        raises Again with NOBLOCK, having sent what fitted) like ``send``.
        """
        self._check_open()
        core = self._core
        pending = iter(messages)
        with core.lock:
            xsend = core.xsend
            for item in pending:
                msg = _as_message(item, copy)
                if not xsend(msg):
                    break
            else:
                return
        self._send_blocking(msg, flags)
        for item in pending:
            self._send_message(_as_message(item, copy), flags)

    def send_string(
        self, u: str, flags: int = 0, copy: bool = True, encoding: str = "utf-8", **kwargs: Any
    ) -> None:
        if not isinstance(u, str):
            raise TypeError("str objects only")
        self.send(u.encode(encoding), flags, copy)

    send_unicode = send_string

    def send_json(self, obj: Any, flags: int = 0, **kwargs: Any) -> None:
        send_kwargs = {k: kwargs.pop(k) for k in ("routing_id", "group") if k in kwargs}
        self.send(json.dumps(obj, **kwargs).encode("utf-8"), flags, **send_kwargs)

    def send_pyobj(
        self, obj: Any, flags: int = 0, protocol: int = pickle.DEFAULT_PROTOCOL, **kwargs: Any
    ) -> None:
        self.send(pickle.dumps(obj, protocol), flags)

    def send_serialized(
        self,
        msg: Any,
        serialize: Callable[[Any], Sequence[Any]],
        flags: int = 0,
        copy: bool = True,
        **kwargs: Any,
    ) -> None:
        self.send_multipart(list(serialize(msg)), flags, copy)

    def send_message(
        self,
        obj: Any,
        codec: str | int | Codec | None = None,
        flags: int = 0,
        *,
        routing_id: bytes | Sequence[bytes] | None = None,
    ) -> None:
        """Send the typed message ``obj`` (a ``@message`` instance) as one multipart
        message ``[header, payload]`` (see docs/typed-messages.md).

        ``codec`` is a codec name, wire id or codec; default: the socket's :attr:`codec`
        (``"json"`` unless set). A ROUTER must say where the message goes: ``routing_id``
        is the peer's routing id, or the whole envelope that :meth:`recv_message` returned
        (a list of frames: the routing id and, for a REQ peer, the empty delimiter). Raises
        EncodeError when ``obj`` is not a typed message or does not fit its fields.
        """
        self.send_multipart(_typed_frames(self, obj, codec, routing_id), flags)

    # -- receiving -----------------------------------------------------------

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        """Receive one message part (bytes, or a Frame with copy=False)."""
        if self._recv_parts:
            return self._next_part(copy)
        core = self._core
        fast = core.fast_in
        msg: Message | None
        if fast:
            msg = fast.popleft()
        else:
            with core.lock:
                msg = core.xrecv()
            if msg is None:
                msg = self._recv_slow(flags)
        if type(msg) is bytes:
            if self._rcvmore:
                self._rcvmore = False
            return msg if copy else self._frame(msg, False)
        if type(msg) is list:
            self._recv_parts.extend(msg)
            return self._next_part(copy)
        if self._rcvmore:
            self._rcvmore = False
        return bytes(msg) if copy else self._frame(msg, False)  # type: ignore[arg-type]

    def _recv_slow(self, flags: int) -> Message:
        self._check_open()
        core = self._core
        with core.lock:
            msg = core.recv_now()
        if msg is not None:
            return msg
        if flags & NOBLOCK:
            raise Again()
        waited: Message = self._wait(core.recv_now, POLLIN, core.options.rcvtimeo, core.xrecv)
        return waited

    def _next_part(self, copy: bool) -> Any:
        part = self._recv_parts.popleft()
        more = bool(self._recv_parts)
        self._rcvmore = more
        if copy:
            return part if type(part) is bytes else bytes(part)
        return self._frame(part, more)

    def _frame(self, data: Buffer, more: bool) -> Frame:
        pipe = self._core.last_pipe()
        props: dict[str, Any] = {}
        if pipe is not None:
            props.update(pipe.metadata)
            if pipe.peer_address:
                props["Peer-Address"] = pipe.peer_address
        return Frame(data, more=more, properties=props)

    def recv_multipart(self, flags: int = 0, copy: bool = True, track: bool = False) -> list[Any]:
        """Receive all parts of a message."""
        parts = [self.recv(flags, copy, track)]
        while self._rcvmore:
            parts.append(self.recv(flags, copy, track))
        return parts

    def recv_many(self, max_messages: int = 1 << 30, flags: int = 0) -> list[bytes | list[bytes]]:
        """Receive every message queued now (at least one, waiting as ``recv`` does).

        A zeropipe extension: each item is ``bytes`` for a one-part message or
        a ``list`` of ``bytes`` for a multipart one.
        """
        self._check_open()
        core = self._core
        with core.lock:
            msgs = core.xrecv_many(max_messages)
            if not msgs:
                first = core.recv_now()
                if first is not None:
                    msgs = [first, *core.xrecv_many(max_messages - 1)]
        if not msgs:
            if flags & NOBLOCK:
                raise Again()
            first_msg: Message = self._wait(
                core.recv_now, POLLIN, core.options.rcvtimeo, core.xrecv
            )
            msgs = [first_msg]
            with core.lock:
                msgs.extend(core.xrecv_many(max_messages - 1))
        return [_plain(m) for m in msgs]

    def recv_string(self, flags: int = 0, encoding: str = "utf-8") -> str:
        data: bytes = self.recv(flags)
        return data.decode(encoding)

    recv_unicode = recv_string

    def recv_json(self, flags: int = 0, **kwargs: Any) -> Any:
        return json.loads(self.recv(flags), **kwargs)

    def recv_pyobj(self, flags: int = 0) -> Any:
        return pickle.loads(self.recv(flags))

    def recv_serialized(
        self, deserialize: Callable[[list[Any]], T], flags: int = 0, copy: bool = True
    ) -> T:
        return deserialize(self.recv_multipart(flags, copy))

    def recv_message(
        self,
        expected: builtins.type | tuple[builtins.type, ...] | None = None,
        flags: int = 0,
        *,
        max_size: int | None = None,
    ) -> Any:
        """Receive one typed message and return the object.

        Any ``@message`` type known here is accepted, or only subclasses of ``expected``
        (a class or a tuple of classes). A payload over ``max_size`` bytes (default: the
        socket's MAXMSGSIZE when set, else no limit) is refused before it is decoded.
        Anything that is not a good typed message raises DecodeError naming the codec and
        the type; the bad message has been consumed and the socket stays usable (a REP
        socket still owes a reply). On a ROUTER the result is ``(envelope, obj)``: the
        frames before the typed message (the routing id first), to pass back as
        ``send_message(reply, routing_id=envelope)``.
        """
        return _typed_message(self, self.recv_multipart(flags), expected, max_size)

    def recv_into(self, buffer: Any, /, *, nbytes: int = 0, flags: int = 0) -> int:
        """Receive a part into a buffer; return the part's full size (it may be truncated)."""
        data: bytes = self.recv(flags)
        view = memoryview(buffer).cast("B")
        size = nbytes or view.nbytes
        n = min(size, len(data))
        view[:n] = data[:n]
        return len(data)

    # -- waiting -------------------------------------------------------------

    def _wait(
        self,
        attempt: Callable[[], Any],
        events: int,
        timeout_ms: int,
        recheck: Callable[[], Any] | None = None,
    ) -> Any:
        """Park until ``attempt`` succeeds, the timeout expires or the context ends.

        ``recheck`` is the cheap test made after parking (a message another
        thread queued); the descriptors themselves are level-triggered, so it
        need not read from the kernel.
        """
        core = self._core
        recheck = recheck or attempt
        deadline = None if timeout_ms < 0 else _monotonic() + timeout_ms / 1000
        reading = bool(events & POLLIN)
        waker_fd = core.waker.fd
        pollset = self._pollset
        while True:
            with core.lock:
                core.parked = True
                core.reader_parked = reading
                result = recheck()
                if result is not None:
                    core.parked = core.reader_parked = False
                    return result
                pollset.update(waker_fd, core.poll_fds(events))
            if self.context._terminated or self._closed:
                core.parked = core.reader_parked = False
                self._check_open()
                raise ContextTerminated()
            ready = pollset.wait(_remaining_ms(deadline))
            with core.lock:
                core.parked = core.reader_parked = False
                if waker_fd in ready:
                    core.waker.clear()
                if ready and reading:
                    core.pump(ready)
                result = recheck() if ready else attempt()
            if result is not None:
                return result
            if not ready and deadline is not None and _monotonic() >= deadline:
                raise Again()

    def poll(self, timeout: int | None = None, flags: int = POLLIN) -> int:
        """Wait until the socket can receive (POLLIN) or send (POLLOUT); return the events."""
        self._check_open()
        timeout_ms = -1 if timeout is None or timeout < 0 else int(timeout)
        try:
            events: int = self._wait(lambda: self._ready_events(flags), flags, timeout_ms)
            return events
        except Again:
            return 0

    def _ready_events(self, flags: int) -> int | None:
        events = self._events_locked(flags)
        return events or None

    def _events(self) -> int:
        with self._core.lock:
            return self._events_locked(POLLIN | POLLOUT)

    def _events_locked(self, flags: int) -> int:
        core = self._core
        events = 0
        if flags & POLLIN:
            if self._recv_parts or core.xhas_in():
                events |= POLLIN
            else:
                core.flush_all()
                core.pump()
                if core.xhas_in():
                    events |= POLLIN
        if flags & POLLOUT and core.xhas_out():
            events |= POLLOUT
        return events

    # -- used by Poller ------------------------------------------------------

    def _events_locked_safe(self, flags: int) -> int:
        """Ready events, or 0 on a closed socket."""
        if self._closed:
            return 0
        with self._core.lock:
            return self._events_locked(flags)

    def _park_for_poller(self, poller: Any) -> None:
        core = self._core
        with core.lock:
            if self._closed:  # its waker may be gone; the poller notices on its next look
                return
            core.parked = True
            core.reader_parked = True
            poller.register(core.waker.fd, select.POLLIN)
            for fd, mask in core.poll_fds(POLLIN):
                poller.register(fd, mask)

    def _unpark_poller(self) -> None:
        core = self._core
        with core.lock:
            core.parked = core.reader_parked = False
            core.waker.clear()

    # -- monitoring and connection state ------------------------------------

    def monitor(self, addr: str | bytes | None, events: int = Event.ALL) -> None:
        """Report this socket's events to a PAIR socket bound to ``addr`` (inproc).

        As ``zmq_socket_monitor``: connect a PAIR socket to ``addr`` and read
        two-frame event messages (see :func:`zeropipe.utils.monitor.recv_monitor_message`).
        ``addr=None`` stops monitoring (a last MONITOR_STOPPED is sent).
        """
        self._check_open()
        self._stop_monitor()
        if addr is None:
            return
        endpoint = addr.decode() if isinstance(addr, bytes) else addr
        if not endpoint.startswith("inproc://"):
            raise ZMQError(errno.EPROTONOSUPPORT, "a monitor endpoint must be inproc://")
        mon: Socket = self.context.socket(SocketType.PAIR)
        mon.setsockopt(SocketOption.LINGER, 0)
        try:
            mon.bind(endpoint)
        except ZMQError:
            mon.close()
            raise
        self._monitor = mon
        core = self._core
        core.monitor_mask = int(events)
        core.monitor = emitter(mon)

    def get_monitor_socket(self, events: int | None = None, addr: str | None = None) -> Socket:
        """A PAIR socket, connected and ready to receive this socket's events (pyzmq's API)."""
        current = self._monitor_socket
        if current is not None and not current.closed:
            return current
        if addr is None:
            addr = f"inproc://zeropipe.monitor.{id(self):x}"
        self.monitor(addr, Event.ALL if events is None else events)
        sock: Socket = self.context.socket(SocketType.PAIR)
        self._monitor_socket = sock
        sock.connect(addr)
        return sock

    def disable_monitor(self) -> None:
        """Stop monitoring (the monitor socket gets MONITOR_STOPPED)."""
        self._monitor_socket = None
        self.monitor(None)

    def _stop_monitor(self) -> None:
        mon = self._monitor
        if mon is None:
            return
        core = self._core
        core.event(Event.MONITOR_STOPPED, 0, "")
        core.monitor = None
        core.monitor_mask = 0
        self._monitor = None
        mon.close()

    @property
    def peers(self) -> list[Peer]:
        """The peers connected now (handshake done): "am I connected, and to whom".

        A zeropipe extension; see also :attr:`endpoints` and :meth:`wait_for_peers`.
        """
        if self._closed:
            return []
        with self._core.lock:
            pipes = list(self._core.pipes)
        return [
            Peer(
                endpoint=pipe.endpoint,
                direction="bind" if pipe.bound else "connect",
                address=pipe.peer_address,
                socket_type=pipe.peer_type.name if pipe.peer_type is not None else "",
                routing_id=pipe.routing_id,
            )
            for pipe in pipes
            if pipe.ready and pipe.peer_type is not None
        ]

    @property
    def endpoints(self) -> dict[str, str]:
        """Each endpoint bound or connected, with its state (a zeropipe extension).

        Bound endpoints are ``"listening"``; connected ones are ``"connected"``
        (handshake done), ``"handshaking"``, or ``"connecting"`` (no connection
        now: the first attempt, or waiting to retry, or an inproc name not bound yet).
        """
        states = {endpoint: "listening" for endpoint in self._listeners}
        states.update({f"inproc://{name}": "listening" for name in self._inproc_binds})
        for endpoint, connecter in self._connecters.items():
            pipe = connecter.pipe
            if pipe is None or not pipe.alive:
                states[endpoint] = "connecting"
            elif pipe.ready:
                states[endpoint] = "connected"
            else:
                states[endpoint] = "handshaking" if pipe.has_socket else "connecting"
        for endpoint, inproc in self._inproc.items():
            joined = inproc.alive and inproc.peer_type is not None
            states[endpoint] = "connected" if joined else "connecting"
        return states

    def wait_for_peers(self, count: int = 1, timeout: int | None = None) -> bool:
        """Wait until at least ``count`` peers are connected; False on timeout (ms).

        The cure for the slow joiner: a publisher can wait for its subscribers
        before it sends (a zeropipe extension).
        """
        self._check_open()
        core = self._core
        timeout_ms = -1 if timeout is None or timeout < 0 else int(timeout)

        def enough() -> bool | None:
            joined = sum(1 for p in core.pipes if p.ready and p.peer_type is not None)
            return True if joined >= count else None

        try:
            self._wait(enough, 0, timeout_ms)
        except Again:
            return False
        return True

    # -- closing -------------------------------------------------------------

    def close(self, linger: int | None = None) -> None:
        """Close the socket; queued messages are delivered for up to LINGER ms."""
        if self._closed:
            return
        self._closed = True
        self._recv_parts.clear()
        core = self._core
        linger_ms = core.options.linger if linger is None else int(linger)
        with core.lock:
            core.closed = True
            pipes = list(core.pipes)
            for pipe in pipes:
                core.detach(pipe)
            # The hot paths call these without checking ``closed``: make them refuse.
            core.xrecv = core.xsend = _closed_operation  # type: ignore[method-assign, assignment]
            core.fast_in = None
            core.wake()
        for listener in self._listeners.values():
            listener.close()
        for connecter in self._connecters.values():
            connecter.stop(linger_ms)
        for pipe in pipes:
            with core.lock:
                pipe.close(linger_ms)
        self.context._inproc.forget(core)
        self._reactor.retire(core)
        self._stop_monitor()
        self.context._unregister(self)

    def __hash__(self) -> int:
        return id(self)

    def fileno(self) -> int:
        """A descriptor that becomes readable when the socket may have news (not edge-triggered)."""
        return self._core.waker.fd


def _type_topic(sock: Socket, cls: type, codec: str | int | Codec | None) -> bytes:
    return pack_header(sock.codec if codec is None else codec, spec_of(cls).full_name)


def _typed_frames(
    sock: Socket,
    obj: Any,
    codec: str | int | Codec | None,
    routing_id: bytes | Sequence[bytes] | None,
) -> list[bytes]:
    """The frames ``send_message`` sends: the envelope a ROUTER needs, header, payload."""
    frames = encode_message(obj, sock.codec if codec is None else codec)
    stype = sock._core.socket_type
    if stype != SocketType.ROUTER:
        if routing_id is not None:
            raise ValueError(f"routing_id is for ROUTER sockets, not {stype.name}")
        return frames
    if routing_id is None:
        raise ValueError(
            "a ROUTER sends a typed message to one peer: pass routing_id=, its routing id "
            "or the envelope recv_message returned"
        )
    if isinstance(routing_id, bytes | bytearray | memoryview):
        envelope = [bytes(routing_id)]
    else:
        envelope = [bytes(part) for part in routing_id]
    if not envelope:
        raise ValueError("a ROUTER's envelope starts with the peer's routing id: it is empty")
    return [*envelope, *frames]


def _typed_limit(sock: Socket, max_size: int | None) -> int | None:
    """The payload size limit of a typed receive: ``max_size``, else MAXMSGSIZE if set."""
    if max_size is not None:
        return max_size
    limit = sock._core.options.maxmsgsize
    return limit if limit >= 0 else None


def _typed_message(
    sock: Socket,
    frames: list[Any],
    expected: type | tuple[type, ...] | None,
    max_size: int | None,
) -> Any:
    """What ``recv_message`` returns for the frames of one received message."""
    limit = _typed_limit(sock, max_size)
    if sock._core.socket_type != SocketType.ROUTER:
        return decode_message(frames, expected, limit)
    split = max(1, len(frames) - 2)
    return frames[:split], decode_message(frames[split:], expected, limit)


def _closed_operation(*_args: object) -> None:
    raise ZMQError(errno.ENOTSOCK, "Socket operation on a closed socket")


def _remaining_ms(deadline: float | None) -> int:
    if deadline is None:
        return -1
    return max(0, int((deadline - _monotonic()) * 1000 + 0.999))


class _PollSet:
    """A ``select.poll`` kept between waits; only changes are re-registered."""

    def __init__(self) -> None:
        self._poller = select.poll()
        self._masks: dict[int, int] = {}

    def update(self, waker_fd: int, fds: list[tuple[int, int]]) -> None:
        wanted = dict(fds)
        wanted[waker_fd] = select.POLLIN
        masks = self._masks
        if wanted == masks:
            return
        for fd in [fd for fd in masks if fd not in wanted]:
            self._poller.unregister(fd)
            del masks[fd]
        for fd, mask in wanted.items():
            if masks.get(fd) != mask:
                if fd in masks:
                    self._poller.modify(fd, mask)
                else:
                    self._poller.register(fd, mask)
                masks[fd] = mask

    def wait(self, timeout_ms: int) -> set[int]:
        try:
            events = self._poller.poll(None if timeout_ms < 0 else timeout_ms)
        except InterruptedError:
            return set()
        return {fd for fd, ev in events if not ev & select.POLLNVAL}


def _parse(addr: str | bytes) -> Any:
    try:
        return parse_endpoint(addr)
    except EndpointError as exc:
        code = errno.EPROTONOSUPPORT if exc.unsupported_transport else errno.EINVAL
        raise ZMQError(code, str(exc)) from None


def _as_buffer(data: Any, copy: bool) -> Buffer:
    if type(data) is bytes:
        return data
    if isinstance(data, Frame):
        data = data.raw()
        if type(data) is bytes:
            return data
    if isinstance(data, str):
        raise TypeError("unicode not allowed, use send_string")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"expected a bytes-like object, not {type(data).__name__}") from None
    if copy or view.nbytes < 65536:
        return view.tobytes()
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _as_message(item: Any, copy: bool) -> Message:
    if type(item) is bytes:
        return item
    if isinstance(item, list | tuple):
        parts: list[Buffer] = [_as_buffer(p, copy) for p in item]
        return parts if len(parts) > 1 else parts[0]
    return _as_buffer(item, copy)


def _plain(msg: Message) -> bytes | list[bytes]:
    if type(msg) is bytes:
        return msg
    if type(msg) is list:
        return [p if type(p) is bytes else bytes(p) for p in msg]
    return bytes(msg)  # type: ignore[arg-type]


def _coerce(option: int, kind: str, value: Any) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"option {_option_name(option)} takes an int, not {value!r}")
        low, high = OPTION_RANGES.get(option, (-(2**63), 2**63 - 1))
        if not low <= value <= high:
            raise ZMQError(errno.EINVAL, f"invalid value {value} for {_option_name(option)}")
        if option == SocketOption.HEARTBEAT_TTL:
            return max(value, 0) // 100 * 100  # deciseconds on the wire
        if option == SocketOption.INVERT_MATCHING:
            return int(value != 0)
        return value
    value = _as_bytes_option(option, value)
    if option == SocketOption.ROUTING_ID and not 0 < len(value) <= 255:
        raise ZMQError(errno.EINVAL, "a routing id is 1-255 bytes")
    if option == SocketOption.ROUTING_ID and value[:1] == b"\x00":
        raise ZMQError(errno.EINVAL, "a routing id must not start with a zero byte")
    return value


def _as_bytes_option(option: int, value: Any) -> bytes:
    """The bytes of a bytes option; str and other types are a TypeError, as in pyzmq."""
    if isinstance(value, str):
        raise TypeError(f"option {_option_name(option)} takes bytes; use set_string")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"option {_option_name(option)} takes bytes, not {value!r}")
    return bytes(value)


def _option_name(option: int) -> str:
    try:
        return SocketOption(option).name
    except ValueError:
        return str(option)


__all__ = ["Socket"]


def _option_property(option: int) -> property:
    def getter(self: Socket) -> Any:
        return self.getsockopt(option)

    def setter(self: Socket, value: Any) -> None:
        self.setsockopt(option, value)

    return property(getter, setter, doc=f"The {SocketOption(option).name} option.")


def _install_option_properties() -> None:
    """``sock.linger = 0``, ``sock.rcvtimeo``...: pyzmq's attribute access to options.

    Generated properties rather than ``__getattr__``: a class with
    ``__getattr__`` pays for it on every attribute access of the hot path.
    """
    for name, option in _OPTION_NAMES.items():
        if name not in Socket.__dict__:
            setattr(Socket, name, _option_property(option))


_install_option_properties()
