"""Socket patterns built from small routing parts over pipes."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.pair import PairCore
from zeropipe.patterns.pub import PubCore
from zeropipe.patterns.pull import PullCore
from zeropipe.patterns.push import PushCore
from zeropipe.patterns.sub import SubCore
from zeropipe.protocol import SocketType

CORES: dict[SocketType, type[SocketCore]] = {
    SocketType.PAIR: PairCore,
    SocketType.PUSH: PushCore,
    SocketType.PULL: PullCore,
    SocketType.PUB: PubCore,
    SocketType.SUB: SubCore,
}

__all__ = ["CORES", "PairCore", "PubCore", "PullCore", "PushCore", "SocketCore", "SubCore"]
