"""``Poller`` and ``select`` over zeropipe sockets and plain file descriptors."""

from __future__ import annotations

import errno
import select as _select
import time
from typing import Any

from zeropipe.errors import ContextTerminated, ZMQError
from zeropipe.sdk.constants import PollEvent
from zeropipe.sdk.socket import Socket

POLLIN = int(PollEvent.POLLIN)
POLLOUT = int(PollEvent.POLLOUT)
POLLERR = int(PollEvent.POLLERR)


def _fd_of(obj: Any) -> int:
    return obj if isinstance(obj, int) else int(obj.fileno())


class Poller:
    """Wait for events on several sockets (or fds) at once, like pyzmq's Poller."""

    def __init__(self) -> None:
        self.sockets: list[tuple[Any, int]] = []
        self._map: dict[Any, int] = {}

    def register(self, socket: Any, flags: int = POLLIN | POLLOUT) -> None:
        if not flags:
            self.unregister(socket)
            return
        if socket in self._map:
            self.sockets[self._map[socket]] = (socket, flags)
        else:
            self._map[socket] = len(self.sockets)
            self.sockets.append((socket, flags))

    modify = register

    def unregister(self, socket: Any) -> None:
        index = self._map.pop(socket)
        self.sockets.pop(index)
        for sock, i in list(self._map.items()):
            if i > index:
                self._map[sock] = i - 1

    def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        """Return ``(socket, events)`` pairs; ``timeout`` in ms (None or -1: forever)."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout / 1000
        while True:
            ready = self._ready_now()
            if ready:
                return ready
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            self._check_contexts()
            self._park(remaining)

    def _check_contexts(self) -> None:
        """Raise as pyzmq does once a socket's context is ending (ContextTerminated) or
        a socket was closed (ENOTSOCK)."""
        for sock, _flags in self.sockets:
            if isinstance(sock, Socket):
                if sock.context.closed:
                    raise ContextTerminated()
                if sock.closed:
                    raise ZMQError(errno.ENOTSOCK, "Socket operation on a closed socket")

    def _ready_now(self) -> list[tuple[Any, int]]:
        ready = []
        plain = []
        for sock, flags in self.sockets:
            if isinstance(sock, Socket):
                events = sock._events_locked_safe(flags)
                if events:
                    ready.append((sock, events))
            else:
                plain.append((sock, flags))
        if plain:
            ready.extend(_poll_plain(plain, 0))
        return ready

    def _park(self, remaining: float | None) -> None:
        poller = _select.poll()
        zsocks = [s for s, _ in self.sockets if isinstance(s, Socket)]
        for sock in zsocks:
            sock._park_for_poller(poller)
        for sock, flags in self.sockets:
            if not isinstance(sock, Socket):
                poller.register(_fd_of(sock), _mask(flags))
        wait = 0.1 if remaining is None else min(remaining, 0.1)
        try:
            poller.poll(max(1, int(wait * 1000)))
        finally:
            for sock in zsocks:
                sock._unpark_poller()


def _mask(flags: int) -> int:
    mask = 0
    if flags & POLLIN:
        mask |= _select.POLLIN
    if flags & POLLOUT:
        mask |= _select.POLLOUT
    return mask


def _poll_plain(items: list[tuple[Any, int]], timeout_ms: int) -> list[tuple[Any, int]]:
    poller = _select.poll()
    by_fd = {}
    for obj, flags in items:
        fd = _fd_of(obj)
        by_fd[fd] = obj
        poller.register(fd, _mask(flags))
    out = []
    for fd, ev in poller.poll(timeout_ms):
        events = 0
        if ev & _select.POLLIN:
            events |= POLLIN
        if ev & _select.POLLOUT:
            events |= POLLOUT
        if ev & (_select.POLLERR | _select.POLLHUP | _select.POLLNVAL):
            events |= POLLERR
        out.append((by_fd[fd], events))
    return out


def select(
    rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """pyzmq's ``zmq.select``: timeout in seconds."""
    poller = Poller()
    for s in rlist:
        poller.register(s, POLLIN)
    for s in wlist:
        flags = POLLOUT | (POLLIN if s in rlist else 0)
        poller.register(s, flags)
    for s in xlist:
        poller.register(s, POLLERR)
    ready = dict(poller.poll(None if timeout is None else timeout * 1000))
    return (
        [s for s in rlist if ready.get(s, 0) & POLLIN],
        [s for s in wlist if ready.get(s, 0) & POLLOUT],
        [s for s in xlist if ready.get(s, 0) & POLLERR],
    )
