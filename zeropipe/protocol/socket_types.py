"""Socket types and the peer compatibility table of RFC 37."""

from __future__ import annotations

import enum


class SocketType(enum.IntEnum):
    """ZeroMQ socket types, with libzmq's numbers."""

    PAIR = 0
    PUB = 1
    SUB = 2
    REQ = 3
    REP = 4
    DEALER = 5
    ROUTER = 6
    PULL = 7
    PUSH = 8
    XPUB = 9
    XSUB = 10
    STREAM = 11

    @property
    def wire_name(self) -> bytes:
        """The value of the ``Socket-Type`` property for this type."""
        return self.name.encode("ascii")


VALID_PEERS: dict[SocketType, frozenset[SocketType]] = {
    SocketType.PAIR: frozenset({SocketType.PAIR}),
    SocketType.PUB: frozenset({SocketType.SUB, SocketType.XSUB}),
    SocketType.XPUB: frozenset({SocketType.SUB, SocketType.XSUB}),
    SocketType.SUB: frozenset({SocketType.PUB, SocketType.XPUB}),
    SocketType.XSUB: frozenset({SocketType.PUB, SocketType.XPUB}),
    SocketType.REQ: frozenset({SocketType.REP, SocketType.ROUTER}),
    SocketType.REP: frozenset({SocketType.REQ, SocketType.DEALER}),
    SocketType.DEALER: frozenset({SocketType.REP, SocketType.DEALER, SocketType.ROUTER}),
    SocketType.ROUTER: frozenset({SocketType.REQ, SocketType.DEALER, SocketType.ROUTER}),
    SocketType.PUSH: frozenset({SocketType.PULL}),
    SocketType.PULL: frozenset({SocketType.PUSH}),
}

_BY_WIRE_NAME = {t.wire_name: t for t in SocketType}


def socket_type_from_wire(name: bytes) -> SocketType | None:
    """Map a ``Socket-Type`` property value to a type, or None if unknown."""
    return _BY_WIRE_NAME.get(name)


def compatible(ours: SocketType, theirs: SocketType) -> bool:
    """True when a socket of type ``ours`` may talk to one of type ``theirs``."""
    return theirs in VALID_PEERS.get(ours, frozenset())
