"""The mechanism interface, after libzmq's ``mechanism_t``.

A mechanism sees only command frames during the handshake. It produces the
commands to send (``next_commands``), consumes the peer's (``process_command``)
and reports when it is done, with the peer's metadata.

A server-side mechanism may need its ZAP handler's verdict (RFC 27) before it
goes on: it sets ``zap_request``, the connection reports it, and the owner
answers with :meth:`Mechanism.zap_done` (the reply, or None when no handler is
bound). A mechanism that ``encrypts`` carries every frame after the handshake
inside a MESSAGE command (CURVE).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from zeropipe.protocol.commands import ERROR, Metadata, decode_error, encode_error
from zeropipe.protocol.errors import (
    ZMTP_UNEXPECTED_COMMAND,
    AuthenticationFailed,
    NoZapHandler,
    PeerErrorReceived,
    RemoteProtocolError,
)
from zeropipe.protocol.frames import Buffer, encode_command
from zeropipe.protocol.zap import ZapReply, ZapRequest

#: Peers may not claim this property themselves: only a ZAP handler sets it.
USER_ID = "User-Id"


class Mechanism(ABC):
    """One side of a security handshake."""

    #: Name announced in the greeting.
    name: bytes = b""
    #: True when frames travel inside MESSAGE boxes once the handshake is done.
    encrypts = False
    #: Bytes that encryption adds to each frame (MAXMSGSIZE counts the payload only).
    overhead = 0

    def __init__(
        self,
        metadata: Metadata,
        *,
        as_server: bool = False,
        zap: bool = False,
        zap_required: bool = False,
    ) -> None:
        self.local_metadata = metadata
        #: The mechanism's server role (the greeting's as-server bit).
        self.as_server = as_server
        self.peer_metadata: Metadata | None = None
        #: Ask the ZAP handler; without one, refuse the peer if ``zap_required``.
        self.zap = zap
        self.zap_required = zap_required
        #: Set while the handler's verdict is awaited (reported once by the connection).
        self.zap_request: ZapRequest | None = None
        #: What the handler said about the peer: User-Id and its metadata.
        self.zap_properties = Metadata()

    @abstractmethod
    def next_commands(self) -> list[tuple[bytes, bytes]]:
        """Return the (name, data) commands that are ready to be sent."""

    @abstractmethod
    def process_command(self, name: bytes, data: bytes) -> None:
        """Consume one handshake command from the peer, or raise."""

    @property
    def done(self) -> bool:
        """True once the peer's metadata is known and ours was sent."""
        return self.peer_metadata is not None

    def properties(self) -> Metadata:
        """The peer's properties: its metadata (less any User-Id it claims) and ZAP's."""
        props = Metadata(
            (k, v) for k, v in (self.peer_metadata or {}).items() if k.lower() != "user-id"
        )
        props.update(self.zap_properties)
        return props

    def error_frame(self, reason: str) -> bytes:
        """The whole ERROR command frame that refuses the peer."""
        return encode_command(ERROR, encode_error(reason))

    # -- ZAP -----------------------------------------------------------------

    def ask_zap(self, request: ZapRequest) -> bool:
        """Start a ZAP request if this side consults a handler; True if it must wait."""
        if not self.zap:
            return False
        self.zap_request = request
        return True

    def zap_done(self, reply: ZapReply | None) -> None:
        """The handler's reply, or None if no handler is bound. Raises if refused."""
        if self.zap_request is None:
            return
        self.zap_request = None
        if reply is None:
            if self.zap_required:
                raise NoZapHandler()
        elif reply.status_code != 200:
            raise AuthenticationFailed(reply.status_code, reply.status_text)
        else:
            props = Metadata(reply.metadata)
            if reply.user_id:
                props[USER_ID] = reply.user_id
            self.zap_properties = props
        self.zap_granted()

    def zap_granted(self) -> None:  # noqa: B027 - a hook: most mechanisms just go on
        """The peer may go on (a hook for mechanisms that consult ZAP)."""

    # -- MESSAGE boxes (mechanisms that encrypt) ------------------------------

    def seal(self, flags: int, body: Buffer) -> list[Buffer]:
        """The wire chunks of one frame sent inside a MESSAGE (flags as ZMTP's)."""
        raise NotImplementedError

    def reserve(self, count: int) -> int:
        """Take the next ``count`` nonces for frames sealed later by :meth:`seal_batch`."""
        raise NotImplementedError

    def seal_batch(self, first: int, messages: list[list[Buffer]]) -> list[Buffer]:
        """The wire chunks of messages whose frames took nonces ``first``, ``first + 1``..."""
        raise NotImplementedError

    def sealed_size(self, frames: list[Buffer]) -> int:
        """Bytes that ``frames`` take on the wire once sealed."""
        raise NotImplementedError

    def unseal(self, body: Buffer) -> tuple[int, Buffer]:
        """The flags (as ZMTP's) and payload of a received MESSAGE, or raise."""
        raise NotImplementedError


class SteppedMechanism(Mechanism):
    """A handshake of commands in a fixed order, each answered in turn (PLAIN, CURVE)."""

    def __init__(self, metadata: Metadata, **kwargs: bool) -> None:
        super().__init__(metadata, **kwargs)
        #: The command the peer must send next (b"" while none is due).
        self._expect = b""
        self._queue: list[tuple[bytes, bytes]] = []

    def next_commands(self) -> list[tuple[bytes, bytes]]:
        queued, self._queue = self._queue, []
        return queued

    def _take(self, name: bytes, data: bytes) -> None:
        """Accept only the expected command now (an ERROR from a server ends it all)."""
        if name == ERROR and not self.as_server:
            raise PeerErrorReceived(decode_error(data))
        if name != self._expect or self.zap_request is not None:
            raise RemoteProtocolError(
                f"unexpected command {name!r} during the {self.name.decode()} handshake",
                code=ZMTP_UNEXPECTED_COMMAND,
            )
        self._expect = b""
