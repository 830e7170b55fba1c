"""Constants with pyzmq's names and libzmq's numbers."""

from __future__ import annotations

import enum

from zeropipe.errors import EFSM, EMTHREAD, ENOCOMPATPROTO, ETERM
from zeropipe.protocol import SocketType


class SocketOption(enum.IntEnum):
    """Socket option numbers (zmq.h)."""

    HWM = 1
    AFFINITY = 4
    ROUTING_ID = 5
    SUBSCRIBE = 6
    UNSUBSCRIBE = 7
    RATE = 8
    RECOVERY_IVL = 9
    SNDBUF = 11
    RCVBUF = 12
    RCVMORE = 13
    FD = 14
    EVENTS = 15
    TYPE = 16
    LINGER = 17
    RECONNECT_IVL = 18
    BACKLOG = 19
    RECONNECT_IVL_MAX = 21
    MAXMSGSIZE = 22
    SNDHWM = 23
    RCVHWM = 24
    MULTICAST_HOPS = 25
    RCVTIMEO = 27
    SNDTIMEO = 28
    IPV4ONLY = 31
    LAST_ENDPOINT = 32
    ROUTER_MANDATORY = 33
    TCP_KEEPALIVE = 34
    TCP_KEEPALIVE_CNT = 35
    TCP_KEEPALIVE_IDLE = 36
    TCP_KEEPALIVE_INTVL = 37
    TCP_ACCEPT_FILTER = 38
    IMMEDIATE = 39
    XPUB_VERBOSE = 40
    ROUTER_RAW = 41
    IPV6 = 42
    MECHANISM = 43
    PLAIN_SERVER = 44
    PLAIN_USERNAME = 45
    PLAIN_PASSWORD = 46
    CURVE_SERVER = 47
    CURVE_PUBLICKEY = 48
    CURVE_SECRETKEY = 49
    CURVE_SERVERKEY = 50
    PROBE_ROUTER = 51
    REQ_CORRELATE = 52
    REQ_RELAXED = 53
    CONFLATE = 54
    ZAP_DOMAIN = 55
    ROUTER_HANDOVER = 56
    TOS = 57
    CONNECT_ROUTING_ID = 61
    HANDSHAKE_IVL = 66
    XPUB_NODROP = 69
    BLOCKY = 70
    XPUB_MANUAL = 71
    XPUB_WELCOME_MSG = 72
    INVERT_MATCHING = 74
    HEARTBEAT_IVL = 75
    HEARTBEAT_TTL = 76
    HEARTBEAT_TIMEOUT = 77
    XPUB_VERBOSER = 78
    CONNECT_TIMEOUT = 79
    TCP_MAXRT = 80
    THREAD_SAFE = 81
    ZAP_ENFORCE_DOMAIN = 93
    # Aliases, as in pyzmq.
    IDENTITY = 5
    CONNECT_RID = 61
    DELAY_ATTACH_ON_CONNECT = 39


class ContextOption(enum.IntEnum):
    IO_THREADS = 1
    MAX_SOCKETS = 2
    SOCKET_LIMIT = 3
    MAX_MSGSZ = 5
    BLOCKY = 70


class Flag(enum.IntFlag):
    DONTWAIT = 1
    NOBLOCK = 1
    SNDMORE = 2


class PollEvent(enum.IntFlag):
    POLLIN = 1
    POLLOUT = 2
    POLLERR = 4
    POLLPRI = 8


class Errno(enum.IntEnum):
    EAGAIN = 11
    EFAULT = 14
    EINVAL = 22
    ENOTSUP = 95
    EPROTONOSUPPORT = 93
    ENOBUFS = 105
    ENETDOWN = 100
    EADDRINUSE = 98
    EADDRNOTAVAIL = 99
    ECONNREFUSED = 111
    EINPROGRESS = 115
    ENOTSOCK = 88
    EMSGSIZE = 90
    EAFNOSUPPORT = 97
    ENETUNREACH = 101
    ECONNABORTED = 103
    ECONNRESET = 104
    ENOTCONN = 107
    ETIMEDOUT = 110
    EHOSTUNREACH = 113
    ENETRESET = 102
    EFSM = EFSM
    ENOCOMPATPROTO = ENOCOMPATPROTO
    ETERM = ETERM
    EMTHREAD = EMTHREAD


#: Option number -> (attribute of transports.Options, value kind).
#: Kinds: "int", "bytes", "str". Options not listed here are not supported yet.
SOCKET_OPTIONS: dict[int, tuple[str, str]] = {
    SocketOption.SNDHWM: ("sndhwm", "int"),
    SocketOption.RCVHWM: ("rcvhwm", "int"),
    SocketOption.LINGER: ("linger", "int"),
    SocketOption.SNDTIMEO: ("sndtimeo", "int"),
    SocketOption.RCVTIMEO: ("rcvtimeo", "int"),
    SocketOption.RECONNECT_IVL: ("reconnect_ivl", "int"),
    SocketOption.RECONNECT_IVL_MAX: ("reconnect_ivl_max", "int"),
    SocketOption.HANDSHAKE_IVL: ("handshake_ivl", "int"),
    SocketOption.HEARTBEAT_IVL: ("heartbeat_ivl", "int"),
    SocketOption.HEARTBEAT_TTL: ("heartbeat_ttl", "int"),
    SocketOption.HEARTBEAT_TIMEOUT: ("heartbeat_timeout", "int"),
    SocketOption.MAXMSGSIZE: ("maxmsgsize", "int"),
    SocketOption.ROUTING_ID: ("routing_id", "bytes"),
    SocketOption.BACKLOG: ("backlog", "int"),
    SocketOption.IPV6: ("ipv6", "int"),
    SocketOption.SNDBUF: ("sndbuf", "int"),
    SocketOption.RCVBUF: ("rcvbuf", "int"),
    SocketOption.TCP_KEEPALIVE: ("tcp_keepalive", "int"),
    SocketOption.TCP_KEEPALIVE_CNT: ("tcp_keepalive_cnt", "int"),
    SocketOption.TCP_KEEPALIVE_IDLE: ("tcp_keepalive_idle", "int"),
    SocketOption.TCP_KEEPALIVE_INTVL: ("tcp_keepalive_intvl", "int"),
    SocketOption.TOS: ("tos", "int"),
    SocketOption.IMMEDIATE: ("immediate", "int"),
    SocketOption.CONFLATE: ("conflate", "int"),
    SocketOption.INVERT_MATCHING: ("invert_matching", "int"),
    SocketOption.XPUB_VERBOSE: ("xpub_verbose", "int"),
    SocketOption.XPUB_VERBOSER: ("xpub_verboser", "int"),
    SocketOption.XPUB_MANUAL: ("xpub_manual", "int"),
    SocketOption.XPUB_NODROP: ("xpub_nodrop", "int"),
    SocketOption.XPUB_WELCOME_MSG: ("xpub_welcome_msg", "bytes"),
    SocketOption.REQ_RELAXED: ("req_relaxed", "int"),
    SocketOption.REQ_CORRELATE: ("req_correlate", "int"),
    SocketOption.ROUTER_MANDATORY: ("router_mandatory", "int"),
    SocketOption.ROUTER_HANDOVER: ("router_handover", "int"),
    SocketOption.PROBE_ROUTER: ("probe_router", "int"),
    SocketOption.CONNECT_ROUTING_ID: ("connect_routing_id", "bytes"),
    SocketOption.CONNECT_TIMEOUT: ("connect_timeout", "int"),
    SocketOption.TCP_MAXRT: ("tcp_maxrt", "int"),
    SocketOption.AFFINITY: ("affinity", "int"),
    SocketOption.RATE: ("rate", "int"),
    SocketOption.RECOVERY_IVL: ("recovery_ivl", "int"),
    SocketOption.MULTICAST_HOPS: ("multicast_hops", "int"),
}

#: Options that only some socket types accept (EINVAL on the others, as in libzmq).
TYPE_OPTIONS: dict[int, frozenset[SocketType]] = {
    **dict.fromkeys(
        (
            SocketOption.XPUB_VERBOSE,
            SocketOption.XPUB_VERBOSER,
            SocketOption.XPUB_MANUAL,
            SocketOption.XPUB_NODROP,
            SocketOption.XPUB_WELCOME_MSG,
        ),
        frozenset({SocketType.XPUB, SocketType.PUB}),
    ),
    SocketOption.REQ_RELAXED: frozenset({SocketType.REQ}),
    SocketOption.REQ_CORRELATE: frozenset({SocketType.REQ}),
    # libzmq's REP is a ROUTER inside: it takes the ROUTER options too.
    SocketOption.ROUTER_MANDATORY: frozenset({SocketType.ROUTER, SocketType.REP}),
    SocketOption.ROUTER_HANDOVER: frozenset({SocketType.ROUTER, SocketType.REP}),
    SocketOption.CONNECT_ROUTING_ID: frozenset({SocketType.ROUTER, SocketType.REP}),
    SocketOption.PROBE_ROUTER: frozenset(
        {SocketType.ROUTER, SocketType.DEALER, SocketType.REQ, SocketType.REP}
    ),
}

_O = SocketOption
#: The values libzmq accepts for each int option, as (lowest, highest); others: EINVAL.
OPTION_RANGES: dict[int, tuple[int, int]] = {
    **dict.fromkeys(
        (
            _O.LINGER,
            _O.SNDTIMEO,
            _O.RCVTIMEO,
            _O.RECONNECT_IVL,
            _O.SNDBUF,
            _O.RCVBUF,
            _O.TCP_KEEPALIVE_CNT,
            _O.TCP_KEEPALIVE_IDLE,
            _O.TCP_KEEPALIVE_INTVL,
        ),
        (-1, 2**31 - 1),
    ),
    **dict.fromkeys(
        (
            _O.SNDHWM,
            _O.RCVHWM,
            _O.RECONNECT_IVL_MAX,
            _O.HANDSHAKE_IVL,
            _O.HEARTBEAT_IVL,
            _O.HEARTBEAT_TIMEOUT,
            _O.BACKLOG,
            _O.TOS,
            _O.CONNECT_TIMEOUT,
            _O.TCP_MAXRT,
            _O.RECOVERY_IVL,
            _O.XPUB_VERBOSE,
            _O.XPUB_VERBOSER,
            _O.XPUB_MANUAL,
            _O.XPUB_NODROP,
            _O.REQ_RELAXED,
            _O.REQ_CORRELATE,
            _O.ROUTER_MANDATORY,
            _O.ROUTER_HANDOVER,
            _O.PROBE_ROUTER,
        ),
        (0, 2**31 - 1),
    ),
    **dict.fromkeys((_O.IPV6, _O.IMMEDIATE, _O.CONFLATE), (0, 1)),
    _O.TCP_KEEPALIVE: (-1, 1),
    _O.RATE: (1, 2**31 - 1),
    _O.MULTICAST_HOPS: (1, 2**31 - 1),
    # Sent in deciseconds on the wire: negative means 0, the rest is rounded down.
    _O.HEARTBEAT_TTL: (-(2**31), 6_553_599),
}

#: Options that can be read but not written.
READ_ONLY_OPTIONS = frozenset(
    {
        SocketOption.TYPE,
        SocketOption.RCVMORE,
        SocketOption.EVENTS,
        SocketOption.LAST_ENDPOINT,
        SocketOption.FD,
        SocketOption.THREAD_SAFE,
    }
)

BYTES_OPTIONS = frozenset(
    {
        SocketOption.ROUTING_ID,
        SocketOption.LAST_ENDPOINT,
        SocketOption.SUBSCRIBE,
        SocketOption.UNSUBSCRIBE,
    }
)

__all__ = [
    "BYTES_OPTIONS",
    "OPTION_RANGES",
    "READ_ONLY_OPTIONS",
    "SOCKET_OPTIONS",
    "TYPE_OPTIONS",
    "ContextOption",
    "Errno",
    "Flag",
    "PollEvent",
    "SocketOption",
    "SocketType",
]
