"""inproc://: sockets of one Context joined by deques, bind and connect in any order."""

from __future__ import annotations

import threading

from zeropipe.protocol import compatible
from zeropipe.transports.pipe import InprocPipe, PipeOwner, inproc_pair


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
        self._pending: dict[str, list[tuple[PipeOwner, bytes]]] = {}

    def bind(self, name: str, owner: PipeOwner) -> None:
        import errno

        with self._lock:
            if name in self._bound:
                raise InprocError(errno.EADDRINUSE, f"inproc://{name} is already bound")
            self._bound[name] = owner
            waiting = self._pending.pop(name, [])
        for connecter, connect_id in waiting:
            if not connecter.closed:
                join(owner, connecter, connect_id, name)

    def unbind(self, name: str, owner: PipeOwner) -> bool:
        with self._lock:
            if self._bound.get(name) is owner:
                del self._bound[name]
                return True
        return False

    def connect(self, name: str, owner: PipeOwner, connect_id: bytes = b"") -> InprocPipe | None:
        """Join the bound socket now, or wait for its bind (returns None)."""
        with self._lock:
            binder = self._bound.get(name)
            if binder is None:
                self._pending.setdefault(name, []).append((owner, connect_id))
                return None
        return join(binder, owner, connect_id, name)

    def forget(self, owner: PipeOwner) -> None:
        """Drop every bind and pending connect of a closing socket."""
        with self._lock:
            for name in [n for n, o in self._bound.items() if o is owner]:
                del self._bound[name]
            for name, waiting in self._pending.items():
                self._pending[name] = [w for w in waiting if w[0] is not owner]


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
