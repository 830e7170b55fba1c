"""tcp:// sockets: listening, connecting and tuning."""

from __future__ import annotations

import socket

from zeropipe.transports.endpoint import Endpoint, format_tcp, resolve_tcp
from zeropipe.transports.options import Options


def open_listener(ep: Endpoint, opts: Options) -> tuple[socket.socket, str]:
    """Bind and listen; return the socket and the endpoint actually bound."""
    last_error: OSError | None = None
    for family, addr in resolve_tcp(ep, passive=True, ipv6=bool(opts.ipv6)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(addr)
            sock.listen(opts.backlog)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        bound = sock.getsockname()
        host = ep.host
        if not host:
            host = "0.0.0.0" if family == socket.AF_INET else "::"
        elif family == socket.AF_INET6 or family == socket.AF_INET:
            host = bound[0]
        return sock, format_tcp((host, bound[1]))
    assert last_error is not None
    raise last_error


def new_connecting_socket(ep: Endpoint, opts: Options) -> tuple[socket.socket, tuple]:  # type: ignore[type-arg]
    """Resolve and start a non-blocking connect; return the socket and address."""
    family, addr = resolve_tcp(ep, passive=False, ipv6=bool(opts.ipv6))[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    tune(sock, opts)
    return sock, addr


def tune(sock: socket.socket, opts: Options) -> None:
    """Apply TCP options (no Nagle; keepalive, buffers, TCP_MAXRT and TOS when set)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if opts.sndbuf > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, opts.sndbuf)
    if opts.rcvbuf > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
    if opts.tcp_maxrt > 0 and hasattr(socket, "TCP_USER_TIMEOUT"):
        # TCP_MAXRT: how long unacknowledged data may wait before the connection is dropped.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, opts.tcp_maxrt)
    if opts.tos > 0 and sock.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, opts.tos)
    if opts.tcp_keepalive == 1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for value, name in (
            (opts.tcp_keepalive_idle, "TCP_KEEPIDLE"),
            (opts.tcp_keepalive_intvl, "TCP_KEEPINTVL"),
            (opts.tcp_keepalive_cnt, "TCP_KEEPCNT"),
        ):
            if value > 0 and hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    elif opts.tcp_keepalive == 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
