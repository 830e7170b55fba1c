"""Loading the implementation under test and small socket helpers shared by both worker roles.

Both implementations are driven through the same pyzmq-compatible surface, so modules are
handled as untyped (``Any``) objects.  ``zeropipe`` is imported only when it is requested.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from types import ModuleType
from typing import Any

IMPLS = ("zeropipe", "pyzmq")
MODULES = {"zeropipe": "zeropipe", "pyzmq": "zmq"}
# Only zeropipe has send_many()/recv_many(); for pyzmq the batch case is a plain send/recv loop.
HAS_BATCH_API = {"zeropipe": True, "pyzmq": False}
# Self-test hook: point the "zeropipe" slot at another module (e.g. a shim over pyzmq).
MODULE_OVERRIDE_ENV = "ZEROPIPE_BENCH_MODULE"


def load_impl(impl: str) -> ModuleType:
    """Import the module implementing ``impl`` ("zeropipe" or "pyzmq")."""
    if impl not in MODULES:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLS}")
    name = MODULES[impl]
    if impl == "zeropipe":
        name = os.environ.get(MODULE_OVERRIDE_ENV, name)
    return importlib.import_module(name)


def impl_version(module: ModuleType) -> str:
    """Best-effort version string of an implementation module."""
    version = getattr(module, "__version__", None) or getattr(module, "VERSION", None)
    text = str(version) if version is not None else "unknown"
    zmq_version = getattr(module, "zmq_version", None)
    if callable(zmq_version) and module.__name__ == "zmq":
        text += f" (libzmq {zmq_version()})"
    return text


def bind_endpoint(transport: str) -> tuple[str, str | None]:
    """Endpoint to bind for ``transport`` and the temp dir to remove afterwards (ipc only)."""
    if transport == "tcp":
        return "tcp://127.0.0.1:*", None
    if transport == "ipc":
        tmpdir = tempfile.mkdtemp(prefix="zpbench-")
        return f"ipc://{tmpdir}/bench.sock", tmpdir
    raise ValueError(f"unsupported transport {transport!r}")


def last_endpoint(sock: Any) -> str:
    """``sock.last_endpoint`` as str (pyzmq returns bytes)."""
    endpoint = sock.last_endpoint
    if isinstance(endpoint, bytes):
        return endpoint.decode()
    return str(endpoint)


def close_quietly(sock: Any, ctx: Any) -> None:
    """Close ``sock`` without lingering and terminate ``ctx``."""
    try:
        sock.linger = 0
        sock.close()
    finally:
        ctx.term()


def secure_server(zmq: ModuleType, sock: Any, mechanism: str) -> str:
    """Make ``sock`` (before it binds) the server of ``mechanism``; returns its public key.

    CURVE: a keypair made now with the implementation's own ``curve_keypair()``; no ZAP handler
    is installed, so every client with the right server key is accepted.  The public key is
    returned as Z85 text for the senders ("" for NULL).
    """
    if mechanism == "null":
        return ""
    if mechanism != "curve":
        raise ValueError(f"unsupported mechanism {mechanism!r}")
    public, secret = zmq.curve_keypair()
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    return public.decode() if isinstance(public, bytes) else str(public)


def client_keypair(zmq: ModuleType, mechanism: str) -> tuple[Any, Any] | None:
    """The client's CURVE keypair (made with the implementation's ``curve_keypair()``)."""
    return zmq.curve_keypair() if mechanism == "curve" else None


def secure_client(
    sock: Any, mechanism: str, server_key: str, keypair: tuple[Any, Any] | None
) -> None:
    """Make ``sock`` (before it connects) a client of ``mechanism`` using ``keypair``."""
    if mechanism == "null":
        return
    if mechanism != "curve" or not server_key or keypair is None:
        raise ValueError(f"mechanism {mechanism!r} needs a server key and a keypair")
    sock.curve_serverkey = server_key.encode()
    sock.curve_publickey, sock.curve_secretkey = keypair
