"""asyncio sockets, shaped like pyzmq's ``zmq.asyncio``.

``import zeropipe.asyncio as zmq_asyncio`` gives a ``Context`` whose sockets'
send/recv methods (and ``poll``) return awaitables, and a ``Poller`` for
them. Every other public name of :mod:`zeropipe` (``PUSH``, ``NOBLOCK``,
``Again``...) is available here too, so ``from zeropipe.asyncio import *``
is enough for asyncio code.
"""

from __future__ import annotations

from typing import Any

import zeropipe as _zeropipe
from zeropipe.sdk.aio import Context as Context
from zeropipe.sdk.aio import Poller as Poller
from zeropipe.sdk.aio import Socket as Socket
from zeropipe.sdk.typed import AsyncPublisher as Publisher
from zeropipe.sdk.typed import AsyncPuller as Puller
from zeropipe.sdk.typed import AsyncPusher as Pusher
from zeropipe.sdk.typed import AsyncReplier as Replier
from zeropipe.sdk.typed import AsyncRequester as Requester
from zeropipe.sdk.typed import AsyncSubscriber as Subscriber

_ASYNC = {
    "Context": Context,
    "Poller": Poller,
    "Socket": Socket,
    # The typed wrappers too: here their asyncio versions.
    "Publisher": Publisher,
    "Puller": Puller,
    "Pusher": Pusher,
    "Replier": Replier,
    "Requester": Requester,
    "Subscriber": Subscriber,
}
_LEFT_OUT = {"select"}
"""The blocking ``zeropipe.select`` would stall the loop (and shadow the stdlib module)."""


def _public_names() -> list[str]:
    names = set(_zeropipe.__all__)
    names.update(n for n in vars(_zeropipe) if n.isupper() and not n.startswith("_"))
    return sorted(names - _LEFT_OUT)


globals().update({n: getattr(_zeropipe, n) for n in _public_names() if n not in _ASYNC})

__all__ = _public_names()


def __getattr__(name: str) -> Any:
    """Anything else zeropipe has (a constant added later, a helper...)."""
    if name not in _LEFT_OUT and not name.startswith("_"):
        try:
            return getattr(_zeropipe, name)
        except AttributeError:
            pass
    raise AttributeError(f"module 'zeropipe.asyncio' has no attribute {name!r}")
