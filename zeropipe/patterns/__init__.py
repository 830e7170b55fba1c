"""Socket patterns built from small routing parts over pipes."""

from __future__ import annotations

from zeropipe.patterns.base import SocketCore
from zeropipe.patterns.dealer import DealerCore
from zeropipe.patterns.pair import PairCore
from zeropipe.patterns.pub import PubCore
from zeropipe.patterns.pull import PullCore
from zeropipe.patterns.push import PushCore
from zeropipe.patterns.rep import RepCore
from zeropipe.patterns.req import ReqCore
from zeropipe.patterns.router import RouterCore
from zeropipe.patterns.sub import SubCore
from zeropipe.patterns.xpub import XPubCore
from zeropipe.patterns.xsub import XSubCore
from zeropipe.protocol import SocketType

CORES: dict[SocketType, type[SocketCore]] = {
    SocketType.PAIR: PairCore,
    SocketType.PUSH: PushCore,
    SocketType.PULL: PullCore,
    SocketType.PUB: PubCore,
    SocketType.SUB: SubCore,
    SocketType.REQ: ReqCore,
    SocketType.REP: RepCore,
    SocketType.DEALER: DealerCore,
    SocketType.ROUTER: RouterCore,
    SocketType.XPUB: XPubCore,
    SocketType.XSUB: XSubCore,
}

__all__ = [
    "CORES",
    "DealerCore",
    "PairCore",
    "PubCore",
    "PullCore",
    "PushCore",
    "RepCore",
    "ReqCore",
    "RouterCore",
    "SocketCore",
    "SubCore",
    "XPubCore",
    "XSubCore",
]
