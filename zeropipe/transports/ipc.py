"""ipc:// sockets: Unix domain sockets, wire-compatible with libzmq.

``ipc://@name`` uses Linux's abstract namespace; ``ipc://*`` binds a fresh
path in a temporary directory. A stale socket file left at the path is
replaced, as libzmq does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from zeropipe.transports.endpoint import Endpoint, ipc_sockaddr, ipc_wildcard_path
from zeropipe.transports.options import Options


def open_listener(ep: Endpoint, opts: Options) -> tuple[socket.socket, str]:
    """Bind and listen; return the socket and the endpoint actually bound."""
    path = ipc_wildcard_path() if ep.address == "*" else ep.address
    addr = ipc_sockaddr(path)
    if isinstance(addr, str):
        _remove_stale(addr)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(addr)
        sock.listen(opts.backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock, f"ipc://{path}"


def _remove_stale(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def bound_inode(endpoint: str) -> int | None:
    """The inode of the socket file we just bound (None for abstract names)."""
    path = endpoint[len("ipc://") :]
    if not path or path.startswith("@"):
        return None
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def remove_path(endpoint: str, inode: int | None, wildcard: bool) -> None:
    """Remove the file we bound, unless another socket has bound that path since."""
    path = endpoint[len("ipc://") :]
    if inode is None:
        return
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    if wildcard:
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


def new_connecting_socket(ep: Endpoint, opts: Options) -> tuple[socket.socket, str | bytes]:
    """Start a non-blocking connect to an ipc endpoint."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock, ipc_sockaddr(ep.address)
