"""Errors shared by every layer above the protocol, shaped like pyzmq's.

This is a leaf module (it imports nothing from zeropipe), so transports,
patterns and the sdk can all raise the same exceptions users catch.
"""

from __future__ import annotations

import errno as _errno
import os

# ZeroMQ's own errno values (libzmq ZMQ_HAUSNUMERO = 156384712).
ZMQ_HAUSNUMERO = 156384712
EFSM = ZMQ_HAUSNUMERO + 51
ENOCOMPATPROTO = ZMQ_HAUSNUMERO + 52
ETERM = ZMQ_HAUSNUMERO + 53
EMTHREAD = ZMQ_HAUSNUMERO + 54

_ZMQ_MESSAGES = {
    EFSM: "Operation cannot be accomplished in current state",
    ENOCOMPATPROTO: "The protocol is not compatible with the socket type",
    ETERM: "Context was terminated",
    EMTHREAD: "No thread available",
}


def strerror(errnum: int) -> str:
    """The message libzmq gives for an error number."""
    return _ZMQ_MESSAGES.get(errnum) or os.strerror(errnum)


class ZMQBaseError(Exception):
    """Base of every zeropipe exception (pyzmq's name)."""


class ZMQError(ZMQBaseError):
    """An error with an errno, as raised by libzmq calls."""

    errno: int
    strerror: str

    def __init__(self, errno: int | None = None, msg: str | None = None) -> None:
        self.errno = _errno.EINVAL if errno is None else errno
        self.strerror = msg if msg is not None else strerror(self.errno)
        super().__init__(self.strerror)

    def __str__(self) -> str:
        return self.strerror

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strerror!r})"


class Again(ZMQError):
    """The operation would block (EAGAIN): NOBLOCK was given or a timeout expired."""

    def __init__(self, errno: int | None = None, msg: str | None = None) -> None:
        super().__init__(_errno.EAGAIN if errno is None else errno, msg)


class ContextTerminated(ZMQError):
    """The socket's Context was terminated (ETERM)."""

    def __init__(self, errno: int | None = None, msg: str | None = None) -> None:
        super().__init__(ETERM if errno is None else errno, msg)


class NotDone(ZMQBaseError):
    """A tracked send has not finished."""


class ZMQBindError(ZMQBaseError):
    """``bind_to_random_port`` found no free port."""
