"""``Context``: owns the background reactor thread, the inproc names and the sockets."""

from __future__ import annotations

import errno
import logging
import threading
import time
import weakref
from typing import Any, TypeVar

from zeropipe.errors import ZMQError
from zeropipe.sdk.constants import SOCKET_OPTIONS, ContextOption, SocketOption
from zeropipe.sdk.socket import Socket
from zeropipe.transports.inproc import InprocRegistry
from zeropipe.transports.reactor import Reactor

S = TypeVar("S", bound=Socket)
log = logging.getLogger("zeropipe")
#: After this long, a term() still waiting for lingering messages says so.
LINGER_WARNING_S = 5.0
_OPTION_NAMES = {name.lower(): int(v) for name, v in SocketOption.__members__.items()}


class Context:
    """A ZeroMQ context: create sockets with :meth:`socket`; end with :meth:`term`.

    One background thread per Context keeps connections alive (reconnects,
    handshakes, late flushes, LINGER); the hot path runs in the caller's thread.
    """

    _instance: Context | None = None
    _instance_lock = threading.Lock()
    _socket_class: type[Socket] = Socket

    def __init__(self, io_threads: int = 1, **kwargs: Any) -> None:
        self._reactor = Reactor()
        self._inproc = InprocRegistry()
        self._sockets: weakref.WeakSet[Socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._terminated = False
        self._term_done = False
        self._defaults: dict[str, Any] = {}
        self._options: dict[int, int] = {
            ContextOption.IO_THREADS: io_threads,
            ContextOption.MAX_SOCKETS: 1023,
            ContextOption.BLOCKY: 1,
        }

    @classmethod
    def instance(cls, io_threads: int = 1) -> Context:
        """A process-wide shared Context (created on first use, renewed after term)."""
        with cls._instance_lock:
            inst = cls._instance
            if inst is None or inst.closed or not isinstance(inst, cls):
                inst = cls(io_threads)
                cls._instance = inst
            return inst

    @property
    def closed(self) -> bool:
        return self._terminated

    def socket(self, socket_type: int, socket_class: type[S] | None = None, **kwargs: Any) -> S:
        """Create a socket of the given type (``zeropipe.PUSH``...)."""
        if self._terminated:
            raise ZMQError(errno.EFAULT, "Context has been terminated")
        cls: Any = socket_class or self._socket_class
        sock: S = cls(self, socket_type, **kwargs)
        return sock

    def _register(self, sock: Socket) -> None:
        with self._lock:
            if len(self._sockets) >= self._options[ContextOption.MAX_SOCKETS]:
                raise ZMQError(errno.EMFILE, "Too many open sockets")
            self._sockets.add(sock)

    def _unregister(self, sock: Socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _socket_defaults(self) -> dict[str, Any]:
        return dict(self._defaults)

    # -- options -------------------------------------------------------------

    def setsockopt(self, option: int, value: Any) -> None:
        """Set a default option for sockets created from now on."""
        if option == SocketOption.HWM:
            self.setsockopt(SocketOption.SNDHWM, value)
            self.setsockopt(SocketOption.RCVHWM, value)
            return
        spec = SOCKET_OPTIONS.get(option)
        if spec is None:
            raise ZMQError(errno.EINVAL, f"option {option} cannot be a context default")
        self._defaults[spec[0]] = value

    def getsockopt(self, option: int) -> Any:
        spec = SOCKET_OPTIONS.get(option)
        if spec is None or spec[0] not in self._defaults:
            raise ZMQError(errno.EINVAL, f"no default set for option {option}")
        return self._defaults[spec[0]]

    def set(self, option: int, value: int) -> None:
        """Set a context option (IO_THREADS, MAX_SOCKETS, ...)."""
        if option not in self._options:
            raise ZMQError(errno.EINVAL, f"unknown context option {option}")
        self._options[option] = int(value)

    def get(self, option: int) -> int:
        if option == ContextOption.SOCKET_LIMIT:
            return 65535
        if option not in self._options:
            raise ZMQError(errno.EINVAL, f"unknown context option {option}")
        return self._options[option]

    def __getattr__(self, name: str) -> Any:
        option = _OPTION_NAMES.get(name)
        if option is None:
            ctx_opt = ContextOption.__members__.get(name.upper())
            if ctx_opt is not None:
                return self.get(ctx_opt)
            raise AttributeError(f"'Context' object has no attribute {name!r}")
        return self.getsockopt(option)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        option = _OPTION_NAMES.get(name)
        if option is not None:
            self.setsockopt(option, value)
            return
        ctx_opt = ContextOption.__members__.get(name.upper())
        if ctx_opt is not None:
            self.set(ctx_opt, value)
            return
        object.__setattr__(self, name, value)

    # -- ending --------------------------------------------------------------

    def term(self) -> None:
        """End the context: blocking calls on its sockets raise ContextTerminated.

        Waits until every socket is closed and lingering messages are sent
        (or their LINGER expired), as libzmq's ``zmq_ctx_term`` does.
        """
        self._terminated = True
        if self._term_done:
            return
        for sock in list(self._sockets):
            sock._core.wake()
        while True:
            with self._lock:
                if not self._sockets:
                    break
            time.sleep(0.005)
        reactor = self._reactor
        reactor.barrier()
        warn_at = time.monotonic() + LINGER_WARNING_S
        while reactor.lingering:
            if warn_at and time.monotonic() > warn_at:
                warn_at = 0.0
                log.warning(
                    "zeropipe: Context.term() is waiting for messages queued to %s "
                    "(LINGER -1 waits for their peer; set a finite LINGER to give up)",
                    ", ".join(sorted(reactor.lingering_endpoints())) or "a peer",
                )
            time.sleep(0.001)
        reactor.barrier()
        reactor.stop()
        self._term_done = True

    def destroy(self, linger: int | None = None) -> None:
        """Close every socket (with ``linger`` if given), then terminate."""
        self._terminated = True
        for sock in list(self._sockets):
            sock.close(linger=linger)
        self.term()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.term()

    def __repr__(self) -> str:
        state = " terminated" if self._terminated else ""
        return f"<zeropipe.Context(){state} at {hex(id(self))}>"
