"""Z85 encoding, as pyzmq's ``zmq.utils.z85``."""

from zeropipe.sdk.z85 import Z85CHARS, decode, encode

__all__ = ["Z85CHARS", "decode", "encode"]
