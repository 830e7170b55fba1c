"""The engine: one ZMTP connection over a stream socket (tcp or ipc).

Theory of operation
-------------------
A :class:`StreamPipe` joins a kernel socket, a sans-I/O
:class:`~zeropipe.protocol.Connection` and a socket's routing. Until the
handshake finishes it belongs to the reactor thread; then the owner socket
attaches it and it is used under the owner's lock by whichever thread is
there: the caller on the hot path, the reactor otherwise.

Sending: :meth:`write` appends a header and the body to ``out``. The batch is
written with one syscall when it reaches 64 KiB, at once when the connection
has been idle, and otherwise left for the caller's next write or the
reactor's tail flush. Bodies of 64 KiB or more go out with a gathering
``sendmsg``, never copied. The high-water mark counts messages not yet
handed to the kernel.

Receiving: :meth:`read_some` reads at most 64 KiB (larger reads hit glibc
heap trimming) and lets the protocol cut frames by slicing; a large frame is
read with ``recv_into`` straight into its own buffer.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from zeropipe.protocol import (
    LARGE_FRAME,
    SHORT_HEADER,
    AuthenticationFailed,
    Connection,
    ConnectionState,
    HandshakeComplete,
    Message,
    Metadata,
    NoZapHandler,
    PeerErrorReceived,
    Ping,
    RemoteProtocolError,
    ZapRequest,
    encode_frames,
    frame_header,
)
from zeropipe.protocol.errors import ZMTP_UNSPECIFIED
from zeropipe.protocol.frames import Buffer
from zeropipe.protocol.zap import request_frames
from zeropipe.transports.monitor import Event
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe, PipeOwner, take
from zeropipe.transports.zap import ZapCall, ZapResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from zeropipe.transports.reactor import Reactor, Timer

log = logging.getLogger("zeropipe")

READ_CHUNK = 65536
BATCH_BYTES = 65536
#: A connection that wrote nothing for this long writes a new message at once.
IDLE_WRITE = 0.00005
#: After a pause, this many more messages are written at once, one by one.
EAGER_WRITES = 4
#: An active caller writes its batch itself once the batch is this old.
TAIL_AGE = 0.001
IOV_MAX = 1024
#: Up to this many chunks go out with sendmsg as they are; more are joined first.
FEW_CHUNKS = 8
#: A backlog up to this size is joined whole before a write.
JOIN_ALL_BYTES = 4 * BATCH_BYTES

_monotonic = time.monotonic
#: Headers of single long frames below LARGE_FRAME, by size (at most 65,280 of them).
_LONG_HEADERS: dict[int, bytes] = {}


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 62


#: A frame larger than this machine's memory can never be received: such a
#: header is treated as hostile even without MAXMSGSIZE (libzmq fails its
#: allocation and closes too).
PHYSICAL_MEMORY = _physical_memory()


class StreamPipe(Pipe):
    """A pipe over a stream socket.

    Most pipes live as long as one connection. A *persistent* pipe (a connected
    endpoint with ``IMMEDIATE`` 0, as in libzmq) joins its socket at
    ``connect`` time and outlives its connections: while there is none, what
    is sent waits in ``pending`` (up to SNDHWM) and goes out after the next
    handshake; what was received stays readable.
    """

    pollable = True
    sock: socket.socket

    def __init__(
        self,
        owner: PipeOwner,
        sock: socket.socket | None,
        reactor: Reactor,
        *,
        as_server: bool,
        peer_address: str,
        on_closed: Callable[[StreamPipe, str], None] | None = None,
        listener: object = None,
        endpoint: str = "",
        persistent: bool = False,
    ) -> None:
        opts = owner.options
        self.owner = owner
        self.reactor = reactor
        self.on_closed = on_closed
        self.listener = listener
        self.bound = listener is not None
        self.endpoint = endpoint
        self.persistent = persistent
        #: True while a connection has finished its handshake and is usable.
        self.ready = False
        #: True once the current connection finished its handshake.
        self.handshaken = False
        self.has_socket = False
        self._finalized = False
        self.metadata = Metadata()
        # CONFLATE keeps only the newest message received.
        self.inq: deque[Message] = deque(maxlen=1) if opts.conflate else deque()
        self.pending: deque[Message] = deque()
        self.rcvhwm = opts.rcvhwm if opts.rcvhwm > 0 and not opts.conflate else 1 << 62
        self.sndhwm = opts.sndhwm if opts.sndhwm > 0 else 1 << 62
        #: SNDHWM while ready; -1 otherwise, so that a write takes the slow path.
        self.hwm = -1 if persistent else self.sndhwm
        self.out: list[Buffer] = []
        self.out_bytes = 0
        self.out_msgs = 0
        self.out_large = False
        self.last_write = 0.0
        self.last_recv = _monotonic()
        self.flush_armed = False
        self.armed_at = 0.0
        #: Writes so far: with ``out_msgs`` it tells the reactor whether the
        #: caller is still adding to (or writing) its batch.
        self.writes = 0
        self.batch_at = 0.0
        self.eager = 0
        self._probe: select.poll | None = None
        self.watching_write = False
        self.attached = False
        self.alive = True
        self.close_reason = ""
        self._handshake_timer: Timer | None = None
        self._heartbeat_timer: Timer | None = None
        self._ttl_timer: Timer | None = None
        self.peer_ttl = 0.0
        self._linger_deadline: float | None = None
        self.security = opts.security()
        self._zap_call: ZapCall | None = None
        #: A handshake failure was reported already (a refused peer may linger a while).
        self._failure_reported = False
        self.conn = self._new_connection(as_server)  # replaced by each use_socket
        self.fd = -1
        self.peer_address = peer_address
        if sock is not None:
            self.use_socket(sock, as_server, peer_address)

    def _new_connection(self, as_server: bool) -> Connection:
        opts = self.owner.options
        conn = Connection(
            self.owner.socket_type,
            as_server=as_server,
            routing_id=opts.routing_id,
            max_msg_size=opts.maxmsgsize,
            frame_size_limit=PHYSICAL_MEMORY,
            security=self.security,
        )
        conn.messages = self.inq  # what was received before a reconnect stays readable
        conn.subscriptions_in_stream = self.owner.absorbs_input
        return conn

    def use_socket(self, sock: socket.socket, as_server: bool, peer_address: str) -> None:
        """Take a new connection (a persistent pipe after a reconnect: owner's lock held)."""
        self.sock = sock
        self.fd = sock.fileno()
        self.has_socket = True
        self.peer_address = peer_address
        self.conn = self._new_connection(as_server)  # a fresh handshake for each connection
        self._probe = None
        self.out.clear()
        self.out_bytes = self.out_msgs = 0
        self.out_large = False
        self.watching_write = False
        self.last_write = 0.0
        self.last_recv = _monotonic()
        self.peer_ttl = 0.0
        self.handshaken = False
        self._failure_reported = False

    # -- handshake (reactor thread) ------------------------------------------

    def start(self) -> None:
        """Send our greeting and wait for the peer's (reactor thread)."""
        with self.owner.lock:
            self.conn.initiate()
            self._queue_control()
            if not self.has_socket:  # the greeting found the connection reset: released
                return
        self.reactor.add_reader(self.fd, self._on_handshake_readable)
        ivl = self.owner.options.handshake_ivl
        if ivl > 0:
            self._handshake_timer = self.reactor.call_later(ivl / 1000, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        with self.owner.lock:
            if self.alive and self.has_socket and not self.ready:
                self._lost("handshake timed out", errno.ETIMEDOUT)

    def _on_handshake_readable(self) -> None:
        with self.owner.lock:
            if self.ready or not self._read_chunk():
                return
            self._queue_control()  # may find the connection gone
            done = self._handshake_events()
        if done:
            self._start_heartbeats()

    def _handshake_events(self) -> bool:
        """Act on what the handshake produced; True once it succeeded (owner's lock held)."""
        event = self.conn.next_event() if self.alive else None
        while event is not None:
            if isinstance(event, HandshakeComplete):
                self._on_ready(event)
                return True
            if isinstance(event, ZapRequest):
                self.reactor.call_soon(self._ask_zap, event, self.conn)
            event = self.conn.next_event()
        return False

    # -- ZAP (reactor thread) --------------------------------------------------

    def _ask_zap(self, request: ZapRequest, conn: Connection) -> None:
        """Send the handler the peer's credentials (outside the owner's lock: the
        handler socket's lock is taken to join it)."""
        if conn is not self.conn or not self.alive:
            return
        registry = self.owner.inproc
        opts = self.owner.options
        address = self.peer_address if self.sock.family != socket.AF_UNIX else _ipc_peer(self.sock)
        frames = request_frames(b"1", opts.zap_domain, address.encode(), opts.routing_id, request)
        call = ZapCall(self.reactor, lambda result: self._zap_answered(result, conn))
        self._zap_call = call
        if registry is None or not call.start(registry, frames):
            self._zap_answered(None, conn)

    def _zap_answered(self, result: ZapResult, conn: Connection) -> None:
        with self.owner.lock:
            self._zap_call = None
            if (
                conn is not self.conn
                or not self.alive
                or conn.state is not ConnectionState.HANDSHAKE
            ):
                return
            try:
                if isinstance(result, ConnectionError):
                    self._lost(f"ZAP: {result}", errno.EPIPE)
                    return
                if isinstance(result, RemoteProtocolError):
                    raise result
                conn.zap_reply(result)
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            self._queue_control()
            done = self._handshake_events()
        if done:
            self._start_heartbeats()

    def _on_ready(self, event: HandshakeComplete) -> None:
        """The handshake succeeded (reactor thread, owner's lock held)."""
        self.reactor.remove_reader(self.fd)
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        self.peer_type = event.peer_type
        self.routing_id = event.routing_id
        self.metadata = event.metadata
        self.handshaken = True
        owner = self.owner
        if self.persistent:
            self.ready = True
            self.hwm = self.sndhwm
            if self._linger_deadline is not None:  # closed while unconnected: deliver, end
                self._send_pending()
                if self.flush():
                    self._finalize("closed")
                return
            owner.event(Event.HANDSHAKE_SUCCEEDED, 0, self.endpoint)
            self._send_pending()
            owner.pipe_ready(self)
        else:
            self.ready = True
            if owner.closed or not owner.attach(self):
                self.alive = self.ready = False
                self._finalize("refused by the socket")
                return
            self.attached = True
            owner.event(Event.HANDSHAKE_SUCCEEDED, 0, self.endpoint)
        self._dispatch_events()
        if owner.absorbs_input and self.inq:  # subscriptions that came with the READY
            owner.absorb(self)
        owner.wake()

    def _send_pending(self) -> None:
        # A write that finds the connection gone queues its message again in (a fresh)
        # ``pending``: taking the queue first keeps the order and ends the loop.
        waiting, self.pending = self.pending, deque()
        while waiting and self.write(waiting[0]):
            waiting.popleft()
        if waiting:
            waiting.extend(self.pending)
            self.pending = waiting

    # -- heartbeats (reactor thread) -----------------------------------------

    def _start_heartbeats(self) -> None:
        ivl = self.owner.options.heartbeat_ivl
        if ivl > 0:
            self._heartbeat_timer = self.reactor.call_later(ivl / 1000, self._heartbeat)

    def _heartbeat(self) -> None:
        opts = self.owner.options
        if not self.ready:
            return
        timeout = opts.heartbeat_timeout if opts.heartbeat_timeout >= 0 else opts.heartbeat_ivl
        with self.owner.lock:
            if _monotonic() - self.last_recv > (opts.heartbeat_ivl + timeout) / 1000:
                self._lost("heartbeat timed out")
                return
            self.conn.send_ping(opts.heartbeat_ttl // 100)
            self._queue_control()
        self._heartbeat_timer = self.reactor.call_later(opts.heartbeat_ivl / 1000, self._heartbeat)

    # -- sending (owner's lock held) -----------------------------------------

    def write(self, msg: Message) -> bool:
        if self.out_msgs >= self.hwm:  # also true while not ready (hwm -1)
            if not self.ready:
                return self._write_pending(msg)
            if not self.watching_write:  # else the kernel is known to be full: no syscall
                self.flush()
            if self.out_msgs >= self.hwm or not self.alive:
                return False
        out = self.out
        was_empty = not out
        idle = False
        if was_empty and not self.flush_armed:
            now = self.batch_at = _monotonic()
            idle = now - self.last_write > IDLE_WRITE
            # After a pause the peer may have hung up without anyone reading: look
            # first, so the message goes to a live peer (or waits) instead of being lost.
            if idle and self.ready and not self._still_connected():
                return self._write_pending(msg)  # waits for the next connection, or refused
        size = len(msg) if type(msg) is bytes else LARGE_FRAME
        if size < 256:
            out += SHORT_HEADER[size], msg  # type: ignore[arg-type]  # msg is bytes here
            nbytes = self.out_bytes = self.out_bytes + size + 2
        elif size < LARGE_FRAME:
            header = _LONG_HEADERS.get(size)
            if header is None:
                header = _LONG_HEADERS[size] = frame_header(size)
            out += header, msg  # type: ignore[arg-type]  # msg is bytes here
            nbytes = self.out_bytes = self.out_bytes + size + 9
        else:
            nbytes = self.out_bytes = self.out_bytes + self._encode(out, msg)
        count = self.out_msgs = self.out_msgs + 1
        if nbytes >= BATCH_BYTES:
            self.flush()
        elif was_empty:
            if self.flush_armed:
                self.batch_at = _monotonic()
            elif idle:
                self.eager = EAGER_WRITES
                self.flush()
            elif self.eager:
                # The first messages of a burst that follows a pause go out at once:
                # they must not wait for the reactor (and the GIL) if the caller then computes.
                self.eager -= 1
                self.flush()
            else:
                self.flush_armed = True
                self.armed_at = self.batch_at
                self.reactor.request_flush(self)
        elif not count & 63 and _monotonic() - self.batch_at > TAIL_AGE:
            self.flush()
        return True

    def _write_pending(self, msg: Message) -> bool:
        """Queue a message until the next handshake (persistent pipes only)."""
        if (
            not self.persistent
            or not self.alive
            or self._linger_deadline is not None
            or len(self.pending) >= self.sndhwm
        ):
            return False
        self.pending.append(msg)
        return True

    def _still_connected(self) -> bool:
        """Read what the peer sent (a hang-up included) without waiting; False if it is gone.

        A zero-timeout poll answers "anything to read?" without the exception a
        failing non-blocking ``recv`` would raise (slow in Python).
        """
        probe = self._probe
        if probe is None:
            probe = self._probe = select.poll()
            probe.register(self.fd, select.POLLIN)
        if probe.poll(0) and self.wants_read():
            self.read_some()
        return self.ready

    def _encode(self, out: list[Buffer], msg: Message) -> int:
        frames: list[Buffer] = msg if isinstance(msg, list) else [msg]
        if any(len(f) >= LARGE_FRAME for f in frames):
            self.out_large = True
        return encode_frames(out, frames)

    def flush(self) -> bool:
        """Write as much queued output as the kernel takes; True when drained."""
        out = self.out
        sock = self.sock
        while out:
            if not self.alive:
                return False
            try:
                if len(out) > 1 and (self.out_large or len(out) <= FEW_CHUNKS):
                    # Gather: no copy in user space for large bodies. Small ones are
                    # joined instead: the kernel spends ~90 ns on each iovec, several
                    # times what copying a small chunk costs here.
                    n = sock.sendmsg(out[:IOV_MAX])
                else:
                    if len(out) > 1:
                        if self.out_bytes <= JOIN_ALL_BYTES:
                            out[:] = [b"".join(out)]
                        else:
                            self._join_one_batch(out)
                    n = sock.send(out[0])
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._lost(f"send failed: {exc.strerror or exc}")
                return False
            if n:
                self.last_write = _monotonic()
                self.writes += 1
                self._consume(n)
            if out and n == 0:
                self._watch_writable()
                return False
        return True

    @staticmethod
    def _join_one_batch(out: list[Buffer]) -> None:
        """Join the first ~64 KiB of a long backlog (joining all of it on each attempt
        would make a slow peer cost quadratic time)."""
        count = size = 0
        while count < len(out) and size < BATCH_BYTES:
            size += len(out[count])
            count += 1
        out[:count] = [b"".join(out[:count])]

    def _consume(self, n: int) -> None:
        out = self.out
        total = self.out_bytes
        if n >= total:
            out.clear()
            self.out_bytes = self.out_msgs = 0
            self.out_large = False
            return
        self.out_msgs -= self.out_msgs * n // total
        self.out_bytes = total - n
        i = 0
        while n:
            chunk = out[i]
            size = chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
            if n < size:
                out[i] = memoryview(out[i])[n:]
                break
            n -= size
            i += 1
        del out[:i]

    def _watch_writable(self) -> None:
        if not self.watching_write:
            self.watching_write = True
            self.reactor.call_soon(self.reactor.add_writer, self.fd, self._on_writable)

    def _on_writable(self) -> None:
        """Reactor thread: the kernel has room again."""
        with self.owner.lock:
            drained = self.flush()
            if drained or not self.alive:
                self.watching_write = False
                self.reactor.remove_writer(self.fd)
            self.owner.wake()
            if drained and self._linger_deadline is not None:
                self._finalize("closed")

    def flush_tail(self) -> bool:
        """Reactor thread: write what the caller left behind.

        Returns False, having done nothing, when the caller holds the lock:
        it is active and will write its batch itself.
        """
        lock = self.owner.lock
        if not lock.acquire(blocking=False):
            return False
        try:
            self.flush_armed = False
            if self.out and self.alive and not self.watching_write:
                self.flush()
        finally:
            lock.release()
        return True

    def _queue_control(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.out.append(data)
            self.out_bytes += len(data)
            self.flush()

    # -- receiving (owner's lock held) ---------------------------------------

    def read(self) -> Message | None:
        q = self.inq
        return q.popleft() if q else None

    def has_in(self) -> bool:
        return bool(self.inq)

    def has_room(self) -> bool:
        if self.out_msgs < self.hwm:
            return True
        if not self.ready:
            return self.persistent and self.alive and len(self.pending) < self.sndhwm
        if not self.watching_write:
            self.flush()
        return self.out_msgs < self.hwm

    def read_many(self, limit: int) -> list[Message]:
        return take(self.inq, limit)

    def discard_input(self) -> None:
        self.inq.clear()

    def wants_read(self) -> bool:
        """True when there is room to read more from the kernel."""
        return self.ready and len(self.inq) < self.rcvhwm

    def read_some(self) -> bool:
        """Read and parse one chunk if there is one; False if nothing was read."""
        if not self._read_chunk():
            return False
        conn = self.conn
        if conn.has_data_to_send:
            self._queue_control()
        self._dispatch_events()
        if self.owner.absorbs_input:
            self.owner.absorb(self)
        return True

    @property
    def peer_minor(self) -> int:
        """The peer's ZMTP minor version (0 for a 3.0 peer)."""
        greeting = self.conn.peer_greeting
        return greeting.minor if greeting is not None else 0

    def send_command(self, name: bytes, data: bytes = b"") -> None:
        """Queue a command after the messages already queued (owner's lock held)."""
        if self.ready:
            self.conn.send_command(name, data)
            self._queue_control()

    def _dispatch_events(self) -> None:
        conn = self.conn
        event = conn.next_event()
        while event is not None:
            if type(event) is Ping and event.ttl_ds:
                self._set_peer_ttl(event.ttl_ds / 10)
            self.owner.on_pipe_event(self, event)
            event = conn.next_event()

    def _set_peer_ttl(self, ttl: float) -> None:
        """The peer asked to be dropped if silent for ``ttl`` seconds (its PING TTL)."""
        first = not self.peer_ttl
        self.peer_ttl = ttl
        if first:
            self.reactor.call_soon(self._check_ttl)

    def _check_ttl(self) -> None:
        """Reactor thread: close a peer that went quiet for longer than its TTL."""
        if not self.ready:
            return
        silent = _monotonic() - self.last_recv
        if silent > self.peer_ttl:
            with self.owner.lock:
                self._lost("peer silent for longer than its heartbeat TTL")
            return
        self._ttl_timer = self.reactor.call_later(self.peer_ttl - silent + 0.01, self._check_ttl)

    def _read_chunk(self) -> bool:
        conn = self.conn
        try:
            if conn.want_buffer():
                view = conn.get_buffer()
                try:
                    n = self.sock.recv_into(view)
                finally:
                    view.release()
                if n:
                    conn.buffer_updated(n)
            else:
                data = self.sock.recv(conn.read_hint() or READ_CHUNK)
                n = len(data)
                if n:
                    conn.receive_data(data)
        except (BlockingIOError, InterruptedError):
            return False
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
            return False
        except OSError as exc:
            self._lost(f"receive failed: {exc.strerror or exc}")
            return False
        if not n:
            self._lost("peer closed the connection", errno.EPIPE)  # as libzmq reports it
            return False
        self.last_recv = _monotonic()
        return True

    def idle_read(self) -> None:
        """Reactor thread: read for a caller that is not reading."""
        owner = self.owner
        with owner.lock:
            if self.attached and self.wants_read() and self.read_some():
                owner.wake()

    # -- closing -------------------------------------------------------------

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        log.info("zeropipe: closing %s: %s", self.peer_address, exc)
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.send(data)
            except OSError:
                pass
        auth = isinstance(exc, AuthenticationFailed | PeerErrorReceived)
        status = exc.status_code if auth else 0  # type: ignore[attr-defined]
        if status and not self.ready:
            self.owner.event(Event.HANDSHAKE_FAILED_AUTH, status, self.endpoint)
            self._failure_reported = True
            if isinstance(exc, AuthenticationFailed) and status == 300:
                return  # a temporary failure: silence until the handshake times out (libzmq)
        if self.ready and self.conn.mechanism.encrypts and exc.code != ZMTP_UNSPECIFIED:
            # libzmq's CURVE decoder reports a bad MESSAGE like a failed handshake.
            self.owner.event(Event.HANDSHAKE_FAILED_PROTOCOL, exc.code, self.endpoint)
        if isinstance(exc, NoZapHandler):
            # As libzmq: reported, then silence until HANDSHAKE_IVL (no reconnect storm).
            self.owner.event(Event.HANDSHAKE_FAILED_NO_DETAIL, errno.EFAULT, self.endpoint)
            self._failure_reported = True
        elif self.conn.peer_greeting is None and exc.code == ZMTP_UNSPECIFIED:
            self._lost(f"protocol error: {exc}", errno.EPROTO)  # not ZMTP at all
        else:
            self._lost(f"protocol error: {exc}", -exc.code)

    def _lost(self, reason: str, failure: int = errno.ECONNRESET) -> None:
        """The connection is unusable; detach and let the reactor clean up.

        ``failure`` is what a monitor hears if the handshake had not finished:
        an errno (HANDSHAKE_FAILED_NO_DETAIL), or minus a protocol error code.
        """
        if not self.alive or not self.has_socket:
            return
        owner = self.owner
        if self._zap_call is not None:
            self._zap_call.cancel()
            self._zap_call = None
        if not self.ready and not self._failure_reported:
            if failure < 0:
                owner.event(Event.HANDSHAKE_FAILED_PROTOCOL, -failure, self.endpoint)
            else:
                owner.event(Event.HANDSHAKE_FAILED_NO_DETAIL, failure, self.endpoint)
        owner.event(Event.DISCONNECTED, self.fd, self.endpoint)
        if self.persistent and self._linger_deadline is None and not owner.closed:
            self._hiccup(reason)
            return
        self.alive = False
        self.ready = False
        self.hwm = -1
        self.close_reason = reason
        self.out.clear()
        self.out_bytes = self.out_msgs = 0
        if self.attached:
            self.owner.detach(self)
            self.owner.wake()
        if self.reactor.in_thread:
            self._finalize(reason)
        else:
            self.reactor.call_soon(self._finalize, reason)

    def _hiccup(self, reason: str) -> None:
        """A persistent pipe lost its connection: wait for the next one (owner's lock held).

        What was in the batch being written is lost with the connection (as in
        libzmq); what is sent from now on waits in ``pending``.
        """
        self.ready = False
        self.hwm = -1
        self.close_reason = reason
        self.out.clear()
        self.out_bytes = self.out_msgs = 0
        self.owner.wake()
        if self.reactor.in_thread:
            self._release(reason)
        else:
            self.reactor.call_soon(self._release, reason)

    def close(self, linger_ms: int = 0) -> None:
        """Close from our side, delivering queued output for up to ``linger_ms``."""
        if not self.alive or self._linger_deadline is not None:
            return
        if self.persistent and not self.ready:
            if self.pending and linger_ms != 0:
                # Keep connecting (the connecter sees the deadline) to deliver them.
                deadline = float("inf") if linger_ms < 0 else _monotonic() + linger_ms / 1000
                self._linger_deadline = deadline
                self.reactor.linger_started(self)
                if deadline != float("inf"):
                    self.reactor.call_soon(
                        self.reactor.call_later, linger_ms / 1000, self._linger_expired
                    )
                return
            self.alive = False
            self.reactor.call_soon(self._finalize, "closed")
            return
        if self.out and linger_ms != 0:
            deadline = float("inf") if linger_ms < 0 else _monotonic() + linger_ms / 1000
            self._linger_deadline = deadline
            self.reactor.linger_started(self)
            self.reactor.call_soon(self._start_linger)
            return
        self.alive = False
        self.reactor.call_soon(self._finalize, "closed")

    def _start_linger(self) -> None:
        deadline = self._linger_deadline
        assert deadline is not None
        with self.owner.lock:
            if self.flush():
                self._finalize("closed")
                return
        if deadline != float("inf"):
            self.reactor.call_later(max(0.0, deadline - _monotonic()), self._linger_expired)

    def _linger_expired(self) -> None:
        if not self._finalized:
            self._finalize("linger expired")

    def _finalize(self, reason: str) -> None:
        """Reactor thread: the pipe is done; release everything, tell the connecter."""
        if self._finalized:
            return
        self._finalized = True
        self.alive = False
        self.ready = False
        self.pending.clear()
        self.reactor.linger_ended(self)
        self._release(reason)

    def _release(self, reason: str) -> None:
        """Reactor thread: close the current connection, if any, and report it."""
        if self.has_socket:
            self.has_socket = False
            self.reactor.remove_reader(self.fd)
            self.reactor.remove_writer(self.fd)
            self.watching_write = False
            for timer in (self._handshake_timer, self._heartbeat_timer, self._ttl_timer):
                if timer is not None:
                    timer.cancel()
            _drain_and_close(self.sock)
        elif not self._finalized:
            return
        if self.on_closed is not None:
            self.on_closed(self, reason)

    def __repr__(self) -> str:
        return f"<StreamPipe {self.peer_address} alive={self.alive}>"


class _Unsealed(list):  # type: ignore[type-arg]
    """Messages written but not sealed yet, in ``out`` where their bytes will go.

    Their nonces were taken when they were written (``first`` on), so frames
    the connection seals meanwhile (PONG, SUBSCRIBE) still follow them in order.
    """

    __slots__ = ("first",)
    first: int


class SecureStreamPipe(StreamPipe):
    """A stream pipe whose frames travel in MESSAGE boxes (CURVE).

    ``write`` only takes the frames' nonces and leaves the messages in
    ``out``; :meth:`flush` seals each run of them in one pass, many frames
    into one buffer, just before the bytes go to the kernel.
    """

    def write(self, msg: Message) -> bool:
        # A list never takes the plain fast paths of StreamPipe.write: it goes to _encode.
        return super().write(msg if isinstance(msg, list) else [msg])

    def _encode(self, out: list[Buffer], msg: Message) -> int:
        frames: list[Buffer] = msg if isinstance(msg, list) else [msg]
        mechanism = self.conn.mechanism
        tail: Any = out[-1] if out else None
        if type(tail) is not _Unsealed:
            tail = _Unsealed()
            tail.first = mechanism.reserve(len(frames))
            out.append(tail)
            self._unsealed += 1
        else:
            mechanism.reserve(len(frames))
        tail.append(frames)
        return mechanism.sealed_size(frames)

    #: Unsealed batches in ``out`` (at most: a lost connection's are cleared with it).
    _unsealed = 0

    def flush(self) -> bool:
        if self._unsealed:
            out = self.out
            i = len(out)
            while self._unsealed and i:
                i -= 1
                batch: Any = out[i]
                if type(batch) is _Unsealed:
                    self._unsealed -= 1
                    chunks = self.conn.mechanism.seal_batch(batch.first, batch)
                    out[i : i + 1] = chunks
                    if len(chunks) > 1:
                        self.out_large = True
            self._unsealed = 0
        return super().flush()


def stream_pipe_class(options: Options) -> type[StreamPipe]:
    """The pipe class for a socket's new connections: sealed frames under CURVE."""
    return SecureStreamPipe if options.mechanism == b"CURVE" else StreamPipe


def _ipc_peer(sock: socket.socket) -> str:
    """An ipc peer as libzmq names it to ZAP: ``localhost:uid:gid:pid`` (SO_PEERCRED)."""
    try:
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return ""
    pid, uid, gid = struct.unpack("3i", cred)
    return f"localhost:{uid}:{gid}:{pid}"


def _drain_and_close(sock: socket.socket) -> None:
    # Unread input makes close() send RST, which can discard data the peer has
    # not read yet; draining first gives our last messages a FIN instead.
    try:
        for _ in range(64):
            if not sock.recv(READ_CHUNK):
                break
    except OSError:
        pass
    sock.close()


def peer_description(sock: socket.socket) -> str:
    """A printable remote address for logs and metadata."""
    try:
        addr: Any = sock.getpeername()
    except OSError:
        return "?"
    if isinstance(addr, tuple):
        return str(addr[0])  # libzmq's Peer-Address is the IP alone
    return str(addr) or "ipc"
