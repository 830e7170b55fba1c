"""The ZAP handler in a thread of its own, as pyzmq's ``zmq.auth.thread``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from zeropipe.errors import Again, ContextTerminated
from zeropipe.sdk.auth.base import Authenticator
from zeropipe.sdk.context import Context
from zeropipe.sdk.socket import NOBLOCK, Socket

POLL_MS = 50
"""How often the thread looks at its stop flag while no request comes."""
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
"""How long stop() waits for a request being handled (a callback that never returns)."""


class ThreadAuthenticator(Authenticator):
    """Answers ZAP requests in a background thread, from :meth:`start` to :meth:`stop`.

    The thread owns the ZAP socket: it binds it, serves it and closes it. Configure from any
    thread, before or after starting. Asynchronous callbacks run on an event loop of the
    thread's own. If the context is terminated first, the thread closes its socket and ends.
    """

    thread: threading.Thread | None

    def __init__(
        self, context: Context | None = None, encoding: str = "utf-8", log: Any = None
    ) -> None:
        super().__init__(context=context, encoding=encoding, log=log)
        self.thread = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Bind the ZAP socket and start answering (raises if the bind fails)."""
        if self.is_alive():
            raise RuntimeError("ThreadAuthenticator is already running")
        stopping, ready = threading.Event(), threading.Event()
        errors: list[BaseException] = []
        thread = threading.Thread(
            target=self._run, args=(stopping, ready, errors), name="zeropipe-zap", daemon=True
        )
        thread.start()
        if not ready.wait(START_TIMEOUT_S):
            stopping.set()
            raise RuntimeError("Authenticator thread failed to start")
        if errors:
            thread.join(STOP_TIMEOUT_S)
            raise errors[0]
        self.thread, self._stopping = thread, stopping

    def stop(self) -> None:
        """Finish the request in hand, close the socket and end the thread."""
        thread = self.thread
        if thread is None:
            return
        self._stopping.set()
        if thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                self.log.warning("ZAP thread still busy with a request after %s s", STOP_TIMEOUT_S)
        self.thread = None

    def is_alive(self) -> bool:
        """Whether the thread is running."""
        return self.thread is not None and self.thread.is_alive()

    def _run(
        self, stopping: threading.Event, ready: threading.Event, errors: list[BaseException]
    ) -> None:
        try:
            sock = self._bind(Socket)
        except BaseException as exc:
            errors.append(exc)
            ready.set()
            return
        self.zap_socket = sock
        self.log.debug("Starting")
        ready.set()
        loop = asyncio.new_event_loop()
        try:
            self._serve(sock, loop, stopping)
        except Exception:
            self.log.exception("ZAP thread failed")
        finally:
            sock.close()
            loop.close()
            if self.zap_socket is sock:
                self.zap_socket = None
            self.log.debug("Stopped")

    def _serve(
        self, sock: Socket, loop: asyncio.AbstractEventLoop, stopping: threading.Event
    ) -> None:
        while not stopping.is_set():
            try:
                if not sock.poll(POLL_MS):
                    continue
                msg = sock.recv_multipart(NOBLOCK)
            except Again:
                continue
            except ContextTerminated:
                return
            reply = loop.run_until_complete(self.zap_reply(msg))
            try:
                sock.send_multipart(reply)
            except ContextTerminated:
                return


__all__ = ["ThreadAuthenticator"]
