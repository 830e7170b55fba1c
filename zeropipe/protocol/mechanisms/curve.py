"""The CURVE mechanism (RFC 25 and CurveZMQ, RFC 26), interoperable with libzmq.

Keys: the client's and server's permanent keys C/c and S/s, and a transient
pair per connection on each side, C'/c' and S'/s'. ``box[x](A->B)`` is a
NaCl box from A's secret key to B's public key.

    C -> S  HELLO     version 1.0, 72 zero bytes, C', nonce, box[64 zeros](C'->S)
    S -> C  WELCOME   nonce, box[S' + cookie](S->C'); cookie = secretbox[C' + s'](K)
    C -> S  INITIATE  cookie, nonce, box[C + vouch + metadata](C'->S');
                      vouch = box[C' + S](C->S')
    S -> C  READY     nonce, box[metadata](S'->C')
    both    MESSAGE   nonce, box[flags + payload](C'<->S')

Every short nonce is an 8-byte counter that must grow strictly on each side,
which defeats replays; the MESSAGE nonce prefix names the sender's side, so a
box cannot be reflected back. The cookie key K lives only in this
connection's state and is dropped once INITIATE is checked. A CURVE frame
goes out as a data frame whose MORE and COMMAND flags travel inside the box.
"""

from __future__ import annotations

import hmac
import os

from zeropipe.protocol.commands import READY, Metadata, encode_metadata
from zeropipe.protocol.errors import (
    ZMTP_CRYPTOGRAPHIC,
    ZMTP_INVALID_SEQUENCE,
    ZMTP_KEY_EXCHANGE,
    ZMTP_MALFORMED_COMMAND_HELLO,
    ZMTP_MALFORMED_COMMAND_INITIATE,
    ZMTP_MALFORMED_COMMAND_MESSAGE,
    ZMTP_MALFORMED_COMMAND_READY,
    ZMTP_MALFORMED_COMMAND_UNSPECIFIED,
    ZMTP_MALFORMED_COMMAND_WELCOME,
    ZMTP_UNEXPECTED_COMMAND,
    LocalProtocolError,
    RemoteProtocolError,
)
from zeropipe.protocol.frames import FLAG_COMMAND, FLAG_MORE, SHORT_HEADER, Buffer, frame_header
from zeropipe.protocol.mechanisms import sodium
from zeropipe.protocol.mechanisms.base import SteppedMechanism
from zeropipe.protocol.mechanisms.plain import peer_metadata
from zeropipe.protocol.zap import ZapRequest

HELLO = b"HELLO"
WELCOME = b"WELCOME"
INITIATE = b"INITIATE"
MESSAGE_NAME = b"\x07MESSAGE"
#: A MESSAGE command's name, nonce and MAC: what a frame grows by on the wire.
MESSAGE_OVERHEAD = len(MESSAGE_NAME) + 8 + sodium.MAC_SIZE + 1

HELLO_SIZE = 194  # data after the name: version 2, padding 72, C' 32, nonce 8, box 80
WELCOME_SIZE = 160  # nonce 16, box 144
COOKIE_SIZE = 96  # nonce 16, secretbox 80
VOUCH_SIZE = 96  # nonce 16, box 80
INITIATE_MIN = COOKIE_SIZE + 8 + sodium.MAC_SIZE + 32 + VOUCH_SIZE
READY_MIN = 8 + sodium.MAC_SIZE

_counter = sodium.COUNTER
#: MESSAGE frames up to this size are written whole in the box's scratch buffer.
SEAL_IN_PLACE = 16384
#: The flags byte inside a MESSAGE box, by ZMTP frame flags (MORE 1, COMMAND 4).
_INNER_FLAGS = {0: b"\x00", FLAG_MORE: b"\x01", FLAG_COMMAND: b"\x02"}


def _not_a_message(body: Buffer) -> None:
    """Raise what libzmq reports for a frame that should have been a MESSAGE, checked in
    its order: a command name that overruns, another command, then a short MESSAGE."""
    if not body or body[0] + 1 > len(body):
        raise RemoteProtocolError(
            "CURVE frame is not a command", code=ZMTP_MALFORMED_COMMAND_UNSPECIFIED
        )
    if body[:8] != MESSAGE_NAME:
        raise RemoteProtocolError(
            "CURVE frame other than MESSAGE after the handshake", code=ZMTP_UNEXPECTED_COMMAND
        )
    raise RemoteProtocolError("CURVE MESSAGE too short", code=ZMTP_MALFORMED_COMMAND_MESSAGE)


def _crypto_error(what: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"CURVE: {what}", code=ZMTP_CRYPTOGRAPHIC)


class CurveMechanism(SteppedMechanism):
    """Either side of CURVE. Keys are 32 raw bytes."""

    name = b"CURVE"
    encrypts = True
    overhead = MESSAGE_OVERHEAD

    def __init__(
        self,
        metadata: Metadata,
        *,
        as_server: bool,
        public_key: bytes,
        secret_key: bytes,
        server_key: bytes = b"",
        zap: bool = False,
        zap_required: bool = False,
    ) -> None:
        super().__init__(metadata, as_server=as_server, zap=zap, zap_required=zap_required)
        if len(public_key) != 32 or len(secret_key) != 32:
            raise LocalProtocolError("CURVE keys are 32 bytes")
        if not as_server and len(server_key) != 32:
            raise LocalProtocolError("a CURVE client needs the server's 32-byte public key")
        self._public = public_key
        self._secret = secret_key
        self._server_key = server_key
        self._transient_public, self._transient_secret = sodium.keypair()
        self._peer_transient = b""
        self._cookie_key: bytes | None = None
        self._send_nonce = 0
        self._recv_nonce = 0
        self._send_box: sodium.Box | None = None
        self._recv_box: sodium.Box | None = None
        self._send_prefix = b"CurveZMQMESSAGES" if as_server else b"CurveZMQMESSAGEC"
        self._recv_prefix = b"CurveZMQMESSAGEC" if as_server else b"CurveZMQMESSAGES"
        self._ready_data = b""
        self._expect = HELLO if as_server else b""

    # -- the handshake -------------------------------------------------------

    def next_commands(self) -> list[tuple[bytes, bytes]]:
        if not self.as_server and not self._send_nonce:
            self._expect = WELCOME
            self._queue.append((HELLO, self._hello()))
        return super().next_commands()

    def process_command(self, name: bytes, data: bytes) -> None:
        self._take(name, data)
        if name == HELLO:
            self._on_hello(data)
        elif name == WELCOME:
            self._on_welcome(data)
        elif name == INITIATE:
            self._on_initiate(data)
        else:
            self._on_ready(data)

    def _next_nonce(self) -> bytes:
        self._send_nonce += 1
        return _counter.pack(self._send_nonce)

    def _hello(self) -> bytes:
        short = self._next_nonce()
        try:
            sealed = sodium.box(
                bytes(64), b"CurveZMQHELLO---" + short, self._server_key, self._transient_secret
            )
        except sodium.CryptoError:
            raise _crypto_error("the server key is not a usable public key") from None
        return b"\x01\x00" + bytes(72) + self._transient_public + short + sealed

    def _on_hello(self, data: bytes) -> None:
        if len(data) != HELLO_SIZE or data[:2] != b"\x01\x00":
            raise RemoteProtocolError(
                "malformed CURVE HELLO (size or version)", code=ZMTP_MALFORMED_COMMAND_HELLO
            )
        client_transient = data[74:106]
        short = data[106:114]
        try:
            opened = sodium.unbox(
                data[114:], b"CurveZMQHELLO---" + short, client_transient, self._secret
            )
        except sodium.CryptoError:
            raise _crypto_error("HELLO box did not open (wrong server key?)") from None
        if not hmac.compare_digest(opened, bytes(64)):
            raise _crypto_error("HELLO signature is not 64 zero bytes")
        self._peer_transient = client_transient
        self._recv_nonce = _counter.unpack(short)[0]
        self._cookie_key = os.urandom(32)
        cookie_nonce = os.urandom(16)
        cookie = cookie_nonce + sodium.secretbox(
            client_transient + self._transient_secret,
            b"COOKIE--" + cookie_nonce,
            self._cookie_key,
        )
        welcome_nonce = os.urandom(16)
        sealed = sodium.box(
            self._transient_public + cookie,
            b"WELCOME-" + welcome_nonce,
            client_transient,
            self._secret,
        )
        self._expect = INITIATE
        self._queue.append((WELCOME, welcome_nonce + sealed))

    def _on_welcome(self, data: bytes) -> None:
        if len(data) != WELCOME_SIZE:
            raise RemoteProtocolError(
                "malformed CURVE WELCOME", code=ZMTP_MALFORMED_COMMAND_WELCOME
            )
        try:
            opened = sodium.unbox(
                data[16:], b"WELCOME-" + data[:16], self._server_key, self._transient_secret
            )
        except sodium.CryptoError:
            raise _crypto_error("WELCOME box did not open") from None
        server_transient, cookie = opened[:32], opened[32:]
        self._peer_transient = server_transient
        self._open_channel()
        vouch_nonce = os.urandom(16)
        vouch = vouch_nonce + sodium.box(
            self._transient_public + self._server_key,
            b"VOUCH---" + vouch_nonce,
            server_transient,
            self._secret,
        )
        short = self._next_nonce()
        assert self._send_box is not None
        sealed = self._send_box.seal(
            self._public + vouch + encode_metadata(self.local_metadata),
            b"CurveZMQINITIATE" + short,
        )
        self._expect = READY
        self._queue.append((INITIATE, cookie + short + bytes(sealed)))

    def _on_initiate(self, data: bytes) -> None:
        if len(data) < INITIATE_MIN:
            raise RemoteProtocolError(
                "malformed CURVE INITIATE", code=ZMTP_MALFORMED_COMMAND_INITIATE
            )
        key = self._cookie_key
        self._cookie_key = None  # one INITIATE per cookie: the key is gone now
        assert key is not None
        cookie = data[:COOKIE_SIZE]
        try:
            opened = sodium.secretbox_open(cookie[16:], b"COOKIE--" + cookie[:16], key)
        except sodium.CryptoError:
            raise _crypto_error("INITIATE cookie did not open") from None
        if not hmac.compare_digest(
            opened, self._peer_transient + self._transient_secret
        ):  # pragma: no cover - only K opens the cookie, and only we know K
            raise _crypto_error("INITIATE cookie is not ours")
        short = data[COOKIE_SIZE : COOKIE_SIZE + 8]
        self._check_nonce(short)
        self._open_channel()
        assert self._recv_box is not None
        try:
            opened = bytes(
                self._recv_box.open(data[COOKIE_SIZE + 8 :], b"CurveZMQINITIATE" + short)
            )
        except sodium.CryptoError:
            raise _crypto_error("INITIATE box did not open") from None
        client_key, vouch = opened[:32], opened[32 : 32 + VOUCH_SIZE]
        try:
            vouched = sodium.unbox(
                vouch[16:], b"VOUCH---" + vouch[:16], client_key, self._transient_secret
            )
        except sodium.CryptoError:
            raise _crypto_error("INITIATE vouch did not open") from None
        if not hmac.compare_digest(vouched, self._peer_transient + self._public):
            raise RemoteProtocolError(
                "CURVE vouch does not match this connection", code=ZMTP_KEY_EXCHANGE
            )
        self.client_key = client_key
        self._initiate_metadata = peer_metadata(opened[32 + VOUCH_SIZE :])
        if not self.ask_zap(ZapRequest(self.name, (client_key,))):
            self.zap_granted()

    def zap_granted(self) -> None:
        self.peer_metadata = self._initiate_metadata
        assert self._send_box is not None
        short = self._next_nonce()
        sealed = self._send_box.seal(
            encode_metadata(self.local_metadata), b"CurveZMQREADY---" + short
        )
        self._queue.append((READY, short + bytes(sealed)))

    def _on_ready(self, data: bytes) -> None:
        if len(data) < READY_MIN:
            raise RemoteProtocolError("malformed CURVE READY", code=ZMTP_MALFORMED_COMMAND_READY)
        short = data[:8]
        self._check_nonce(short)
        assert self._recv_box is not None
        try:
            opened = bytes(self._recv_box.open(data[8:], b"CurveZMQREADY---" + short))
        except sodium.CryptoError:
            raise _crypto_error("READY box did not open") from None
        self.peer_metadata = peer_metadata(opened)

    def _open_channel(self) -> None:
        try:
            shared = sodium.precompute(self._peer_transient, self._transient_secret)
        except sodium.CryptoError:
            raise _crypto_error("the peer's transient key is not a usable public key") from None
        self._send_box = sodium.Box(shared)
        self._recv_box = sodium.Box(shared)

    def _check_nonce(self, short: bytes) -> None:
        value = _counter.unpack(short)[0]
        if value <= self._recv_nonce:
            raise RemoteProtocolError(
                "CURVE nonce did not increase (replayed box)", code=ZMTP_INVALID_SEQUENCE
            )
        self._recv_nonce = value

    # -- MESSAGE boxes -------------------------------------------------------

    def seal(self, flags: int, body: Buffer) -> list[Buffer]:
        self._send_nonce = nonce = self._send_nonce + 1
        short = _counter.pack(nonce)
        box = self._send_box
        assert box is not None
        plain = _INNER_FLAGS[flags] + body
        size = len(plain) + 32  # the MESSAGE: name 8, nonce 8, MAC 16, then the flags and body
        header = SHORT_HEADER[size] if size < 256 else frame_header(size)
        if size <= SEAL_IN_PLACE:
            return [box.seal_after(header + MESSAGE_NAME + short, plain, self._send_prefix + short)]
        return [header + MESSAGE_NAME + short, box.seal(plain, self._send_prefix + short)]

    def reserve(self, count: int) -> int:
        first = self._send_nonce + 1
        self._send_nonce += count
        return first

    def seal_batch(self, first: int, messages: list[list[Buffer]]) -> list[Buffer]:
        box = self._send_box
        assert box is not None
        prefix = self._send_prefix
        chunks: list[Buffer] = []
        run: list[tuple[bytes, bytes]] = []
        run_first = nonce = first
        run_bytes = 0
        for frames in messages:
            last = len(frames) - 1
            for i, body in enumerate(frames):
                plain = _INNER_FLAGS[FLAG_MORE if i < last else 0] + body
                size = len(plain) + 32
                if size > SEAL_IN_PLACE:
                    if run:
                        chunks.append(box.seal_run(run, prefix, run_first))
                        run, run_bytes = [], 0
                    short = _counter.pack(nonce)
                    chunks += (
                        frame_header(size) + MESSAGE_NAME + short,
                        box.seal(plain, prefix + short),
                    )
                    nonce += 1
                    run_first = nonce
                    continue
                if run_bytes + size + 9 > sodium.SCRATCH_SIZE:
                    chunks.append(box.seal_run(run, prefix, run_first))
                    run, run_bytes, run_first = [], 0, nonce
                header = SHORT_HEADER[size] if size < 256 else frame_header(size)
                run.append((header + MESSAGE_NAME, plain))
                run_bytes += size + len(header)
                nonce += 1
        if run:
            chunks.append(box.seal_run(run, prefix, run_first))
        return chunks

    def sealed_size(self, frames: list[Buffer]) -> int:
        """Bytes that ``frames`` take on the wire once sealed."""
        total = 0
        for body in frames:
            size = len(body) + MESSAGE_OVERHEAD
            total += size + (2 if size < 256 else 9)
        return total

    def unseal(self, body: Buffer) -> tuple[int, Buffer]:
        if len(body) < MESSAGE_OVERHEAD or body[:8] != MESSAGE_NAME:
            _not_a_message(body)
        short = body[8:16] if type(body) is bytes else bytes(body[8:16])
        value = _counter.unpack(short)[0]
        if value <= self._recv_nonce:
            raise RemoteProtocolError(
                "CURVE MESSAGE nonce did not increase (replayed box)", code=ZMTP_INVALID_SEQUENCE
            )
        box = self._recv_box
        assert box is not None
        sealed = body[16:] if type(body) is bytes else memoryview(body)[16:]
        try:
            inner, payload = box.open_split(sealed, self._recv_prefix + short)
        except sodium.CryptoError:
            raise _crypto_error("MESSAGE box did not open") from None
        self._recv_nonce = value
        return (inner & 1) | ((inner & 2) << 1), payload
