"""Parse and format endpoints: ``tcp://``, ``ipc://`` and ``inproc://``."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass

TRANSPORTS = ("tcp", "ipc", "inproc")


class EndpointError(ValueError):
    """The endpoint string is malformed or names an unknown transport."""

    def __init__(self, message: str, *, unsupported_transport: bool = False) -> None:
        super().__init__(message)
        self.unsupported_transport = unsupported_transport


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint. For tcp, ``host`` is '' for the wildcard and ``port`` 0 for any."""

    transport: str
    address: str
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"{self.transport}://{self.address}"


def parse_endpoint(text: str | bytes) -> Endpoint:
    """Split ``transport://address``; refuse what no transport would accept."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise EndpointError(f"endpoint must be str, not {type(text).__name__}")
    transport, sep, address = text.partition("://")
    if not sep or not address:
        raise EndpointError(f"invalid endpoint {text!r}: expected transport://address")
    if transport not in TRANSPORTS:
        raise EndpointError(
            f"transport {transport!r} is not supported (use tcp, ipc or inproc)",
            unsupported_transport=True,
        )
    if transport == "tcp":
        host, port = _split_tcp(address, text)
        return Endpoint("tcp", address, host, port)
    return Endpoint(transport, address)


def _split_tcp(address: str, text: str) -> tuple[str, int]:
    if ";" in address:
        address = address.split(";", 1)[1]
    host, sep, port_text = address.rpartition(":")
    if not sep or not host:
        raise EndpointError(f"invalid tcp endpoint {text!r}: expected tcp://host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "*":
        host = ""
    if port_text in ("*", "0"):
        return host, 0
    try:
        port = int(port_text)
    except ValueError:
        raise EndpointError(f"invalid port in {text!r}") from None
    if not 0 < port < 65536:
        raise EndpointError(f"port out of range in {text!r}")
    return host, port


def resolve_tcp(ep: Endpoint, *, passive: bool, ipv6: bool = False) -> list[tuple[int, tuple]]:  # type: ignore[type-arg]
    """Resolve a tcp endpoint to (family, sockaddr) candidates, IPv4 first."""
    host = ep.host or None
    if host is None and passive:
        host = "::" if ipv6 else "0.0.0.0"
    if host is None:
        raise EndpointError(f"cannot connect to a wildcard host: {ep}")
    family = socket.AF_UNSPEC if ipv6 or ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, ep.port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise EndpointError(f"cannot resolve {ep}: {exc.strerror}") from None
    if not infos and family == socket.AF_INET:
        infos = socket.getaddrinfo(host, ep.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return [(info[0], info[4]) for info in infos]


def ipc_sockaddr(address: str) -> str | bytes:
    """Map an ipc address to an AF_UNIX address; ``@name`` is Linux's abstract namespace."""
    if address.startswith("@"):
        return b"\x00" + address[1:].encode()
    return address


def ipc_wildcard_path() -> str:
    """A fresh path for ``ipc://*`` binds."""
    return os.path.join(tempfile.mkdtemp(prefix="zeropipe-"), "socket")


def format_tcp(sockaddr: tuple) -> str:  # type: ignore[type-arg]
    """Format a bound tcp address as an endpoint string, as libzmq does."""
    host, port = sockaddr[0], sockaddr[1]
    if ":" in host:
        return f"tcp://[{host}]:{port}"
    return f"tcp://{host}:{port}"
