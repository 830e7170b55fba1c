"""CURVE keys: generation, derivation, and the forms the key socket options accept.

Keys are 32-byte Curve25519 keys, written as 40 Z85 characters. Generating and deriving them
needs PyNaCl (the ``zeropipe[curve]`` extra), imported only when called, so that
``import zeropipe`` works without it.
"""

from __future__ import annotations

from types import ModuleType

from zeropipe.sdk import z85

KEY_SIZE = 32
Z85_KEY_SIZE = 40

NACL_MISSING = "CURVE needs PyNaCl: pip install 'zeropipe[curve]'"


def require_nacl() -> ModuleType:
    """Return ``nacl.bindings``, or raise ImportError naming the extra that provides it."""
    try:
        import nacl.bindings
    except ImportError as exc:
        raise ImportError(NACL_MISSING) from exc
    return nacl.bindings


def has_curve() -> bool:
    """Whether CURVE is available (PyNaCl importable)."""
    try:
        require_nacl()
    except ImportError:
        return False
    return True


def key_to_raw(key: bytes | bytearray | memoryview | str, option_name: str) -> bytes:
    """The 32 raw bytes of a CURVE key given as a socket option value.

    Accepted, as libzmq does: 32 raw bytes, 40 Z85 characters (``bytes`` or ``str``), or 41 bytes
    of Z85 ending with a NUL. Anything else raises ValueError (TypeError for a non-key type) naming
    ``option_name``.
    """
    if isinstance(key, str):
        text: bytes | str = key
        if len(key) != Z85_KEY_SIZE:
            raise ValueError(
                f"{option_name}: a CURVE key as text is {Z85_KEY_SIZE} Z85 characters, "
                f"not {len(key)}"
            )
    elif isinstance(key, (bytes, bytearray, memoryview)):
        data = bytes(key)
        size = len(data)
        if size == KEY_SIZE:
            return data
        if len(data) == Z85_KEY_SIZE + 1 and data[-1] == 0:
            data = data[:-1]
        if len(data) != Z85_KEY_SIZE:
            raise ValueError(
                f"{option_name}: a CURVE key is {KEY_SIZE} bytes or {Z85_KEY_SIZE} Z85 characters "
                f"(optionally NUL-terminated), not {size} bytes"
            )
        text = data
    else:
        raise TypeError(f"{option_name}: a CURVE key is bytes or str, not {type(key).__name__}")
    try:
        return z85.decode(text)
    except ValueError as exc:
        raise ValueError(f"{option_name}: not a Z85 key: {exc}") from None


def curve_keypair() -> tuple[bytes, bytes]:
    """A new random CURVE key pair ``(public, secret)``, each as 40 Z85 bytes."""
    bindings = require_nacl()
    public, secret = bindings.crypto_box_keypair()
    return z85.encode(public), z85.encode(secret)


def curve_public(secret_key: bytes | bytearray | memoryview | str) -> bytes:
    """The public key (40 Z85 bytes) of a secret key (Z85, or 32 raw bytes)."""
    raw = key_to_raw(secret_key, "secret_key")
    bindings = require_nacl()
    public: bytes = bindings.crypto_scalarmult_base(raw)
    return z85.encode(public)


__all__ = [
    "KEY_SIZE",
    "Z85_KEY_SIZE",
    "curve_keypair",
    "curve_public",
    "has_curve",
    "key_to_raw",
    "require_nacl",
]
