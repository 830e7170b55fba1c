"""Security mechanisms: the handshake that follows the greeting."""

from zeropipe.protocol.mechanisms.base import Mechanism
from zeropipe.protocol.mechanisms.null import NullMechanism

__all__ = ["Mechanism", "NullMechanism"]
