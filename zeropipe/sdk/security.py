"""The security socket options, with libzmq's rules for which mechanism they select.

The mechanism and its role follow the last option set, as in libzmq:
PLAIN_SERVER 1 makes a PLAIN server, PLAIN_USERNAME or PLAIN_PASSWORD a PLAIN
client, CURVE_SERVER 1 a CURVE server, CURVE_SERVERKEY a CURVE client (any
CURVE key selects CURVE), and PLAIN_SERVER 0 or CURVE_SERVER 0 go back to NULL.
"""

from __future__ import annotations

import enum
import errno
from typing import Any

from zeropipe.errors import ZMQError
from zeropipe.sdk import z85
from zeropipe.sdk.constants import SocketOption
from zeropipe.sdk.keys import NACL_MISSING, curve_public, has_curve, key_to_raw
from zeropipe.transports.options import Options


class SecurityMechanism(enum.IntEnum):
    """Values of the MECHANISM option (pyzmq's ``zmq.NULL``, ``zmq.PLAIN``...)."""

    NULL = 0
    PLAIN = 1
    CURVE = 2
    GSSAPI = 3


_O = SocketOption
SECURITY_OPTIONS = frozenset(
    {
        _O.MECHANISM,
        _O.PLAIN_SERVER,
        _O.PLAIN_USERNAME,
        _O.PLAIN_PASSWORD,
        _O.CURVE_SERVER,
        _O.CURVE_PUBLICKEY,
        _O.CURVE_SECRETKEY,
        _O.CURVE_SERVERKEY,
        _O.ZAP_DOMAIN,
        _O.ZAP_ENFORCE_DOMAIN,
    }
)
_KEY_ATTRS = {
    _O.CURVE_PUBLICKEY: "curve_publickey",
    _O.CURVE_SECRETKEY: "curve_secretkey",
    _O.CURVE_SERVERKEY: "curve_serverkey",
}


def _flag(option: SocketOption, value: Any) -> int:
    if not isinstance(value, int):  # True and False too, as pyzmq
        raise TypeError(f"option {option.name} takes an int, not {value!r}")
    if value not in (0, 1):
        raise ZMQError(errno.EINVAL, f"{option.name} is 0 or 1, not {value}")
    return int(value)


def _short_bytes(option: SocketOption, value: Any, low: int) -> bytes:
    if isinstance(value, str):
        raise TypeError(f"option {option.name} takes bytes; use set_string")
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"option {option.name} takes bytes, not {value!r}")
    raw = bytes(value)
    if not low <= len(raw) <= 255:
        raise ZMQError(errno.EINVAL, f"{option.name} is {low}-255 bytes, not {len(raw)}")
    return raw


def set_security_option(opts: Options, option: int, value: Any) -> None:
    """Apply one security option (the caller checked that it is one)."""
    option = SocketOption(option)
    if option == _O.MECHANISM:
        raise ZMQError(errno.EINVAL, "MECHANISM is read-only: set PLAIN_* or CURVE_* options")
    if option in (_O.PLAIN_SERVER, _O.CURVE_SERVER):
        on = _flag(option, value)
        wanted = b"PLAIN" if option == _O.PLAIN_SERVER else b"CURVE"
        if on and wanted == b"CURVE":
            _require_curve()
        opts.as_server = on
        opts.mechanism = wanted if on else b"NULL"
    elif option in (_O.PLAIN_USERNAME, _O.PLAIN_PASSWORD):
        raw = _short_bytes(option, value, 1)
        if option == _O.PLAIN_USERNAME:
            opts.plain_username = raw
        else:
            opts.plain_password = raw
        opts.as_server = 0
        opts.mechanism = b"PLAIN"
    elif option in _KEY_ATTRS:
        try:
            raw = key_to_raw(value, option.name)
        except ValueError as exc:
            raise ZMQError(errno.EINVAL, str(exc)) from None
        _require_curve()
        setattr(opts, _KEY_ATTRS[option], raw)
        if option == _O.CURVE_SERVERKEY:
            opts.as_server = 0
        opts.mechanism = b"CURVE"
    elif option == _O.ZAP_DOMAIN:
        opts.zap_domain = _short_bytes(option, value, 0)
    else:
        if not isinstance(value, int):
            raise TypeError(f"option {option.name} takes an int, not {value!r}")
        opts.zap_enforce_domain = int(value != 0)


def get_security_option(opts: Options, option: int) -> int | bytes:
    """Read one security option; CURVE keys read back as Z85 (all zeros when unset)."""
    option = SocketOption(option)
    if option == _O.MECHANISM:
        return int(SecurityMechanism[opts.mechanism.decode()])
    if option == _O.PLAIN_SERVER:
        return int(bool(opts.as_server) and opts.mechanism == b"PLAIN")
    if option == _O.CURVE_SERVER:
        return int(bool(opts.as_server) and opts.mechanism == b"CURVE")
    if option == _O.PLAIN_USERNAME:
        return opts.plain_username
    if option == _O.PLAIN_PASSWORD:
        return opts.plain_password
    if option in _KEY_ATTRS:
        return z85.encode(getattr(opts, _KEY_ATTRS[option]) or bytes(32))
    if option == _O.ZAP_DOMAIN:
        return opts.zap_domain
    return opts.zap_enforce_domain


def _require_curve() -> None:
    if not has_curve():
        raise ZMQError(errno.EINVAL, NACL_MISSING)


def check_credentials(opts: Options) -> None:
    """Before a bind or connect: CURVE has the keys it needs (a missing public key is derived)."""
    if opts.mechanism != b"CURVE":
        return
    if not opts.curve_secretkey:
        raise ZMQError(errno.EINVAL, "CURVE needs CURVE_SECRETKEY (and CURVE_PUBLICKEY)")
    if not opts.as_server and not opts.curve_serverkey:
        raise ZMQError(errno.EINVAL, "a CURVE client needs CURVE_SERVERKEY")
    if not opts.curve_publickey:
        opts.curve_publickey = z85.decode(curve_public(opts.curve_secretkey))
