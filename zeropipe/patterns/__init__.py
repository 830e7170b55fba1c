"""Socket patterns built from small routing parts over pipes."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.pair import PairCore
from zeropipe.patterns.pull import PullCore
from zeropipe.patterns.push import PushCore
from zeropipe.protocol import SocketType

CORES: dict[SocketType, type[SocketCore]] = {
    SocketType.PAIR: PairCore,
    SocketType.PUSH: PushCore,
    SocketType.PULL: PullCore,
}

__all__ = ["CORES", "PairCore", "PullCore", "PushCore", "SocketCore"]
