"""zeropipe's constants and names against pyzmq's: ``import zeropipe as zmq`` must just work.

Every constant that exists in both must carry the same number (libzmq's), and the names
everyday pyzmq code touches must exist in zeropipe with the same shape.
"""

from __future__ import annotations

import enum
import errno

import pytest
import zmq as pyzmq

import zeropipe

pytestmark = pytest.mark.timeout(30)

ENUMS = ["SocketType", "SocketOption", "Flag", "PollEvent", "Errno", "ContextOption"]


def _shared_members(enum_name: str) -> list[tuple[str, int, int]]:
    ours: type[enum.Enum] = getattr(zeropipe, enum_name)
    theirs: type[enum.Enum] = getattr(pyzmq, enum_name)
    return [
        (name, int(member.value), int(theirs.__members__[name].value))
        for name, member in ours.__members__.items()
        if name in theirs.__members__
    ]


@pytest.mark.parametrize("enum_name", ENUMS)
def test_enum_exists_and_is_an_int_enum(enum_name: str) -> None:
    ours = getattr(zeropipe, enum_name)
    assert issubclass(ours, enum.Enum)
    assert all(isinstance(member, int) for member in ours)


@pytest.mark.parametrize("enum_name", ENUMS)
def test_enum_members_shared_with_pyzmq_have_the_same_value(enum_name: str) -> None:
    shared = _shared_members(enum_name)
    assert shared, f"{enum_name}: no member in common with pyzmq"
    mismatched = [(name, ours, theirs) for name, ours, theirs in shared if ours != theirs]
    assert not mismatched, f"{enum_name}: (name, zeropipe, pyzmq) differ: {mismatched}"


@pytest.mark.parametrize(
    ("enum_name", "names"),
    [
        ("SocketType", ["PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH"]),
        (
            "SocketOption",
            [
                "LINGER",
                "SNDHWM",
                "RCVHWM",
                "RCVTIMEO",
                "SNDTIMEO",
                "LAST_ENDPOINT",
                "IDENTITY",
                "ROUTING_ID",
                "RCVMORE",
                "TYPE",
                "EVENTS",
                "FD",
                "RECONNECT_IVL",
                "RECONNECT_IVL_MAX",
                "BACKLOG",
                "MAXMSGSIZE",
                "SNDBUF",
                "RCVBUF",
                "IPV6",
                "HEARTBEAT_IVL",
                "HANDSHAKE_IVL",
                "TCP_KEEPALIVE",
            ],
        ),
        ("Flag", ["NOBLOCK", "DONTWAIT", "SNDMORE"]),
        ("PollEvent", ["POLLIN", "POLLOUT", "POLLERR"]),
        (
            "Errno",
            [
                "EAGAIN",
                "EINVAL",
                "ENOTSUP",
                "EPROTONOSUPPORT",
                "EADDRINUSE",
                "EADDRNOTAVAIL",
                "ENOTSOCK",
                "EFSM",
                "ETERM",
                "ENOCOMPATPROTO",
                "EMTHREAD",
            ],
        ),
        ("ContextOption", ["IO_THREADS", "MAX_SOCKETS", "SOCKET_LIMIT", "MAX_MSGSZ"]),
    ],
)
def test_everyday_enum_members_are_shared(enum_name: str, names: list[str]) -> None:
    ours = getattr(zeropipe, enum_name)
    theirs = getattr(pyzmq, enum_name)
    for name in names:
        assert name in ours.__members__, f"zeropipe.{enum_name}.{name} is missing"
        assert int(ours[name]) == int(theirs[name]), name


def test_module_level_int_constants_match_pyzmq() -> None:
    """``zmq.PUSH``, ``zmq.LINGER``, ``zmq.EAGAIN``... : every int name shared at module level."""
    mismatched = []
    shared = 0
    for name in dir(zeropipe):
        if name.startswith("_") or not hasattr(pyzmq, name):
            continue
        ours, theirs = getattr(zeropipe, name), getattr(pyzmq, name)
        if isinstance(ours, bool) or not isinstance(ours, int):
            continue
        if isinstance(theirs, bool) or not isinstance(theirs, int):
            continue
        shared += 1
        if int(ours) != int(theirs):
            mismatched.append((name, int(ours), int(theirs)))
    assert shared > 50
    assert not mismatched, f"(name, zeropipe, pyzmq) differ: {mismatched}"


def test_zeromq_errnos_are_libzmqs() -> None:
    hausnumero = 156384712
    assert zeropipe.EFSM == pyzmq.EFSM == hausnumero + 51
    assert zeropipe.ENOCOMPATPROTO == pyzmq.ENOCOMPATPROTO == hausnumero + 52
    assert zeropipe.ETERM == pyzmq.ETERM == hausnumero + 53
    assert zeropipe.EMTHREAD == pyzmq.EMTHREAD == hausnumero + 54
    assert zeropipe.Errno.EFSM == pyzmq.Errno.EFSM
    assert zeropipe.Errno.ETERM == pyzmq.Errno.ETERM
    assert zeropipe.EAGAIN == errno.EAGAIN
    assert zeropipe.EINVAL == errno.EINVAL


EVERYDAY_NAMES = [
    "Context",
    "Socket",
    "Frame",
    "Message",
    "Poller",
    "select",
    "ZMQError",
    "Again",
    "ContextTerminated",
    "ZMQBindError",
    "NotDone",
    "PUSH",
    "PULL",
    "PAIR",
    "NOBLOCK",
    "DONTWAIT",
    "SNDMORE",
    "POLLIN",
    "POLLOUT",
    "LINGER",
    "SNDHWM",
    "RCVHWM",
    "RCVTIMEO",
    "SNDTIMEO",
    "LAST_ENDPOINT",
    "IDENTITY",
    "ROUTING_ID",
    "zmq_version_info",
    "pyzmq_version",
    "has",
    "strerror",
]


@pytest.mark.parametrize("name", EVERYDAY_NAMES)
def test_everyday_pyzmq_name_exists(name: str) -> None:
    assert hasattr(pyzmq, name), f"the test is wrong: pyzmq has no {name}"
    assert hasattr(zeropipe, name), f"zeropipe.{name} is missing"
    ours, theirs = getattr(zeropipe, name), getattr(pyzmq, name)
    if isinstance(theirs, int):
        assert isinstance(ours, int)
        assert int(ours) == int(theirs)
    elif isinstance(theirs, type):
        assert isinstance(ours, type)
    else:
        assert callable(ours)


def test_message_option_more_exists() -> None:
    """``frame.get(zmq.MORE)`` is how pyzmq code asks a Frame whether more parts follow."""
    assert pyzmq.MORE == 1
    assert hasattr(zeropipe, "MORE"), "zeropipe.MORE is missing"
    assert zeropipe.MORE == pyzmq.MORE
    assert zeropipe.Frame(b"x").get(zeropipe.MORE) == 0


def test_socket_type_names_are_int_like() -> None:
    assert zeropipe.PUSH == 8
    assert zeropipe.PULL == 7
    assert zeropipe.PAIR == 0
    assert zeropipe.NOBLOCK == zeropipe.DONTWAIT == 1
    assert zeropipe.SNDMORE == 2
    assert zeropipe.POLLIN == 1
    assert zeropipe.POLLOUT == 2
    assert zeropipe.POLLIN | zeropipe.POLLOUT == 3


def test_exception_hierarchy_matches_pyzmq() -> None:
    assert issubclass(zeropipe.ZMQError, Exception)
    assert issubclass(zeropipe.Again, zeropipe.ZMQError)
    assert issubclass(zeropipe.ContextTerminated, zeropipe.ZMQError)
    assert issubclass(zeropipe.ZMQBindError, Exception)
    assert issubclass(zeropipe.NotDone, Exception)
    # The same relations hold in pyzmq (guards the test itself).
    assert issubclass(pyzmq.Again, pyzmq.ZMQError)
    assert issubclass(pyzmq.ContextTerminated, pyzmq.ZMQError)


def test_zmqerror_has_errno_and_strerror() -> None:
    err = zeropipe.ZMQError(errno.EINVAL)
    assert err.errno == errno.EINVAL
    assert isinstance(err.strerror, str)
    assert err.strerror
    assert err.strerror == pyzmq.ZMQError(errno.EINVAL).strerror
    assert str(err) == err.strerror
    custom = zeropipe.ZMQError(errno.EADDRINUSE, "custom message")
    assert custom.errno == errno.EADDRINUSE
    assert custom.strerror == "custom message"


def test_zmqerror_can_be_raised_and_caught() -> None:
    with pytest.raises(zeropipe.ZMQError) as info:
        raise zeropipe.ZMQError(zeropipe.EFSM)
    assert info.value.errno == zeropipe.EFSM
    assert info.value.strerror == pyzmq.strerror(pyzmq.EFSM)


def test_again_is_a_zmqerror_with_eagain() -> None:
    err = zeropipe.Again()
    assert isinstance(err, zeropipe.ZMQError)
    assert err.errno == errno.EAGAIN == zeropipe.EAGAIN
    assert err.strerror
    with pytest.raises(zeropipe.ZMQError) as info:
        raise zeropipe.Again()
    assert info.value.errno == errno.EAGAIN


def test_context_terminated_has_eterm() -> None:
    err = zeropipe.ContextTerminated()
    assert isinstance(err, zeropipe.ZMQError)
    assert err.errno == zeropipe.ETERM == pyzmq.ETERM


@pytest.mark.parametrize(
    "code",
    [errno.EAGAIN, errno.EINVAL, errno.EADDRINUSE, errno.ENOTSOCK, errno.EPROTONOSUPPORT],
)
def test_strerror_of_system_errnos_matches_pyzmq(code: int) -> None:
    assert zeropipe.strerror(code) == pyzmq.strerror(code)


@pytest.mark.parametrize("name", ["EFSM", "ENOCOMPATPROTO", "ETERM", "EMTHREAD"])
def test_strerror_of_zeromq_errnos_matches_pyzmq(name: str) -> None:
    code = getattr(pyzmq, name)
    assert zeropipe.strerror(code) == pyzmq.strerror(code)


def test_version_functions() -> None:
    info = zeropipe.zmq_version_info()
    assert isinstance(info, tuple)
    assert len(info) == 3
    assert all(isinstance(part, int) for part in info)
    assert info >= (4, 0, 0)
    assert zeropipe.zmq_version() == ".".join(map(str, info))
    assert isinstance(zeropipe.pyzmq_version(), str)
    assert zeropipe.pyzmq_version()


def test_has_reports_ipc_and_rejects_unknown() -> None:
    assert zeropipe.has("ipc") is True
    assert zeropipe.has("no-such-capability") is False


def test_message_is_frame() -> None:
    assert zeropipe.Message is zeropipe.Frame
    frame = zeropipe.Frame(b"abc")
    assert len(frame) == 3
    assert frame.bytes == b"abc"
