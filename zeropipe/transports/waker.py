"""A pollable flag that one thread raises to wake another."""

from __future__ import annotations

import os
import socket


class Waker:
    """An eventfd (or a socketpair where there is none) used as a wake-up bell."""

    def __init__(self) -> None:
        self._pair: tuple[socket.socket, socket.socket] | None = None
        if hasattr(os, "eventfd"):
            self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._write_fd = self.fd
        else:  # pragma: no cover - non-Linux
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            self._pair = (a, b)
            self.fd = a.fileno()
            self._write_fd = b.fileno()

    def wake(self) -> None:
        """Make ``fd`` readable."""
        try:
            os.write(self._write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except (BlockingIOError, OSError):
            pass

    def clear(self) -> None:
        """Consume pending wake-ups."""
        try:
            os.read(self.fd, 4096)
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Release the file descriptors."""
        if self._pair is not None:
            for s in self._pair:
                s.close()
        elif self.fd >= 0:
            os.close(self.fd)
        # Never touch these numbers again: the kernel may give them to another file.
        self.fd = self._write_fd = -1
