"""Security mechanisms: the handshake that follows the greeting."""

from __future__ import annotations

from dataclasses import dataclass

from zeropipe.protocol.commands import Metadata
from zeropipe.protocol.mechanisms.base import Mechanism
from zeropipe.protocol.mechanisms.null import NullMechanism
from zeropipe.protocol.mechanisms.plain import PlainMechanism


@dataclass(frozen=True)
class Security:
    """Which mechanism a connection uses, in which role, with which credentials.

    ``zap`` asks the ZAP handler about each peer (NULL with a ZAP domain, PLAIN
    and CURVE servers); ``zap_required`` refuses peers when no handler is
    bound (ZAP_ENFORCE_DOMAIN; always for a PLAIN server, as in libzmq).
    """

    mechanism: bytes = b"NULL"
    as_server: bool = False
    username: bytes = b""
    password: bytes = b""
    public_key: bytes = b""
    secret_key: bytes = b""
    server_key: bytes = b""
    zap: bool = False
    zap_required: bool = False


NULL_SECURITY = Security()


def create_mechanism(security: Security, metadata: Metadata) -> Mechanism:
    """A fresh mechanism for one connection."""
    if security.mechanism == b"PLAIN":
        return PlainMechanism(
            metadata,
            as_server=security.as_server,
            username=security.username,
            password=security.password,
        )
    if security.mechanism == b"CURVE":
        from zeropipe.protocol.mechanisms.curve import CurveMechanism  # needs PyNaCl

        return CurveMechanism(
            metadata,
            as_server=security.as_server,
            public_key=security.public_key,
            secret_key=security.secret_key,
            server_key=security.server_key,
            zap=security.zap,
            zap_required=security.zap_required,
        )
    return NullMechanism(metadata, zap=security.zap, zap_required=security.zap_required)


__all__ = [
    "NULL_SECURITY",
    "Mechanism",
    "NullMechanism",
    "PlainMechanism",
    "Security",
    "create_mechanism",
]
