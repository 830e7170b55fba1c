"""The asyncio API: the same socket cores, driven from the event loop's thread.

An asyncio :class:`Socket` is a blocking :class:`zeropipe.sdk.socket.Socket`
whose waiting is done by the event loop instead of ``select.poll``. Every
operation first tries the non-blocking path under ``core.lock``; when that
fails it parks the core exactly as the blocking ``_wait`` does (``parked``,
and ``reader_parked`` for receives), re-checks, and then waits for the
socket's waker and the connections' descriptors with ``loop.add_reader`` /
``loop.add_writer``. No thread and no executor is involved: reading, parsing
and writing happen in the loop's thread, like they do in the caller's thread
for blocking sockets.

Several operations may wait on one socket at once (a pending ``recv`` and a
``send`` on a PAIR, or a ``Poller`` and a ``recv``), and ``add_reader`` keeps
a single callback per descriptor, so each loop has a :class:`_Hub` that
shares descriptors among waiters. The hub, not the waiters, clears a
socket's waker: it does so in the same callback that resolves every waiter
watching it, so no wake-up can be consumed without being seen by all of them.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import select
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar, cast, overload

from zeropipe.codecs import Codec
from zeropipe.errors import Again, ContextTerminated
from zeropipe.protocol import Message
from zeropipe.sdk import context as _context
from zeropipe.sdk import poll as _poll
from zeropipe.sdk import socket as _socket
from zeropipe.sdk.frame import Frame
from zeropipe.transports.waker import Waker

T = TypeVar("T")
S = TypeVar("S", bound=_socket.Socket)

NOBLOCK = _socket.NOBLOCK
SNDMORE = _socket.SNDMORE
POLLIN = _socket.POLLIN
POLLOUT = _socket.POLLOUT

_as_buffer = _socket._as_buffer
_as_message = _socket._as_message
_plain = _socket._plain

Loop = asyncio.AbstractEventLoop
Fds = list[tuple[int, int]]


# -- waiting on the loop ------------------------------------------------------


class _Waiter:
    """One suspended operation: a future, the descriptors it watches, those that fired."""

    __slots__ = ("future", "hub", "keys", "loop", "ready", "timer")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.hub = _hub(loop)
        self.future: asyncio.Future[None] = loop.create_future()
        self.ready: set[int] = set()
        self.keys: list[tuple[int, bool]] = []
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, fd: int, writing: bool = False, waker: Waker | None = None) -> None:
        """Resolve the future when ``fd`` is readable (or writable)."""
        self.keys.append((fd, writing))
        self.hub.watch(fd, writing, self, waker)

    def watch_fds(self, fds: Fds) -> None:
        """Watch ``(fd, mask)`` pairs from ``SocketCore.poll_fds``."""
        for fd, mask in fds:
            if mask & select.POLLIN:
                self.watch(fd)
            if mask & select.POLLOUT:
                self.watch(fd, True)

    def fire(self, fd: int | None = None) -> None:
        """Wake the operation (``fd`` is what became ready; None for a timeout or a close)."""
        if fd is not None:
            self.ready.add(fd)
        if not self.future.done():
            self.future.set_result(None)

    def release(self) -> None:
        """Stop watching everything and drop the timer (idempotent; loop thread only)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        keys, self.keys = self.keys, []
        for fd, writing in keys:
            self.hub.unwatch(fd, writing, self)

    def abort(self) -> None:
        """Release and wake: the socket was closed under the operation."""
        self.release()
        self.fire()

    def sleep_until(self, deadline: float | None) -> None:
        """Wake at ``deadline`` (loop time, None: never); raise Again if it has passed."""
        if deadline is None:
            return
        remaining = deadline - self.loop.time()
        if remaining <= 0:
            raise Again()
        self.timer = self.loop.call_later(remaining, self.fire)


class _Hub:
    """Shares each descriptor of one loop among the waiters watching it."""

    def __init__(self) -> None:
        self.readers: dict[int, set[_Waiter]] = {}
        self.writers: dict[int, set[_Waiter]] = {}
        self.wakers: dict[int, Waker] = {}

    def watch(self, fd: int, writing: bool, waiter: _Waiter, waker: Waker | None) -> None:
        table = self.writers if writing else self.readers
        waiters = table.setdefault(fd, set())
        shared = bool(waiters)
        waiters.add(waiter)
        if waker is not None:
            self.wakers[fd] = waker
        loop = waiter.loop
        try:
            if shared:  # re-arm: the descriptor may have been closed and its number reused
                _remove(loop, fd, writing)
            if writing:
                loop.add_writer(fd, self._dispatch, fd, True)
            else:
                loop.add_reader(fd, self._dispatch, fd, False)
        except (OSError, ValueError):
            self._fail(loop, fd)

    def unwatch(self, fd: int, writing: bool, waiter: _Waiter) -> None:
        table = self.writers if writing else self.readers
        waiters = table.get(fd)
        if waiters is None:
            return
        waiters.discard(waiter)
        if waiters:
            return
        del table[fd]
        if not writing:
            self.wakers.pop(fd, None)
        try:
            _remove(waiter.loop, fd, writing)
        except (OSError, ValueError):
            self._fail(waiter.loop, fd)

    def _dispatch(self, fd: int, writing: bool) -> None:
        waker = None if writing else self.wakers.get(fd)
        if waker is not None:
            waker.clear()
        table = self.writers if writing else self.readers
        for waiter in list(table.get(fd, ())):
            waiter.fire(fd)

    def _fail(self, loop: Loop, fd: int) -> None:
        """Something went wrong with ``fd``: forget it and let everyone watching it retry."""
        waiters = self.readers.pop(fd, set()) | self.writers.pop(fd, set())
        self.wakers.pop(fd, None)
        for writing in (False, True):
            try:
                _remove(loop, fd, writing)
            except (OSError, ValueError):
                pass
        for waiter in waiters:
            waiter.fire(fd)


def _remove(loop: Loop, fd: int, writing: bool) -> None:
    if writing:
        loop.remove_writer(fd)
    else:
        loop.remove_reader(fd)


_HUBS: weakref.WeakKeyDictionary[Loop, _Hub] = weakref.WeakKeyDictionary()


def _hub(loop: Loop) -> _Hub:
    hub = _HUBS.get(loop)
    if hub is None:
        hub = _HUBS[loop] = _Hub()
    return hub


def _running_loop() -> Loop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _xsender(core: Any, msg: Message) -> Callable[[], bool | None]:
    """An attempt that sends ``msg`` (lock held): True when it went, None when it must wait."""
    return lambda: True if core.xsend(msg) else None


# -- the socket ---------------------------------------------------------------


class Socket(_socket.Socket):
    """A zeropipe socket for asyncio: sending and receiving methods return awaitables.

    Create it with :meth:`Context.socket` on a :class:`Context` from this module.
    Options, bind/connect and close are those of the blocking socket.
    """

    _waiters: dict[_Waiter, bool]
    """Operations parked on this socket, and whether each is receiving (core.lock)."""

    def __init__(self, context: _context.Context, socket_type: int, **options: Any) -> None:
        object.__setattr__(self, "_waiters", {})
        super().__init__(context, socket_type, **options)

    def __repr__(self) -> str:
        return "<zeropipe.asyncio." + super().__repr__()[len("<zeropipe.") :]

    # -- parking -------------------------------------------------------------

    def _park(self, waiter: _Waiter, reading: bool) -> None:
        """Announce a sleeper so wake() rings (lock held), as the blocking ``_wait`` does."""
        self._waiters[waiter] = reading
        core = self._core
        core.parked = True
        if reading:
            core.reader_parked = True

    def _unpark(self, waiter: _Waiter) -> None:
        """Forget a sleeper; the flags stay up while others sleep (lock held)."""
        waiters = self._waiters
        waiters.pop(waiter, None)
        core = self._core
        core.parked = bool(waiters)
        core.reader_parked = any(waiters.values())

    def _check_usable(self) -> None:
        if self.context._terminated:
            raise ContextTerminated()
        self._check_open()

    def _watch_core(self, waiter: _Waiter, fds: Fds) -> None:
        waker = self._core.waker
        waiter.watch(waker.fd, False, waker)
        waiter.watch_fds(fds)

    def _park_and_try(
        self, waiter: _Waiter, reading: bool, attempt: Callable[[], T | None], events: int
    ) -> tuple[T | None, Fds]:
        """Park, then try once more: a wake-up from now on is not missed."""
        core = self._core
        with core.lock:
            self._park(waiter, reading)
            try:
                result = attempt()
                if result is None:
                    return None, core.poll_fds(events)
            except BaseException:
                self._unpark(waiter)
                raise
            self._unpark(waiter)
            return result, []

    async def _await_ready(
        self, attempt: Callable[[], T | None], events: int, timeout_ms: int
    ) -> T:
        """Park until ``attempt`` succeeds (it runs under the lock), the timeout or an end."""
        core = self._core
        loop = asyncio.get_running_loop()
        deadline = None if timeout_ms < 0 else loop.time() + timeout_ms / 1000
        reading = bool(events & POLLIN)
        while True:
            self._check_usable()
            waiter = _Waiter(loop)
            result, fds = self._park_and_try(waiter, reading, attempt, events)
            if result is not None:
                return result
            try:
                self._check_usable()
                waiter.sleep_until(deadline)
                self._watch_core(waiter, fds)
                await waiter.future
            finally:
                waiter.release()
                with core.lock:
                    self._unpark(waiter)
            if reading and waiter.ready:
                with core.lock:
                    core.pump(waiter.ready)

    # -- sending -------------------------------------------------------------

    async def send(  # type: ignore[override]
        self,
        data: Any,
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        **kwargs: Any,
    ) -> None:
        """Queue one message part; with SNDMORE, more parts follow."""
        self._check_open()
        if type(data) is not bytes:
            data = _as_buffer(data, copy)
        if flags & SNDMORE:
            self._send_parts.append(data)
            return
        parts = self._send_parts
        if not parts:
            await self._asend(data, flags)
            return
        parts.append(data)
        object.__setattr__(self, "_send_parts", [])
        try:
            await self._asend(parts, flags)
        except BaseException:  # not sent (Again, cancelled...): keep the parts queued
            object.__setattr__(self, "_send_parts", parts[:-1])
            raise

    async def _asend(self, msg: Message, flags: int) -> None:
        core = self._core
        with core.lock:
            if core.xsend(msg):
                return
        if flags & NOBLOCK:
            raise Again()
        await self._await_ready(_xsender(core, msg), POLLOUT, core.options.sndtimeo)

    async def send_multipart(  # type: ignore[override]
        self,
        msg_parts: Sequence[Any],
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        **kwargs: Any,
    ) -> None:
        """Send a whole multipart message, atomically."""
        await self._asend(self._multipart(msg_parts, copy), flags)

    async def send_many(  # type: ignore[override]
        self, messages: Iterable[Any], flags: int = 0, copy: bool = True
    ) -> None:
        """Send many messages, as many as fit under each lock (see the blocking ``send_many``)."""
        self._check_open()
        core = self._core
        pending = iter(messages)
        while True:
            with core.lock:
                for item in pending:
                    msg = _as_message(item, copy)
                    if not core.xsend(msg):
                        break
                else:
                    return
            if flags & NOBLOCK:
                raise Again()
            await self._await_ready(_xsender(core, msg), POLLOUT, core.options.sndtimeo)

    async def send_string(  # type: ignore[override]
        self, u: str, flags: int = 0, copy: bool = True, encoding: str = "utf-8", **kwargs: Any
    ) -> None:
        if not isinstance(u, str):
            raise TypeError("str objects only")
        await self.send(u.encode(encoding), flags, copy)

    send_unicode = send_string  # type: ignore[assignment]

    async def send_json(self, obj: Any, flags: int = 0, **kwargs: Any) -> None:  # type: ignore[override]
        send_kwargs = {k: kwargs.pop(k) for k in ("routing_id", "group") if k in kwargs}
        await self.send(json.dumps(obj, **kwargs).encode("utf-8"), flags, **send_kwargs)

    async def send_pyobj(  # type: ignore[override]
        self, obj: Any, flags: int = 0, protocol: int = pickle.DEFAULT_PROTOCOL, **kwargs: Any
    ) -> None:
        await self.send(pickle.dumps(obj, protocol), flags)

    async def send_serialized(  # type: ignore[override]
        self,
        msg: Any,
        serialize: Callable[[Any], Sequence[Any]],
        flags: int = 0,
        copy: bool = True,
        **kwargs: Any,
    ) -> None:
        await self.send_multipart(serialize(msg), flags, copy)

    async def send_message(  # type: ignore[override]
        self,
        obj: Any,
        codec: str | int | Codec | None = None,
        flags: int = 0,
        *,
        routing_id: bytes | Sequence[bytes] | None = None,
    ) -> None:
        """Send a typed message as ``[header, payload]`` (see the blocking ``send_message``)."""
        await self.send_multipart(_socket._typed_frames(self, obj, codec, routing_id), flags)

    # -- receiving -----------------------------------------------------------

    async def _arecv(self, flags: int) -> Message:
        """Take one whole message from the core, waiting if needed."""
        self._check_open()
        core = self._core
        with core.lock:
            msg = core.recv_now()
        if msg is not None:
            return msg
        if flags & NOBLOCK:
            raise Again()
        return await self._await_ready(core.recv_now, POLLIN, core.options.rcvtimeo)

    async def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        """Receive one message part (bytes, or a Frame with copy=False)."""
        if self._recv_parts:
            return self._next_part(copy)
        msg = await self._arecv(flags)
        if type(msg) is list:
            self._recv_parts.extend(msg)
            return self._next_part(copy)
        if self._rcvmore:
            object.__setattr__(self, "_rcvmore", False)
        if copy:
            return msg if type(msg) is bytes else bytes(msg)  # type: ignore[arg-type]
        return self._frame(msg, False)  # type: ignore[arg-type]

    async def recv_multipart(  # type: ignore[override]
        self, flags: int = 0, copy: bool = True, track: bool = False
    ) -> list[Any]:
        """Receive all parts of a message (the rest of it after a partial ``recv``)."""
        if not self._recv_parts:
            msg = await self._arecv(flags)
            self._recv_parts.extend(msg if isinstance(msg, list) else [msg])
        parts = [self._next_part(copy)]
        while self._rcvmore:
            parts.append(self._next_part(copy))
        return parts

    async def recv_many(  # type: ignore[override]
        self, max_messages: int = 1 << 30, flags: int = 0
    ) -> list[bytes | list[bytes]]:
        """Receive every message queued now: at least one, waiting as ``recv`` does."""
        self._check_open()
        core = self._core
        with core.lock:
            msgs = self._take_many(max_messages)
        if msgs is None:
            if flags & NOBLOCK:
                raise Again()
            take = lambda: self._take_many(max_messages)  # noqa: E731
            msgs = await self._await_ready(take, POLLIN, core.options.rcvtimeo)
        return [_plain(m) for m in msgs]

    def _take_many(self, limit: int) -> list[Message] | None:
        """Up to ``limit`` messages, or None when there is none (lock held)."""
        core = self._core
        msgs = core.xrecv_many(limit)
        if msgs:
            return msgs
        first = core.recv_now()
        if first is None:
            return None
        return [first, *core.xrecv_many(limit - 1)]

    async def recv_string(self, flags: int = 0, encoding: str = "utf-8") -> str:  # type: ignore[override]
        data: bytes = await self.recv(flags)
        return data.decode(encoding)

    recv_unicode = recv_string  # type: ignore[assignment]

    async def recv_json(self, flags: int = 0, **kwargs: Any) -> Any:
        return json.loads(await self.recv(flags), **kwargs)

    async def recv_pyobj(self, flags: int = 0) -> Any:
        return pickle.loads(await self.recv(flags))

    async def recv_serialized(  # type: ignore[override]
        self, deserialize: Callable[[list[Any]], T], flags: int = 0, copy: bool = True
    ) -> T:
        return deserialize(await self.recv_multipart(flags, copy))

    async def recv_message(
        self,
        expected: type | tuple[type, ...] | None = None,
        flags: int = 0,
        *,
        max_size: int | None = None,
    ) -> Any:
        """Receive one typed message (see the blocking ``recv_message``): the object, or
        ``(envelope, obj)`` on a ROUTER; DecodeError for a bad one, which is consumed."""
        frames = await self.recv_multipart(flags)
        return _socket._typed_message(self, frames, expected, max_size)

    async def recv_into(  # type: ignore[override]
        self, buffer: Any, /, *, nbytes: int = 0, flags: int = 0
    ) -> int:
        """Receive a part into a buffer; return the part's full size (it may be truncated)."""
        data: bytes = await self.recv(flags)
        view = memoryview(buffer).cast("B")
        n = min(nbytes or view.nbytes, len(data))
        view[:n] = data[:n]
        return len(data)

    # -- polling and closing -------------------------------------------------

    async def poll(self, timeout: int | None = None, flags: int = POLLIN) -> int:  # type: ignore[override]
        """Wait until the socket can receive (POLLIN) or send (POLLOUT); return the events."""
        self._check_open()
        timeout_ms = -1 if timeout is None or timeout < 0 else int(timeout)
        try:
            return await self._await_ready(lambda: self._ready_events(flags), flags, timeout_ms)
        except Again:
            return 0

    def close(self, linger: int | None = None) -> None:
        """Close the socket; pending operations raise ZMQError(ENOTSOCK)."""
        if self._closed:
            return
        here = _running_loop()
        with self._core.lock:
            waiters = list(self._waiters)
        for waiter in waiters:  # released now, before the reactor closes the descriptors
            if waiter.loop is here:
                waiter.abort()
        super().close(linger)
        for waiter in waiters:
            if waiter.loop is not here:
                try:
                    waiter.loop.call_soon_threadsafe(waiter.abort)
                except RuntimeError:  # that loop is closed
                    pass


# -- the poller ---------------------------------------------------------------


class _SafeEvents(Protocol):
    def _events_locked_safe(self, flags: int) -> int: ...


def _events_of(sock: Socket, flags: int) -> int:
    return cast(_SafeEvents, sock)._events_locked_safe(flags)


class Poller(_poll.Poller):
    """Wait for events on several asyncio sockets (or plain descriptors) at once."""

    def register(self, socket: Any, flags: int = POLLIN | POLLOUT) -> None:
        if isinstance(socket, _socket.Socket) and not isinstance(socket, Socket):
            raise TypeError("zeropipe.asyncio.Poller needs zeropipe.asyncio sockets")
        super().register(socket, flags)

    modify = register

    async def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:  # type: ignore[override]
        """Return ``(socket, events)`` pairs; ``timeout`` in ms (None or -1: forever)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None or timeout < 0 else loop.time() + timeout / 1000
        while True:
            items = list(self.sockets)
            waiter = _Waiter(loop)
            try:
                ready = self._park_all(waiter, items)
                if ready:
                    return ready
                try:
                    waiter.sleep_until(deadline)
                except Again:
                    return []
                self._watch_all(waiter, items)
                await waiter.future
            finally:
                waiter.release()
                _unpark_all(waiter, items)

    @staticmethod
    def _park_all(waiter: _Waiter, items: list[tuple[Any, int]]) -> list[tuple[Any, int]]:
        """Park on every socket, then check every item (so no wake-up is missed)."""
        for sock, flags in items:
            if isinstance(sock, Socket):
                sock._check_usable()
                with sock._core.lock:
                    sock._park(waiter, bool(flags & POLLIN))
        ready = []
        plain = []
        for sock, flags in items:
            if isinstance(sock, Socket):
                events = _events_of(sock, flags)
                if events:
                    ready.append((sock, events))
            else:
                plain.append((sock, flags))
        if plain:
            ready.extend(_poll._poll_plain(plain, 0))
        return ready

    @staticmethod
    def _watch_all(waiter: _Waiter, items: list[tuple[Any, int]]) -> None:
        for sock, flags in items:
            if isinstance(sock, Socket):
                with sock._core.lock:
                    fds = sock._core.poll_fds(flags)
                sock._watch_core(waiter, fds)
            else:
                fd = _poll._fd_of(sock)
                if flags & POLLIN:
                    waiter.watch(fd)
                if flags & POLLOUT:
                    waiter.watch(fd, True)


def _unpark_all(waiter: _Waiter, items: list[tuple[Any, int]]) -> None:
    for sock, _ in items:
        if isinstance(sock, Socket):
            with sock._core.lock:
                sock._unpark(waiter)


# -- the context --------------------------------------------------------------


class Context(_context.Context):
    """A Context whose sockets are asyncio sockets."""

    _socket_class = Socket

    @classmethod
    def instance(cls, io_threads: int = 1) -> Context:
        """A process-wide shared asyncio Context."""
        inst = super().instance(io_threads)
        assert isinstance(inst, Context)
        return inst

    @overload  # type: ignore[override]
    def socket(self, socket_type: int, socket_class: None = None, **kwargs: Any) -> Socket: ...

    @overload
    def socket(self, socket_type: int, socket_class: type[S], **kwargs: Any) -> S: ...

    def socket(
        self, socket_type: int, socket_class: type[_socket.Socket] | None = None, **kwargs: Any
    ) -> Any:
        """Create an asyncio socket of the given type (``zeropipe.PUSH``...)."""
        return super().socket(socket_type, socket_class or Socket, **kwargs)

    def __repr__(self) -> str:
        return "<zeropipe.asyncio." + super().__repr__()[len("<zeropipe.") :]


__all__ = ["Context", "Frame", "Poller", "Socket"]
