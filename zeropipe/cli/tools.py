"""What the ``zeropipe`` sub-commands that talk to a ZeroMQ network do.

``send``, ``recv`` and ``monitor`` open one socket of any type, bind or connect it, and
exchange messages with whatever ZeroMQ peer is there (zeropipe, libzmq, any language);
``football`` publishes and watches a feed of match events. Each function takes plain values
(``zeropipe.cli.main`` parses the command line), writes to ``out``/``err`` and returns the
exit status: 0 done, 1 failed (a timeout, a missing reply, a ZeroMQ error), 130 interrupted.

Messages travel as text: each frame is the UTF-8 of a command-line argument or input line,
or hex with ``--hex``. Received frames print as text when they are printable UTF-8 and as
``0x``-prefixed hex otherwise, joined by a delimiter, one message per line.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TextIO

import zeropipe as zmq
from zeropipe import Context, Event, Socket, SocketType, ZMQError
from zeropipe.utils.monitor import MonitorMessage, recv_monitor_message

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

DEFAULT_DELIMITER = "|"

COUNTRIES = ("netherlands", "brazil", "spain", "argentina", "germany", "japan", "morocco")
FOOTBALL_EVENTS = ("goal", "yellow card", "red card", "corner", "penalty", "free kick", "offside")
FOOTBALL_CONTROL = "$"
"""Prefix of control messages in a football feed (examples/football.py's "$hello", "$end")."""


class ToolError(Exception):
    """A failure reported as one line on stderr, with exit status 1."""


# -- plumbing ------------------------------------------------------------------------------


def _run(body: Callable[[Context], int], err: TextIO) -> int:
    """Run ``body`` with a fresh context; report errors; always end the context.

    On success the sockets close with their own LINGER; after an error or Ctrl-C nothing
    more is delivered.
    """
    ctx = zmq.Context()
    linger: int | None = 0
    try:
        status = body(ctx)
        linger = None
        return status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ToolError, ZMQError) as exc:
        print(f"zeropipe: {exc}", file=err, flush=True)
        return EXIT_FAILED
    finally:
        ctx.destroy(linger=linger)


def socket_type(name: str) -> SocketType:
    """The socket type called ``name`` (any case)."""
    try:
        return SocketType[name.upper()]
    except KeyError:
        names = ", ".join(t.name for t in SocketType)
        raise ToolError(f"unknown socket type {name!r} (one of {names})") from None


def open_socket(
    ctx: Context, kind: SocketType, *, linger: int = -1, identity: str | None = None
) -> Socket:
    """A socket of type ``kind`` with LINGER and, if given, a routing id."""
    try:
        sock: Socket = ctx.socket(kind)
    except ZMQError as exc:
        raise ToolError(f"cannot open a {kind.name} socket: {exc}") from None
    sock.setsockopt(zmq.LINGER, linger)
    if identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, identity.encode())
    return sock


def attach(sock: Socket, endpoint: str, bind: bool, err: TextIO) -> None:
    """Bind or connect; after a bind, tell stderr the real endpoint (the port of ``:*``)."""
    try:
        if bind:
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
    except ZMQError as exc:
        raise ToolError(f"cannot {'bind' if bind else 'connect'} {endpoint}: {exc}") from None
    if bind:
        print(f"bound to {sock.last_endpoint.decode()}", file=err, flush=True)


def render_frame(frame: bytes, as_hex: bool = False) -> str:
    """Printable UTF-8 as itself, anything else (or everything with ``as_hex``) as 0x-hex."""
    if not as_hex:
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if text.isprintable():
                return text
    return "0x" + frame.hex()


def render(
    frames: Sequence[bytes],
    *,
    as_hex: bool = False,
    as_json: bool = False,
    delimiter: str = DEFAULT_DELIMITER,
) -> str:
    """One message as one line: frames joined by ``delimiter``, or a JSON list of strings.

    In JSON, a frame is its text when it is UTF-8 (escaped by JSON), else 0x-hex.
    """
    if as_json:
        items = []
        for frame in frames:
            try:
                items.append(("0x" + frame.hex()) if as_hex else frame.decode("utf-8"))
            except UnicodeDecodeError:
                items.append("0x" + frame.hex())
        return json.dumps(items, ensure_ascii=False)
    return delimiter.join(render_frame(frame, as_hex) for frame in frames)


def parse_frames(text: str, delimiter: str | None, as_hex: bool) -> list[bytes]:
    """The frames of one message written as text (split at ``delimiter`` if given)."""
    parts = text.split(delimiter) if delimiter else [text]
    if not as_hex:
        return [part.encode("utf-8") for part in parts]
    frames = []
    for part in parts:
        digits = part[2:] if part[:2].lower() == "0x" else part
        try:
            frames.append(bytes.fromhex(digits))
        except ValueError:
            raise ToolError(f"not hex: {part!r}") from None
    return frames


def _rounds(count: int) -> Iterable[int]:
    return itertools.count() if count == 0 else range(count)


def outgoing(
    messages: Sequence[str],
    stdin: Iterable[str],
    *,
    multipart: bool = False,
    delimiter: str | None = None,
    as_hex: bool = False,
    count: int = 1,
) -> Iterator[list[bytes]]:
    """The messages to send, each a list of frames.

    From ``messages`` (one message each, or with ``multipart`` one message of all of them),
    repeated ``count`` times (0: forever); without ``messages``, from the lines of ``stdin``
    as they come, each sent ``count`` times (with ``multipart``, all lines are the frames of
    one message).
    """
    if messages:
        parsed = [parse_frames(text, delimiter, as_hex) for text in messages]
        batch = [[frame for frames in parsed for frame in frames]] if multipart else parsed
        for _ in _rounds(count):
            yield from batch
        return
    lines = (line.rstrip("\r\n") for line in stdin)
    if multipart:
        message = [frame for line in lines for frame in parse_frames(line, delimiter, as_hex)]
        for _ in _rounds(count):
            yield message
        return
    for line in lines:
        frames = parse_frames(line, delimiter, as_hex)
        for _ in _rounds(count):
            yield frames


# -- monitor events --------------------------------------------------------------------------


def format_event(event: MonitorMessage) -> str:
    """``NAME value endpoint`` of a monitor event ("HANDSHAKE_SUCCEEDED 0 tcp://...")."""
    number = int(event["event"])
    try:
        name = Event(number).name or str(number)
    except ValueError:
        name = str(number)
    endpoint = event["endpoint"].decode("utf-8", "replace")
    return f"{name} {event['value']} {endpoint}"


def _wait_connected(sock: Socket, monitor_sock: Socket | None, timeout: int) -> None:
    """Block until a peer is there to take messages (see ``send``)."""
    what = f"no peer within {timeout} ms"
    if monitor_sock is None:  # an XPUB
        if not sock.poll(timeout, zmq.POLLIN):
            raise ToolError(f"{what} (no subscription arrived)")
        sock.recv_multipart()  # the first subscription
        return
    deadline = None if timeout < 0 else time.monotonic() + timeout / 1000
    while True:
        left = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if not monitor_sock.poll(left):
            raise ToolError(what)
        if recv_monitor_message(monitor_sock)["event"] == Event.HANDSHAKE_SUCCEEDED:
            break
    sock.disable_monitor()
    monitor_sock.close()


# -- send ------------------------------------------------------------------------------------


def send(
    kind_name: str,
    endpoint: str,
    messages: Sequence[str] = (),
    *,
    bind: bool = False,
    multipart: bool = False,
    delimiter: str | None = None,
    as_hex: bool = False,
    count: int = 1,
    delay: float = 0.0,
    wait_connected: bool = False,
    timeout: int = -1,
    linger: int = -1,
    identity: str | None = None,
    stdin: Iterable[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``zeropipe send``: send messages; a REQ socket prints each reply.

    ``wait_connected`` waits before the first message until a peer can take it: until a
    peer completes its handshake (a monitor event), and for PUB until a first subscription
    arrives (PUB opens as an XPUB for this, which SUB peers accept like a PUB): otherwise,
    a connect returns at once and messages queue for a peer that may never come, and a PUB
    drops what it sends before subscriptions arrive (the slow joiner). ``timeout`` (ms, -1
    forever) bounds that wait, each send, and each REQ reply.
    """
    output = out or sys.stdout
    lines: Iterable[str] = sys.stdin if stdin is None else stdin

    def body(ctx: Context) -> int:
        kind = socket_type(kind_name)
        opened = SocketType.XPUB if wait_connected and kind == SocketType.PUB else kind
        sock = open_socket(ctx, opened, linger=linger, identity=identity)
        sock.setsockopt(zmq.SNDTIMEO, timeout)
        sock.setsockopt(zmq.RCVTIMEO, timeout)
        monitor_sock = None
        if wait_connected and sock.socket_type != SocketType.XPUB:
            monitor_sock = sock.get_monitor_socket(Event.HANDSHAKE_SUCCEEDED)
        attach(sock, endpoint, bind, error)
        if wait_connected:
            _wait_connected(sock, monitor_sock, timeout)
        messages_out = outgoing(
            messages, lines, multipart=multipart, delimiter=delimiter, as_hex=as_hex, count=count
        )
        for number, frames in enumerate(messages_out):
            if number and delay:
                time.sleep(delay)
            try:
                sock.send_multipart(frames)
            except zmq.Again:
                raise ToolError(f"could not send within {timeout} ms") from None
            if kind == SocketType.REQ:
                try:
                    reply = sock.recv_multipart()
                except zmq.Again:
                    raise ToolError(f"no reply within {timeout} ms") from None
                line = render(reply, as_hex=as_hex, delimiter=delimiter or DEFAULT_DELIMITER)
                print(line, file=output, flush=True)
        return EXIT_OK

    error = err or sys.stderr
    return _run(body, error)


# -- recv ------------------------------------------------------------------------------------


def recv(
    kind_name: str,
    endpoint: str,
    *,
    bind: bool = False,
    subscribe: Sequence[str] = (),
    count: int = 0,
    timeout: int = -1,
    as_hex: bool = False,
    as_json: bool = False,
    delimiter: str = DEFAULT_DELIMITER,
    reply: str | None = None,
    linger: int = -1,
    identity: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``zeropipe recv``: print each message received, one per line.

    SUB subscribes to each topic of ``subscribe`` (to everything if there is none). REP
    answers each request with ``reply`` or, without it, with the request itself. Stops
    after ``count`` messages (0: never) or ``timeout`` ms without one; the latter is a
    failure only when ``count`` messages were expected.
    """
    output = out or sys.stdout
    error = err or sys.stderr

    def body(ctx: Context) -> int:
        kind = socket_type(kind_name)
        if subscribe and kind != SocketType.SUB:
            raise ToolError("--subscribe is for SUB sockets")
        if reply is not None and kind != SocketType.REP:
            raise ToolError("--reply is for REP sockets")
        sock = open_socket(ctx, kind, linger=linger, identity=identity)
        sock.setsockopt(zmq.RCVTIMEO, timeout)
        sock.setsockopt(zmq.SNDTIMEO, timeout)
        if kind == SocketType.SUB:
            for topic in subscribe or [""]:
                sock.subscribe(topic)
        attach(sock, endpoint, bind, error)
        received = 0
        while count == 0 or received < count:
            try:
                frames = sock.recv_multipart()
            except zmq.Again:
                if count:
                    raise ToolError(
                        f"no message within {timeout} ms ({received} of {count} received)"
                    ) from None
                return EXIT_OK
            received += 1
            line = render(frames, as_hex=as_hex, as_json=as_json, delimiter=delimiter)
            print(line, file=output, flush=True)
            if kind == SocketType.REP:
                sock.send_multipart(frames if reply is None else [reply.encode("utf-8")])
        return EXIT_OK

    return _run(body, error)


# -- monitor ---------------------------------------------------------------------------------


def monitor(
    kind_name: str,
    endpoint: str,
    *,
    bind: bool = False,
    count: int = 0,
    timeout: int = -1,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``zeropipe monitor``: print the monitor events of a socket, ``NAME value endpoint``.

    The socket itself only connects (or binds): it never reads or writes a message. Stops
    after ``count`` events (0: never) or ``timeout`` ms without one (then a failure when
    ``count`` events were expected).
    """
    output = out or sys.stdout
    error = err or sys.stderr

    def body(ctx: Context) -> int:
        sock = open_socket(ctx, socket_type(kind_name), linger=0)
        monitor_sock = sock.get_monitor_socket()
        attach(sock, endpoint, bind, error)
        seen = 0
        while count == 0 or seen < count:
            if not monitor_sock.poll(timeout):
                if count:
                    raise ToolError(f"no event within {timeout} ms ({seen} of {count} seen)")
                return EXIT_OK
            print(format_event(recv_monitor_message(monitor_sock)), file=output, flush=True)
            seen += 1
        return EXIT_OK

    return _run(body, error)


# -- football --------------------------------------------------------------------------------


def football_publish(
    bind: str,
    *,
    events: int = 0,
    interval: float = 0.5,
    countries: Sequence[str] = COUNTRIES,
    seed: int | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``zeropipe football publish``: a live feed of "<country> <event>" messages on PUB.

    Publishes ``events`` events (0: until interrupted), one every ``interval`` seconds, and
    prints each. It is live: a watcher sees the events published after its subscription
    reached the publisher.
    """
    output = out or sys.stdout
    error = err or sys.stderr
    rng = random.Random(seed)

    def body(ctx: Context) -> int:
        publisher = open_socket(ctx, SocketType.PUB, linger=0)
        attach(publisher, bind, True, error)
        for number in _rounds(events):
            if number and interval:
                time.sleep(interval)
            event = f"{rng.choice(countries)} {rng.choice(FOOTBALL_EVENTS)}"
            publisher.send_string(event)
            print(event, file=output, flush=True)
        return EXIT_OK

    return _run(body, error)


def football_watch(
    connect: str,
    countries: Sequence[str] = (),
    *,
    count: int = 0,
    timeout: int = -1,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``zeropipe football watch``: print the events of ``countries`` (all if none).

    Each country is a SUB prefix subscription. Stops after ``count`` events (0: never),
    after ``timeout`` ms without one (a failure when ``count`` events were expected), or at
    the "$end" of a match of examples/football.py, whose control messages it skips.
    """
    output = out or sys.stdout
    error = err or sys.stderr

    def body(ctx: Context) -> int:
        subscriber = open_socket(ctx, SocketType.SUB, linger=0)
        subscriber.setsockopt(zmq.RCVTIMEO, timeout)
        for country in countries or [""]:
            subscriber.subscribe(country)
        attach(subscriber, connect, False, error)
        seen = 0
        while count == 0 or seen < count:
            try:
                event = subscriber.recv_string()
            except zmq.Again:
                if count:
                    raise ToolError(
                        f"no event within {timeout} ms ({seen} of {count} seen)"
                    ) from None
                return EXIT_OK
            if event == FOOTBALL_CONTROL + "end":
                return EXIT_OK
            if event.startswith(FOOTBALL_CONTROL):
                continue
            print(event, file=output, flush=True)
            seen += 1
        return EXIT_OK

    return _run(body, error)
