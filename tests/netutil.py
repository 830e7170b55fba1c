"""Helpers shared by the test suites: the implementation under test, endpoints, teardown.

Several suites run against zeropipe by default and against pyzmq (libzmq) when an environment
variable says so (``ZP_IMPL``, or ``SPEC_IMPL`` for the spec-conformance tests), which
validates the tests themselves: :func:`implementation` reads that switch.

Endpoints are parallel-safe: tcp binds to ``127.0.0.1:*``, ipc files live in a short private
directory under /tmp (AF_UNIX paths are limited to ~107 bytes, too short for pytest's
tmp_path) and inproc names carry a uuid.
"""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from deadlines import term_with_deadline

IMPLEMENTATIONS = {"zeropipe": "zeropipe", "pyzmq": "zmq"}
"""The values of the implementation switches, and the module each one selects."""


def implementation(variable: str) -> tuple[str, Any]:
    """The implementation chosen by the environment variable ``variable``: its name
    (``zeropipe``, the default, or ``pyzmq``) and its module."""
    name = os.environ.get(variable, "zeropipe")
    if name not in IMPLEMENTATIONS:
        raise pytest.UsageError(
            f"{variable} must be one of {sorted(IMPLEMENTATIONS)}, not {name!r}"
        )
    return name, importlib.import_module(IMPLEMENTATIONS[name])


def endpoint_str(value: str | bytes) -> str:
    """``last_endpoint`` as str (bytes in pyzmq, str or bytes in zeropipe)."""
    return value.decode() if isinstance(value, bytes) else value


def endpoint_of(sock: Any) -> str:
    """The endpoint ``sock`` bound or connected last, as str."""
    return endpoint_str(sock.last_endpoint)


def free_tcp_port() -> int:
    """A loopback port that nothing listens on right now (for connect-before-bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ScratchDir:
    """A short private directory under /tmp for ipc socket files, created on first use."""

    def __init__(self, prefix: str = "zp") -> None:
        self._prefix = prefix
        self._path: str | None = None
        self._counter = itertools.count()

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix=self._prefix, dir="/tmp")
        return self._path

    def ipc_endpoint(self) -> str:
        """An ipc endpoint in this directory that nothing used yet."""
        return f"ipc://{self.path}/{next(self._counter)}.sock"

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


class Endpoints:
    """Endpoints of one transport: "tcp", "ipc" (files in ``scratch``) or "inproc" (named
    ``inproc://<inproc_prefix>-<uuid>``)."""

    def __init__(self, transport: str, scratch: ScratchDir, inproc_prefix: str = "zp") -> None:
        self.transport = transport
        self._scratch = scratch
        self._inproc_prefix = inproc_prefix

    def fresh(self) -> str:
        """A concrete endpoint nobody is bound to yet (usable for connect-before-bind)."""
        if self.transport == "tcp":
            return f"tcp://127.0.0.1:{free_tcp_port()}"
        if self.transport == "ipc":
            return self._scratch.ipc_endpoint()
        if self.transport == "inproc":
            return f"inproc://{self._inproc_prefix}-{uuid.uuid4().hex}"
        raise ValueError(f"unknown transport {self.transport!r}")

    def to_bind(self) -> str:
        """What to bind to: an ephemeral port for tcp, a fresh endpoint otherwise."""
        return "tcp://127.0.0.1:*" if self.transport == "tcp" else self.fresh()

    def bind(self, sock: Any, endpoint: str | None = None) -> str:
        """Bind ``sock`` (to :meth:`to_bind` by default) and return the concrete endpoint;
        tcp reads the port back from ``last_endpoint``."""
        if endpoint is None:
            endpoint = self.to_bind()
        sock.bind(endpoint)
        if self.transport == "tcp":
            return endpoint_of(sock)
        return endpoint


def bind_with_retry(sock: Any, endpoint: str, module: Any, timeout_s: float = 5.0) -> None:
    """Bind an endpoint that a just-closed socket may still be releasing.

    ``module`` is the implementation of ``sock`` (whose ZMQError a failed bind raises).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock.bind(endpoint)
            return
        except module.ZMQError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def close_all(sockets: Iterable[Any], contexts: Iterable[Any], scratch: ScratchDir) -> None:
    """Teardown: close every socket (linger 0), terminate every context under a deadline
    (unless a test already did), remove ``scratch``; then raise the first error, if any."""
    errors: list[BaseException] = []
    for sock in sockets:
        try:
            if not sock.closed:
                sock.close(linger=0)
        except Exception as exc:
            errors.append(exc)
    for ctx in contexts:
        try:
            if not ctx.closed:
                term_with_deadline(ctx)
        except BaseException as exc:
            errors.append(exc)
    scratch.remove()
    if errors:
        raise errors[0]


class TestEnv:
    """The contexts and sockets of one test and a scratch directory for ipc; the fixture of a
    suite closes them all with :meth:`close` (sockets first, contexts under a deadline)."""

    __test__ = False  # a helper, not a test class

    def __init__(self, module: Any, *, own_context: bool = True) -> None:
        self.zmq = module
        self.contexts: list[Any] = []
        self.sockets: list[Any] = []
        self._scratch = ScratchDir()
        self.ctx: Any = self.context() if own_context else None

    @property
    def scratch(self) -> str:
        return self._scratch.path

    def context(self) -> Any:
        ctx = self.zmq.Context()
        self.contexts.append(ctx)
        return ctx

    def new_socket(
        self, ctx: Any, kind: int, *, timeout: int, linger: int | None = 0, **options: Any
    ) -> Any:
        """A socket with RCVTIMEO/SNDTIMEO ``timeout`` (so a bug raises instead of hanging),
        LINGER ``linger`` unless None, then ``options`` by name; closed at teardown."""
        zmq = self.zmq
        sock = ctx.socket(kind)
        self.sockets.append(sock)  # registered first: closed even if an option below fails
        if linger is not None:
            sock.setsockopt(zmq.LINGER, linger)
        sock.setsockopt(zmq.RCVTIMEO, timeout)
        sock.setsockopt(zmq.SNDTIMEO, timeout)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name.upper()), value)
        return sock

    def bind(self, sock: Any, transport: str) -> str:
        """Bind to a fresh endpoint (an ephemeral port for tcp); return the concrete one."""
        return Endpoints(transport, self._scratch).bind(sock)

    def endpoint(self, transport: str) -> str:
        """A concrete endpoint nobody is bound to (usable for connect-before-bind)."""
        return Endpoints(transport, self._scratch).fresh()

    def bind_endpoint(self, transport: str) -> str:
        """What to bind to: an ephemeral port for tcp, a fresh endpoint otherwise."""
        return Endpoints(transport, self._scratch).to_bind()

    def close(self) -> None:
        close_all(self.sockets, self.contexts, self._scratch)
