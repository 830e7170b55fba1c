"""``Frame``: a received or to-be-sent message part without a copy (``copy=False``)."""

from __future__ import annotations

import builtins
import errno
from typing import Any

from zeropipe.errors import ZMQError
from zeropipe.protocol.frames import Buffer


class Frame:
    """One message part. ``bytes`` copies; ``buffer`` is a zero-copy view."""

    __slots__ = ("_data", "_props", "more", "tracker")

    def __init__(
        self,
        data: Buffer | str = b"",
        track: bool = False,
        copy: bool | None = None,
        *,
        more: bool = False,
        properties: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(data, str):
            raise TypeError("unicode not allowed in a Frame; encode it first")
        if isinstance(data, Frame):
            data = data._data
        self._data: Buffer = data
        self.more = more
        self._props = properties
        self.tracker = None

    @property
    def bytes(self) -> bytes:
        """The content as ``bytes`` (a copy unless it already is bytes)."""
        data = self._data
        return data if type(data) is bytes else bytes(data)

    @property
    def buffer(self) -> memoryview:
        """A read-only view of the content, without copying."""
        return memoryview(self._data).toreadonly()

    def get(self, option: str | int) -> Any:
        """A message property, e.g. ``Socket-Type``, ``Peer-Address``, ``Identity``."""
        if isinstance(option, int):
            from zeropipe.sdk.constants import SocketOption

            if option == 1:
                return int(self.more)
            raise ValueError(f"unknown frame option {SocketOption(option).name}")
        props = self._props or {}
        wanted = option.lower()
        for key, value in props.items():
            if key.lower() == wanted:
                return value.decode() if isinstance(value, bytes) else value
        raise ZMQError(errno.EINVAL, f"this message has no property {option!r}")

    def __len__(self) -> int:
        data = self._data
        return data.nbytes if isinstance(data, memoryview) else len(data)

    def __bytes__(self) -> builtins.bytes:
        data = self._data
        return data if type(data) is builtins.bytes else builtins.bytes(data)

    def __buffer__(self, flags: int) -> memoryview:  # pragma: no cover - 3.12+
        return memoryview(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frame):
            return self.bytes == other.bytes
        if isinstance(other, bytes | bytearray | memoryview):
            return self.bytes == bytes(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.bytes)

    def __repr__(self) -> str:
        return f"<zeropipe.Frame({self.bytes[:32]!r}{'...' if len(self) > 32 else ''})>"

    def raw(self) -> Buffer:
        """The underlying buffer object (no copy)."""
        return self._data


Message = Frame
