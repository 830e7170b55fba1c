"""The mechanism interface, after libzmq's ``mechanism_t``.

A mechanism sees only command frames during the handshake. It produces the
commands to send (``next_commands``), consumes the peer's (``process_command``)
and reports when it is done, with the peer's metadata.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from zeropipe.protocol.commands import Metadata


class Mechanism(ABC):
    """One side of a security handshake."""

    #: Name announced in the greeting.
    name: bytes = b""

    def __init__(self, metadata: Metadata) -> None:
        self.local_metadata = metadata
        self.peer_metadata: Metadata | None = None

    @abstractmethod
    def next_commands(self) -> list[tuple[bytes, bytes]]:
        """Return the (name, data) commands that are ready to be sent."""

    @abstractmethod
    def process_command(self, name: bytes, data: bytes) -> None:
        """Consume one handshake command from the peer, or raise."""

    @property
    def done(self) -> bool:
        """True once the peer's metadata is known and ours was sent."""
        return self.peer_metadata is not None
