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
