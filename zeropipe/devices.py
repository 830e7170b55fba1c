"""Devices: a proxy with its own sockets, run in the calling thread or in a background thread.

pyzmq's ``zmq.devices`` API. Give socket types, not sockets; queue the
options, binds and connects with the ``*_in``/``*_out`` (``*_mon``, ``*_ctrl``)
methods; ``start()`` creates the sockets where the proxy runs. A device stops
when its context is terminated (``Context.instance()`` unless
``context_factory`` says otherwise), or, for the steerable ones, on TERMINATE.
The process-based variants of pyzmq (ProcessDevice, ProcessProxy...) and the
monitored queue are not provided.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

from zeropipe.errors import ETERM, ZMQBindError, ZMQError
from zeropipe.protocol import SocketType
from zeropipe.sdk.context import Context
from zeropipe.sdk.proxy import QUEUE, DeviceType, device, proxy, proxy_steerable
from zeropipe.sdk.socket import Socket


class _SocketPlan:
    """What to do to one socket once it exists: options first, then binds, then connects."""

    def __init__(self) -> None:
        self.options: list[tuple[int, Any]] = []
        self.binds: list[str] = []
        self.connects: list[str] = []

    def apply(self, sock: Socket) -> None:
        for option, value in self.options:
            sock.setsockopt(option, value)
        for addr in self.binds:
            sock.bind(addr)
        for addr in self.connects:
            sock.connect(addr)


class Device:
    """A proxy between two sockets it creates, run by :meth:`start` in the calling thread.

    ``Device(device_type, in_type, out_type)``: the in (frontend) and out
    (backend) socket types; an ``out_type`` below 0 uses the in socket for both.
    """

    context_factory: Callable[[], Context] = Context.instance
    """Where the sockets are created (a callable returning a Context)."""

    daemon: bool
    done: bool

    def __init__(
        self,
        device_type: int = QUEUE,
        in_type: int | None = None,
        out_type: int | None = None,
    ) -> None:
        if in_type is None:
            raise TypeError("in_type must be specified")
        if out_type is None:
            raise TypeError("out_type must be specified")
        self.device_type = device_type
        self.in_type = in_type
        self.out_type = out_type
        self._in = _SocketPlan()
        self._out = _SocketPlan()
        self._reserved: list[str] = []
        self._sockets: list[Socket] = []
        self._context: Context | None = None
        self.daemon = True
        self.done = False
        self._finished = threading.Event()

    # -- configuration, applied in the device's thread -----------------------

    def bind_in(self, addr: str) -> None:
        """Bind the in socket to ``addr`` when it is created."""
        self._in.binds.append(addr)

    def connect_in(self, addr: str) -> None:
        """Connect the in socket to ``addr`` when it is created."""
        self._in.connects.append(addr)

    def setsockopt_in(self, opt: int, value: Any) -> None:
        """Set an option of the in socket when it is created (before any bind or connect)."""
        self._in.options.append((opt, value))

    def bind_in_to_random_port(self, addr: str, *args: int, **kwargs: int) -> int:
        """Pick a free port on ``addr`` now, bind the in socket to it later; return the port."""
        port = self._reserve_random_port(addr, *args, **kwargs)
        self.bind_in(f"{addr}:{port}")
        return port

    def bind_out(self, addr: str) -> None:
        """Bind the out socket to ``addr`` when it is created."""
        self._out.binds.append(addr)

    def connect_out(self, addr: str) -> None:
        """Connect the out socket to ``addr`` when it is created."""
        self._out.connects.append(addr)

    def setsockopt_out(self, opt: int, value: Any) -> None:
        """Set an option of the out socket when it is created (before any bind or connect)."""
        self._out.options.append((opt, value))

    def bind_out_to_random_port(self, addr: str, *args: int, **kwargs: int) -> int:
        """Pick a free port on ``addr`` now, bind the out socket to it later; return the port."""
        port = self._reserve_random_port(addr, *args, **kwargs)
        self.bind_out(f"{addr}:{port}")
        return port

    def _reserve_random_port(self, addr: str, *args: int, **kwargs: int) -> int:
        """A port that was free a moment ago and that no other endpoint of this device uses."""
        ctx = Context()
        try:
            for _ in range(5):
                probe: Socket = ctx.socket(SocketType.PUSH)
                try:
                    port = probe.bind_to_random_port(addr, *args, **kwargs)
                finally:
                    probe.close(0)
                endpoint = f"{addr}:{port}"
                if endpoint not in self._reserved:
                    self._reserved.append(endpoint)
                    return port
        finally:
            ctx.term()
        raise ZMQBindError("Could not reserve random port.")

    # -- running --------------------------------------------------------------

    def _create(self, ctx: Context, socket_type: int, plan: _SocketPlan) -> Socket:
        sock: Socket = ctx.socket(socket_type)
        self._sockets.append(sock)
        plan.apply(sock)
        return sock

    def _setup_sockets(self) -> tuple[Socket, Socket]:
        ctx = self.context_factory()
        self._context = ctx
        ins = self._create(ctx, self.in_type, self._in)
        if self.out_type < 0:
            self._out.apply(ins)
            return ins, ins
        return ins, self._create(ctx, self.out_type, self._out)

    def run_device(self) -> None:
        """Create the sockets and run the proxy (in the current thread)."""
        ins, outs = self._setup_sockets()
        device(self.device_type, ins, outs)

    def run(self) -> None:
        """:meth:`run_device`; a terminated context or a closed socket ends it quietly."""
        try:
            self.run_device()
        except ZMQError as exc:
            if exc.errno not in (ETERM, errno.ENOTSOCK):
                raise
        finally:
            for sock in self._sockets:
                sock.close()
            self.done = True
            self._finished.set()

    def start(self) -> None:
        """Run the device in the calling thread (until its context is terminated)."""
        self.run()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the device has stopped (or ``timeout`` seconds passed)."""
        self._finished.wait(timeout)


class BackgroundDevice(Device):
    """A device whose :meth:`start` returns at once, the proxy running elsewhere."""

    launcher: threading.Thread | None = None

    def start(self) -> None:
        self.launcher = threading.Thread(target=self.run, name="zeropipe-device")
        self.launcher.daemon = self.daemon
        self.launcher.start()

    def join(self, timeout: float | None = None) -> None:
        if self.launcher is not None:
            self.launcher.join(timeout)


class ThreadDevice(BackgroundDevice):
    """A device run in a background thread."""


class ProxyBase(Device):
    """Adds a monitor (capture) socket, created with the others: ``*_mon`` methods."""

    def __init__(self, in_type: int, out_type: int, mon_type: int = SocketType.PUB) -> None:
        super().__init__(QUEUE, in_type, out_type)
        self.mon_type = mon_type
        self._mon = _SocketPlan()

    def bind_mon(self, addr: str) -> None:
        """Bind the monitor socket to ``addr`` when it is created."""
        self._mon.binds.append(addr)

    def connect_mon(self, addr: str) -> None:
        """Connect the monitor socket to ``addr`` when it is created."""
        self._mon.connects.append(addr)

    def setsockopt_mon(self, opt: int, value: Any) -> None:
        """Set an option of the monitor socket when it is created."""
        self._mon.options.append((opt, value))

    def bind_mon_to_random_port(self, addr: str, *args: int, **kwargs: int) -> int:
        """Pick a free port now, bind the monitor socket to it later; return the port."""
        port = self._reserve_random_port(addr, *args, **kwargs)
        self.bind_mon(f"{addr}:{port}")
        return port

    def _setup_mon(self) -> tuple[Socket, Socket, Socket]:
        ins, outs = self._setup_sockets()
        assert self._context is not None
        mons = self._create(self._context, self.mon_type, self._mon)
        return ins, outs, mons

    def run_device(self) -> None:
        ins, outs, mons = self._setup_mon()
        proxy(ins, outs, mons)


class Proxy(ProxyBase):
    """A proxy with a monitor socket that gets a copy of every message (in this thread)."""


class ThreadProxy(ProxyBase, ThreadDevice):
    """:class:`Proxy` in a background thread."""


class ProxySteerableBase(ProxyBase):
    """Adds a control socket (``*_ctrl`` methods) that steers the proxy."""

    def __init__(
        self,
        in_type: int,
        out_type: int,
        mon_type: int = SocketType.PUB,
        ctrl_type: int | None = None,
    ) -> None:
        super().__init__(in_type, out_type, mon_type)
        if ctrl_type is None:
            raise TypeError("ctrl_type must be specified")
        self.ctrl_type = ctrl_type
        self._ctrl = _SocketPlan()

    def bind_ctrl(self, addr: str) -> None:
        """Bind the control socket to ``addr`` when it is created."""
        self._ctrl.binds.append(addr)

    def connect_ctrl(self, addr: str) -> None:
        """Connect the control socket to ``addr`` when it is created."""
        self._ctrl.connects.append(addr)

    def setsockopt_ctrl(self, opt: int, value: Any) -> None:
        """Set an option of the control socket when it is created."""
        self._ctrl.options.append((opt, value))

    def bind_ctrl_to_random_port(self, addr: str, *args: int, **kwargs: int) -> int:
        """Pick a free port now, bind the control socket to it later; return the port."""
        port = self._reserve_random_port(addr, *args, **kwargs)
        self.bind_ctrl(f"{addr}:{port}")
        return port

    def run_device(self) -> None:
        ins, outs, mons = self._setup_mon()
        assert self._context is not None
        ctrls = self._create(self._context, self.ctrl_type, self._ctrl)
        proxy_steerable(ins, outs, mons, ctrls)


class ProxySteerable(ProxySteerableBase):
    """A proxy steered by PAUSE/RESUME/TERMINATE/STATISTICS on its control socket."""


class ThreadProxySteerable(ProxySteerableBase, ThreadDevice):
    """:class:`ProxySteerable` in a background thread."""


__all__ = [
    "BackgroundDevice",
    "Device",
    "DeviceType",
    "Proxy",
    "ProxySteerable",
    "ThreadDevice",
    "ThreadProxy",
    "ThreadProxySteerable",
    "proxy",
    "proxy_steerable",
]
