"""The few libsodium primitives CurveZMQ needs, called through PyNaCl's cffi binding.

PyNaCl's object API allocates and copies around every call (about 3 us for a
small box here); the ``*_easy`` functions called directly take about half
that, which matters because every CURVE frame is one box. Boxes are NaCl's
``crypto_box`` (X25519, XSalsa20, Poly1305): a 16-byte MAC, then the
ciphertext, exactly the bytes libzmq puts on the wire.

PyNaCl is an optional dependency (``zeropipe[curve]``); this module is only
imported when a CURVE mechanism is made.
"""

from __future__ import annotations

import os
import struct
from typing import Any

try:
    from nacl._sodium import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("CURVE needs PyNaCl: pip install 'zeropipe[curve]'") from exc

from zeropipe.protocol.frames import Buffer

KEY_SIZE = 32
MAC_SIZE = 16
NONCE_SIZE = 24
#: Boxes up to this size are made in a per-connection scratch buffer.
SCRATCH_SIZE = 65536 + MAC_SIZE

#: The 8-byte big-endian counter of CurveZMQ short nonces.
COUNTER = struct.Struct(">Q")

lib.sodium_init()


class CryptoError(Exception):
    """A box did not open: wrong key, wrong nonce or tampered bytes."""


def keypair() -> tuple[bytes, bytes]:
    """A new (public, secret) X25519 key pair."""
    secret = os.urandom(KEY_SIZE)
    return public_key(secret), secret


def public_key(secret: bytes) -> bytes:
    """The public key of a 32-byte secret key."""
    out = ffi.new("unsigned char[]", KEY_SIZE)
    lib.crypto_scalarmult_base(out, secret)
    return bytes(ffi.buffer(out, KEY_SIZE))


def precompute(public: bytes, secret: bytes) -> bytes:
    """The shared key of a public and a secret key (``crypto_box_beforenm``)."""
    out = ffi.new("unsigned char[]", KEY_SIZE)
    if lib.crypto_box_beforenm(out, public, secret) != 0:
        raise CryptoError("weak public key")
    return bytes(ffi.buffer(out, KEY_SIZE))


def _buffer(data: Buffer) -> Any:
    return data if type(data) is bytes else ffi.from_buffer(data)


class Box:
    """Boxes made with one precomputed key, in a scratch buffer of its own.

    Small boxes are written into the scratch buffer and copied out once, as
    the finished bytes (the frame header in front, for :meth:`seal_after`);
    larger ones get a bytearray of their own, never copied again.
    """

    __slots__ = ("_at", "_buf", "_key", "_view")

    def __init__(self, shared_key: bytes) -> None:
        self._key = shared_key
        self._buf = ffi.new("unsigned char[]", SCRATCH_SIZE + 64)
        self._view = memoryview(ffi.buffer(self._buf))
        #: Pointers into the scratch buffer after a prefix, by prefix length.
        self._at: dict[int, Any] = {}

    def seal(self, message: Buffer, nonce: bytes) -> Buffer:
        """MAC and ciphertext of ``message``: bytes when small, a bytearray when large."""
        size = len(message) + MAC_SIZE
        if size <= SCRATCH_SIZE:
            return self.seal_after(b"", bytes(message), nonce)
        out = bytearray(size)
        lib.crypto_box_easy_afternm(
            ffi.from_buffer(out), _buffer(message), size - MAC_SIZE, nonce, self._key
        )
        return out

    def seal_after(self, prefix: bytes, message: bytes, nonce: bytes) -> bytes:
        """``prefix`` then the box of ``message``, as one bytes (for a scratch-sized box)."""
        n = len(prefix)
        at = self._at.get(n)
        if at is None:
            at = self._at[n] = self._buf + n
        view = self._view
        view[:n] = prefix
        size = len(message)
        lib.crypto_box_easy_afternm(at, message, size, nonce, self._key)
        return view[: n + size + MAC_SIZE].tobytes()

    def seal_run(self, items: list[tuple[bytes, bytes]], prefix: bytes, first: int) -> bytes:
        """Many small boxes laid end to end, as one bytes: for each ``(head, message)``,
        ``head``, an 8-byte big-endian counter (``first``, ``first + 1``...), then
        the box of ``message`` under the nonce ``prefix`` + counter. The items must
        fit in the scratch buffer (:data:`SCRATCH_SIZE` bytes in all)."""
        buf, view, key = self._buf, self._view, self._key
        seal = lib.crypto_box_easy_afternm
        pack = COUNTER.pack
        pos = 0
        counter = first
        for head, message in items:
            short = pack(counter)
            counter += 1
            end = pos + len(head) + 8
            view[pos:end] = head + short
            seal(buf + end, message, len(message), prefix + short, key)
            pos = end + len(message) + MAC_SIZE
        return view[:pos].tobytes()

    def open(self, box: Buffer, nonce: bytes) -> Buffer:
        """The message in ``box`` (bytes when small, a bytearray when large), or CryptoError."""
        size = len(box) - MAC_SIZE
        if size < 0:
            raise CryptoError("box shorter than its MAC")
        if size <= SCRATCH_SIZE:
            if lib.crypto_box_open_easy_afternm(
                self._buf, _buffer(box), size + MAC_SIZE, nonce, self._key
            ):
                raise CryptoError("box did not open")
            return self._view[:size].tobytes()
        out = bytearray(size)
        if lib.crypto_box_open_easy_afternm(
            ffi.from_buffer(out), _buffer(box), size + MAC_SIZE, nonce, self._key
        ):
            raise CryptoError("box did not open")
        return out

    def _open_in_scratch(self, box: Buffer, nonce: bytes) -> None:
        if lib.crypto_box_open_easy_afternm(self._buf, _buffer(box), len(box), nonce, self._key):
            raise CryptoError("box did not open")

    def open_split(self, box: Buffer, nonce: bytes) -> tuple[int, Buffer]:
        """The first byte of the message in ``box`` and the rest (a view when large)."""
        size = len(box) - MAC_SIZE
        if 0 < size <= SCRATCH_SIZE:
            if lib.crypto_box_open_easy_afternm(
                self._buf, _buffer(box), size + MAC_SIZE, nonce, self._key
            ):
                raise CryptoError("box did not open")
            return self._buf[0], self._view[1:size].tobytes()
        opened = self.open(box, nonce)
        if not opened:
            raise CryptoError("empty box")
        return opened[0], memoryview(opened)[1:]


def box(message: bytes, nonce: bytes, public: bytes, secret: bytes) -> bytes:
    """A one-off box from ``secret`` to ``public`` (handshake commands)."""
    return bytes(Box(precompute(public, secret)).seal(message, nonce))


def unbox(data: bytes, nonce: bytes, public: bytes, secret: bytes) -> bytes:
    """Open a one-off box from ``public`` to ``secret``, or CryptoError."""
    return bytes(Box(precompute(public, secret)).open(data, nonce))


def secretbox(message: bytes, nonce: bytes, key: bytes) -> bytes:
    """``crypto_secretbox``: MAC and ciphertext under a symmetric key (the cookie)."""
    out = ffi.new("unsigned char[]", len(message) + MAC_SIZE)
    lib.crypto_secretbox_easy(out, message, len(message), nonce, key)
    return bytes(ffi.buffer(out, len(message) + MAC_SIZE))


def secretbox_open(data: bytes, nonce: bytes, key: bytes) -> bytes:
    """Open a ``crypto_secretbox``, or CryptoError."""
    if len(data) < MAC_SIZE:
        raise CryptoError("box shorter than its MAC")
    out = ffi.new("unsigned char[]", len(data) - MAC_SIZE)
    if lib.crypto_secretbox_open_easy(out, data, len(data), nonce, key):
        raise CryptoError("box did not open")
    return bytes(ffi.buffer(out, len(data) - MAC_SIZE))
