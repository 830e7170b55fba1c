"""inproc://: sockets of one Context joined by deques, bind and connect in any order."""

from __future__ import annotations

import threading
from typing import Any

from zeropipe.protocol import SocketType, compatible
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import InprocPipe, PipeOwner, hwm_capacity, inproc_pair


class InprocError(Exception):
    """An inproc bind or connect that cannot be done (errno in ``errno``)."""

    def __init__(self, errno_: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno_


class InprocRegistry:
    """The inproc names bound in one Context, and connects waiting for a bind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bound: dict[str, PipeOwner] = {}
        #: Connects waiting for a bind: each already has its pipe (see :func:`pending_pipe`).
        self._pending: dict[str, list[InprocPipe]] = {}

    def bind(self, name: str, owner: PipeOwner) -> None:
        import errno

        with self._lock:
            if name in self._bound:
                raise InprocError(errno.EADDRINUSE, f"inproc://{name} is already bound")
            self._bound[name] = owner
            waiting = self._pending.pop(name, [])
        for pipe in waiting:
            if pipe.orphaned:
                adopt(owner, pipe, name)
            elif pipe.alive and not pipe.owner.closed:
                complete(owner, pipe, name)

    def unbind(self, name: str, owner: PipeOwner) -> bool:
        with self._lock:
            if self._bound.get(name) is owner:
                del self._bound[name]
                return True
        return False

    def connect(self, name: str, owner: PipeOwner, connect_id: bytes = b"") -> InprocPipe | None:
        """Join the bound socket now, or attach a pipe that waits for its bind (as libzmq).

        Messages sent before the bind wait in that pipe (up to SNDHWM) and are
        there for the binder when it comes. Returns the connecting side's pipe.
        """
        with self._lock:
            binder = self._bound.get(name)
            if binder is None:
                pipe = pending_pipe(owner, connect_id, name)
                if pipe is not None:
                    self._pending.setdefault(name, []).append(pipe)
                return pipe
        return join(binder, owner, connect_id, name)

    def lookup(self, name: str) -> PipeOwner | None:
        """The socket bound at ``inproc://name``, if any."""
        with self._lock:
            return self._bound.get(name)

    def forget(self, owner: PipeOwner) -> None:
        """Drop every bind and pending connect of a closing socket."""
        with self._lock:
            for name in [n for n, o in self._bound.items() if o is owner]:
                del self._bound[name]
            for name, waiting in self._pending.items():
                self._pending[name] = [p for p in waiting if p.owner is not owner or p.orphaned]


def join(
    binder: PipeOwner, connecter: PipeOwner, connect_id: bytes = b"", name: str = ""
) -> InprocPipe | None:
    """Create a pipe pair between two sockets and attach each end."""
    if not compatible(binder.socket_type, connecter.socket_type):
        return None
    a, b = inproc_pair(binder, connecter)
    b.connect_id = connect_id
    a.bound = True
    a.endpoint = b.endpoint = a.peer_address = b.peer_address = f"inproc://{name}"
    with binder.lock:
        if binder.closed or not binder.attach(a):
            return None
        binder.wake()
    with connecter.lock:
        if connecter.closed or not connecter.attach(b):
            a.close()
            return None
        connecter.wake()
    return b


class _Unbound:
    """Stands in for the binder of an inproc pipe until the bind happens."""

    lock = threading.Lock()
    options = Options()
    socket_type = SocketType.PAIR
    closed = False
    parked = False
    absorbs_input = False
    input_pending = False
    peer_gone = False
    inproc = None

    def wake(self) -> None:
        pass


_UNBOUND: Any = _Unbound()


def pending_pipe(connecter: PipeOwner, connect_id: bytes, name: str) -> InprocPipe | None:
    """The connecting end of a pipe whose binder does not exist yet, attached now."""
    b = inproc_pair(_UNBOUND, connecter)[1]
    b.connect_id = connect_id
    b.peer_type = None
    b.capacity = max(connecter.options.sndhwm, 0)
    b.endpoint = b.peer_address = f"inproc://{name}"
    with connecter.lock:
        if connecter.closed or not connecter.attach(b):
            return None
    return b


def _give_binder(a: InprocPipe, binder: PipeOwner, connecter: PipeOwner, name: str) -> None:
    """Make ``a``, the waiting pipe's far end, the binder's end of it."""
    a.owner = binder
    a.bound = True
    a.endpoint = a.peer_address = f"inproc://{name}"
    a.peer_type, a.routing_id = connecter.socket_type, connecter.options.routing_id


def complete(binder: PipeOwner, b: InprocPipe, name: str) -> None:
    """The bind came: give a waiting pipe its binder (or close it if incompatible)."""
    connecter = b.owner
    a = b.peer
    if not compatible(binder.socket_type, connecter.socket_type):
        with connecter.lock:
            connecter.detach(b)
            b.close()
        return
    _give_binder(a, binder, connecter, name)
    a.capacity = hwm_capacity(binder.options.sndhwm, connecter.options.rcvhwm)
    with connecter.lock:
        b.peer_type, b.routing_id = binder.socket_type, binder.options.routing_id
        b.capacity = hwm_capacity(connecter.options.sndhwm, binder.options.rcvhwm)
    with binder.lock:
        if binder.closed or not binder.attach(a):
            with connecter.lock:
                connecter.detach(b)
            a.close()
            return
        if binder.absorbs_input and a.has_in():
            binder.input_pending = True
        binder.wake()
    with connecter.lock:
        connecter.wake()


def adopt(binder: PipeOwner, b: InprocPipe, name: str) -> None:
    """The bind came after the connecting socket closed: deliver what it left."""
    a = b.peer
    if not compatible(binder.socket_type, b.owner.socket_type):
        return
    _give_binder(a, binder, b.owner, name)
    b.alive = b.ready = False
    a.alive = a.ready = False  # readable until drained, then forgotten
    with binder.lock:
        if not binder.closed and binder.attach(a):
            binder.wake()
