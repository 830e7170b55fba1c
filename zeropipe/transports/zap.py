"""The engine's side of ZAP: one request to the handler bound at ``inproc://zeromq.zap.01``.

As in libzmq, each request gets a pipe of its own to the handler socket
(usually a REP, or a ROUTER) and speaks as a REQ would: an empty delimiter,
then the request. A reply on that pipe can only answer that request, so a
handler that echoes the wrong request id is caught. The call never blocks
the connection that made it: the reply, or the handler going away, comes
back through the reactor as ``on_result(reply_or_error)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from zeropipe.protocol import SocketType
from zeropipe.protocol.errors import RemoteProtocolError
from zeropipe.protocol.zap import ZAP_ENDPOINT, ZapReply, parse_reply
from zeropipe.transports.inproc import InprocRegistry, join
from zeropipe.transports.options import Options
from zeropipe.transports.pipe import Pipe
from zeropipe.transports.reactor import Reactor

#: What a call reports: the reply, or why there is none.
ZapResult = ZapReply | RemoteProtocolError | ConnectionError | None


def _ignore(result: ZapResult) -> None:
    pass


class ZapCall:
    """One ZAP request in flight; a pipe owner of its own (see PipeOwner)."""

    socket_type = SocketType.DEALER  # talks to REP and ROUTER handlers
    closed = False
    parked = True  # so the handler's writes (and its closing) always wake us
    absorbs_input = False
    input_pending = False
    peer_gone = False
    inproc: InprocRegistry | None = None

    def __init__(self, reactor: Reactor, on_result: Callable[[ZapResult], None]) -> None:
        self.lock = threading.Lock()
        self.options = Options()
        self.reactor = reactor
        self.on_result = on_result
        self.pipe: Pipe | None = None
        self.request_id = b""
        self._done = False

    def start(self, registry: InprocRegistry, frames: list[bytes]) -> bool:
        """Send the request; False (and no result will come) if no handler is bound."""
        handler = registry.lookup(ZAP_ENDPOINT)
        if handler is None:
            return False
        self.request_id = frames[1]  # the reply must echo it (see zap.request_frames)
        pipe = join(handler, self, name=ZAP_ENDPOINT)
        with self.lock:
            if pipe is None or not pipe.write([b"", *frames]):
                self._finish(ConnectionError("the ZAP handler cannot take the request"))
        return True

    def cancel(self) -> None:
        """The connection is gone: drop the request (the handler's reply is discarded)."""
        with self.lock:
            self._done = True
            self.on_result = _ignore
            if self.pipe is not None:
                self.pipe.close()

    def _check(self) -> None:
        """Reactor thread: look for the reply, or for the handler gone."""
        with self.lock:
            pipe = self.pipe
            if self._done or pipe is None:
                return
            reply = pipe.read()
            if reply is not None:
                frames = reply if isinstance(reply, list) else [reply]
                result: ZapResult
                try:
                    result = parse_reply(frames, self.request_id)
                except RemoteProtocolError as exc:
                    result = exc
                self._finish(result)
            elif not pipe.alive:
                self._finish(ConnectionError("the ZAP handler went away"))

    def _finish(self, result: ZapResult) -> None:
        self._done = True
        if self.pipe is not None:
            self.pipe.close()
        # The handler socket forgets its end of the pipe only when it next reads: until
        # then this call must not keep the connection (and its state) alive.
        on_result, self.on_result = self.on_result, _ignore
        self.reactor.call_soon(on_result, result)

    # -- PipeOwner -----------------------------------------------------------

    def attach(self, pipe: Pipe) -> bool:
        self.pipe = pipe
        return True

    def detach(self, pipe: Pipe) -> None:
        pass

    def on_pipe_event(self, pipe: Pipe, event: Any) -> None:
        pass

    def wake(self) -> None:
        self.reactor.call_soon(self._check)

    def absorb(self, pipe: Pipe) -> None:
        pass

    def pipe_ready(self, pipe: Pipe) -> None:
        pass

    def event(self, kind: int, value: int, endpoint: str) -> None:
        pass
