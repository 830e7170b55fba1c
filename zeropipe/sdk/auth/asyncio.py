"""The ZAP handler as a task of the running asyncio loop, as pyzmq's ``zmq.auth.asyncio``."""

from __future__ import annotations

import asyncio
import errno
import warnings
from typing import Any

from zeropipe.errors import ContextTerminated, ZMQError
from zeropipe.sdk import aio
from zeropipe.sdk.auth.base import Authenticator
from zeropipe.sdk.context import Context


class AsyncioAuthenticator(Authenticator):
    """Answers ZAP requests in a task on the loop running when :meth:`start` is called.

    Stop it (:meth:`stop`) before terminating the context, and before the loop ends.
    """

    def __init__(
        self,
        context: Context | None = None,
        loop: Any = None,
        encoding: str = "utf-8",
        log: Any = None,
    ) -> None:
        super().__init__(context, encoding, log)
        if loop is not None:
            warnings.warn(
                f"{type(self).__name__}(loop) is deprecated and ignored",
                DeprecationWarning,
                stacklevel=2,
            )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Bind the ZAP socket and start the task (call it from a coroutine)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():
            raise RuntimeError("AsyncioAuthenticator is already running")
        sock = self._bind(aio.Socket)
        self.zap_socket = sock
        self.log.debug("Starting")
        self._task = loop.create_task(self._serve(sock), name="zeropipe-zap")

    def stop(self) -> None:
        """Cancel the task and close the ZAP socket."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        super().stop()

    async def _serve(self, sock: aio.Socket) -> None:
        try:
            while True:
                msg = await sock.recv_multipart()
                reply = await self.zap_reply(msg)
                await sock.send_multipart(reply)
        except ContextTerminated:
            sock.close()
        except ZMQError as exc:
            if exc.errno != errno.ENOTSOCK:  # ENOTSOCK: stop() closed the socket
                raise


__all__ = ["AsyncioAuthenticator"]
