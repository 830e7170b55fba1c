"""The socket API the pipelines use, imported from its layers (not from the top package,
which also holds the command line)."""

from zeropipe.errors import Again, ZMQError
from zeropipe.protocol import SocketType
from zeropipe.sdk import Context, Socket
from zeropipe.sdk.constants import Flag, SocketOption
from zeropipe.sdk.keys import curve_keypair, curve_public

DEALER = SocketType.DEALER
ROUTER = SocketType.ROUTER
NOBLOCK = Flag.NOBLOCK
LINGER = SocketOption.LINGER
IMMEDIATE = SocketOption.IMMEDIATE
SNDHWM = SocketOption.SNDHWM
RCVHWM = SocketOption.RCVHWM
SNDTIMEO = SocketOption.SNDTIMEO
LAST_ENDPOINT = SocketOption.LAST_ENDPOINT
MAXMSGSIZE = SocketOption.MAXMSGSIZE
CURVE_SERVER = SocketOption.CURVE_SERVER
CURVE_PUBLICKEY = SocketOption.CURVE_PUBLICKEY
CURVE_SECRETKEY = SocketOption.CURVE_SECRETKEY
CURVE_SERVERKEY = SocketOption.CURVE_SERVERKEY

__all__ = [
    "CURVE_PUBLICKEY",
    "CURVE_SECRETKEY",
    "CURVE_SERVER",
    "CURVE_SERVERKEY",
    "DEALER",
    "IMMEDIATE",
    "LAST_ENDPOINT",
    "LINGER",
    "MAXMSGSIZE",
    "NOBLOCK",
    "RCVHWM",
    "ROUTER",
    "SNDHWM",
    "SNDTIMEO",
    "Again",
    "Context",
    "Socket",
    "ZMQError",
    "curve_keypair",
    "curve_public",
]
