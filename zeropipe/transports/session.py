"""Listeners and connecters: where stream pipes come from.

A :class:`Listener` accepts connections on a bound endpoint. A
:class:`Connecter` keeps one connection to a connected endpoint alive:
it connects, and after every failure or disconnect tries again after
``RECONNECT_IVL``, doubling up to ``RECONNECT_IVL_MAX`` when that is set.
Both hand each new connection to a :class:`StreamPipe`, which joins the
owner socket only once its handshake succeeds. They run on the reactor.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from zeropipe.protocol import SocketType
from zeropipe.transports import ipc, tcp
from zeropipe.transports.endpoint import Endpoint, EndpointError
from zeropipe.transports.monitor import Event
from zeropipe.transports.pipe import PipeOwner
from zeropipe.transports.reactor import Reactor, Timer
from zeropipe.transports.stream import StreamPipe, peer_description, stream_pipe_class

log = logging.getLogger("zeropipe")

_FD_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Listener:
    """A bound endpoint accepting connections."""

    def __init__(self, owner: PipeOwner, reactor: Reactor, ep: Endpoint) -> None:
        self.owner = owner
        self.reactor = reactor
        self.ep = ep
        module = tcp if ep.transport == "tcp" else ipc
        self.sock, self.endpoint = module.open_listener(ep, owner.options)
        self._inode = ipc.bound_inode(self.endpoint) if ep.transport == "ipc" else None
        self.closed = False
        self.fd = self.sock.fileno()
        reactor.call_soon(reactor.add_reader, self.fd, self._on_accept)
        owner.event(Event.LISTENING, self.fd, self.endpoint)

    def _on_accept(self) -> None:
        for _ in range(256):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._accept_failed(exc)
                return
            conn.setblocking(False)
            if conn.family != socket.AF_UNIX:
                tcp.tune(conn, self.owner.options)
            self.owner.event(Event.ACCEPTED, conn.fileno(), self.endpoint)
            pipe = stream_pipe_class(self.owner.options)(
                self.owner,
                conn,
                self.reactor,
                as_server=True,
                peer_address=self._peer_of(conn),
                listener=self,
                endpoint=self.endpoint,
            )
            pipe.start()

    def _peer_of(self, conn: socket.socket) -> str:
        """The peer's address: its IP for tcp, our path for ipc (its own is unnamed)."""
        if conn.family == socket.AF_UNIX:
            return str(self.endpoint).removeprefix("ipc://")
        return peer_description(conn)

    def _accept_failed(self, exc: OSError) -> None:
        self.owner.event(Event.ACCEPT_FAILED, exc.errno or 0, self.endpoint)
        if exc.errno in _FD_EXHAUSTED:
            log.warning("zeropipe: accept on %s failed (%s); retrying", self.endpoint, exc)
            fd = self.sock.fileno()
            self.reactor.remove_reader(fd)
            self.reactor.call_later(0.1, self._resume)

    def _resume(self) -> None:
        if not self.closed:
            self.reactor.add_reader(self.sock.fileno(), self._on_accept)

    def close(self) -> None:
        """Stop listening (thread-safe)."""
        if not self.closed:
            self.closed = True
            self.owner.event(Event.CLOSED, self.fd, self.endpoint)
            # Remove the ipc file now, so a bind to the same path right after
            # close() or unbind() cannot lose its file to our late clean-up.
            ipc.remove_path(self.endpoint, self._inode, wildcard=self.ep.address == "*")
            self.reactor.call_soon(self._close)

    def _close(self) -> None:
        self.reactor.remove_reader(self.sock.fileno())
        self.sock.close()


class Connecter:
    """One connected endpoint, reconnected for as long as the socket wants it."""

    def __init__(
        self, owner: PipeOwner, reactor: Reactor, ep: Endpoint, connect_id: bytes = b""
    ) -> None:
        self.owner = owner
        self.reactor = reactor
        self.ep = ep
        self.endpoint = str(ep)
        self.connect_id = connect_id
        self.stopped = False
        self.pipe: StreamPipe | None = None
        self._sock: socket.socket | None = None
        self._timer: Timer | None = None
        self._ivl = owner.options.reconnect_ivl
        if not owner.options.immediate and owner.socket_type is not SocketType.ROUTER:
            self._attach_persistent()
        reactor.call_soon(self._attempt)

    def _attach_persistent(self) -> None:
        """IMMEDIATE 0 (libzmq's default): the peer's pipe exists from now on.

        Messages sent before the connection is up, or while it is down, wait
        in it and go out after the next handshake. (ROUTER, which addresses
        peers by the id they announce, attaches each connection after its
        handshake instead.)
        """
        owner = self.owner
        pipe = stream_pipe_class(self.owner.options)(
            owner,
            None,
            self.reactor,
            as_server=False,
            peer_address="",
            on_closed=self._on_pipe_closed,
            endpoint=self.endpoint,
            persistent=True,
        )
        with owner.lock:
            if not owner.closed and owner.attach(pipe):
                pipe.attached = True
                self.pipe = pipe

    def _attempt(self) -> None:
        self._timer = None
        if self.stopped:
            return
        module: Any = tcp if self.ep.transport == "tcp" else ipc
        try:
            sock, addr = module.new_connecting_socket(self.ep, self.owner.options)
        except (OSError, EndpointError) as exc:
            log.debug("zeropipe: cannot connect to %s yet: %s", self.endpoint, exc)
            self._retry(failed=True)
            return
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self.owner.event(Event.CLOSED, sock.fileno(), self.endpoint)
            sock.close()
            self._retry(failed=True)
            return
        if err:
            self.owner.event(Event.CONNECT_DELAYED, err, self.endpoint)
        self._sock = sock
        self.reactor.add_writer(sock.fileno(), self._on_connected)
        timeout = self.owner.options.connect_timeout
        if err and timeout > 0:
            self._timer = self.reactor.call_later(timeout / 1000, self._connect_timed_out)

    def _connect_timed_out(self) -> None:
        """CONNECT_TIMEOUT: give up on a connect that has not completed; try again later."""
        self._timer = None
        sock = self._sock
        if sock is None or self.stopped:
            return
        self._sock = None
        self.reactor.remove_writer(sock.fileno())
        self.owner.event(Event.CLOSED, sock.fileno(), self.endpoint)
        sock.close()
        self._retry(failed=True)

    def _on_connected(self) -> None:
        sock = self._sock
        assert sock is not None
        self._sock = None
        if self._timer is not None:  # the CONNECT_TIMEOUT timer
            self._timer.cancel()
            self._timer = None
        self.reactor.remove_writer(sock.fileno())
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err or self.stopped:
            self.owner.event(Event.CLOSED, sock.fileno(), self.endpoint)
            sock.close()
            self._retry(failed=True)
            return
        self.owner.event(Event.CONNECTED, sock.fileno(), self.endpoint)
        pipe = self.pipe
        if pipe is not None and pipe.persistent:
            with self.owner.lock:
                pipe.use_socket(sock, False, peer_description(sock))
            pipe.start()
            return
        pipe = stream_pipe_class(self.owner.options)(
            self.owner,
            sock,
            self.reactor,
            as_server=False,
            peer_address=peer_description(sock),
            on_closed=self._on_pipe_closed,
            endpoint=self.endpoint,
        )
        pipe.connect_id = self.connect_id
        self.pipe = pipe
        pipe.start()

    def _on_pipe_closed(self, pipe: StreamPipe, reason: str) -> None:
        log.debug("zeropipe: connection to %s closed: %s", self.endpoint, reason)
        if pipe.persistent:
            if not pipe.alive:  # closed for good (after any LINGER): stop connecting
                self.stopped = True
                self._stop()
                return
            self._retry(failed=not pipe.handshaken)
            return
        if pipe is self.pipe:
            self.pipe = None
        self._retry(failed=not pipe.attached)

    def _retry(self, *, failed: bool) -> None:
        opts = self.owner.options
        if self.stopped or opts.reconnect_ivl < 0:
            return
        if not failed:
            self._ivl = opts.reconnect_ivl
        delay = self._ivl
        if failed and opts.reconnect_ivl_max > 0:
            self._ivl = min(max(self._ivl, 1) * 2, opts.reconnect_ivl_max)
        self.owner.event(Event.CONNECT_RETRIED, max(delay, 0), self.endpoint)
        self._timer = self.reactor.call_later(max(delay, 0) / 1000, self._attempt)

    def stop(self, linger_ms: int) -> None:
        """Stop reconnecting and close the connection (thread-safe)."""
        if self.stopped:
            return
        pipe = self.pipe
        if pipe is not None:
            pipe.close(linger_ms)
            if pipe.persistent and pipe.alive and not pipe.ready:
                return  # lingering before any connection: keep connecting until it ends
        self.stopped = True
        self.reactor.call_soon(self._stop)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._sock is not None:
            self.reactor.remove_writer(self._sock.fileno())
            self._sock.close()
            self._sock = None
