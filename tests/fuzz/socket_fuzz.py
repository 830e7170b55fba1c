"""Socket-level fuzzing of a zeropipe server: hostile bytes over tcp, and a good peer that must
keep getting through.

    python -m tests.fuzz.socket_fuzz --seconds 60 --mechanism null|plain|curve [--seed N]

A zeropipe PULL binds on tcp (NULL; PLAIN or CURVE with a zeropipe ThreadAuthenticator). In a
loop, each round opens one to ``--parallel`` raw TCP connections that send fuzzed bytes, built
from real handshakes (recorded at start-up between in-memory zeropipe Connections) and mutated
(tests/fuzz/mutate.py: bit flips, truncations, dropped, duplicated, swapped or rewritten
frames, lying sizes, garbage from some frame on), or plain garbage, or a live zeropipe client
Connection driven over the socket whose output has one frame mutated (the only way past a
CURVE cookie); some connections are reset at once. Each connection's bytes come from
``Random(f"{seed}:{index}")``.

After every round a good zeropipe PUSH, connected from the start, sends a message that must
arrive within ``--deliver-timeout`` (1 s); every ``--fresh-every`` rounds a new good PUSH
connects (a full handshake, ZAP included) and must get a message through as well. The run
fails (exit status 1, with the seed, the connection and its bytes) when:

* an ERROR record or one with a traceback reaches the ``zeropipe`` loggers, or an exception
  escapes a thread (zeropipe catches a failing callback and logs it: that is how an exception
  other than RemoteProtocolError shows up here);
* a good message does not arrive in time;
* with CURVE, a message arrives that no honest encoder of this run produced;
* the process's RSS grows by more than ``--max-rss-growth-mb`` over its value after warm-up;
* once every fuzz connection is closed, the idle process burns CPU (more than half of a second
  of CPU time in one second), file descriptors are still open, or zeropipe objects
  (connection state, pipes, ZAP requests...) are still alive in proportion to the connections
  served: a count of live objects per zeropipe class is taken before the first fuzz connection
  and at the end (a leak);
* a round hangs for ``--hang-timeout`` seconds (every thread's stack is dumped, exit 1).

``--replay SEED:INDEX`` runs one connection again (a CURVE server's keys differ from run to
run, so a live CURVE connection replays its plan, not its bytes). ``--inject`` makes the run
fail on purpose, to check that the oracles do.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import logging
import os
import random
import resource
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

import nacl.bindings

import zeropipe as zmq
from zeropipe.auth import CURVE_ALLOW_ANY, ThreadAuthenticator
from zeropipe.protocol import (
    Connection,
    ConnectionState,
    RemoteProtocolError,
    Security,
    SocketType,
    ZapReply,
    ZapRequest,
)

from .mutate import OPS, FrameCutter, Mutation, Mutator, random_bytes, random_mutation

USERNAME, PASSWORD = b"admin", b"secret"
#: How each connection is used (a mode twice is twice as likely); "reset" connects and aborts
#: at once (RST), before the server has even sent its greeting, as port scanners do.
MODES = ("garbage", "mutated", "mutated", "live", "live", "half", "reset")
READ_SILENCE_S = 0.03
"""How long a fuzz connection waits for more bytes from the server before it moves on."""
LIVE_WAIT_S = 0.3
"""How long a live client waits for the server's next handshake command."""
TERM_TIMEOUT_S = 10.0
IDLE_S = 1.0
"""How long the process idles at the end, to see that it does not spin."""
RELEASE_WAIT_S = 5.0
"""How long closed connections may take to be released once every fuzz connection is closed."""
KEPT_OBJECTS = 16
"""How many more objects of one zeropipe class may be alive at the end than before the first
fuzz connection, at least: a socket remembers the last pipe it read from, a connection that
broke before its handshake began keeps its (small) state until its handshake timer is due,
and so on. A per-connection leak shows as growth in proportion to the connections, which
``check_released`` also allows a tenth of."""


class Failure(Exception):
    """An oracle failed."""


# -- the peers -------------------------------------------------------------------------------


@dataclass
class Keys:
    server_public: bytes = b""
    server_secret: bytes = b""
    client_public: bytes = b""
    client_secret: bytes = b""

    @classmethod
    def new(cls) -> Keys:
        server_public, server_secret = nacl.bindings.crypto_box_keypair()
        client_public, client_secret = nacl.bindings.crypto_box_keypair()
        return cls(server_public, server_secret, client_public, client_secret)


def server_security(mechanism: str, keys: Keys) -> Security:
    if mechanism == "plain":
        return Security(b"PLAIN", as_server=True)
    if mechanism == "curve":
        return Security(
            b"CURVE",
            as_server=True,
            public_key=keys.server_public,
            secret_key=keys.server_secret,
            zap=True,
        )
    return Security(b"NULL")


def client_security(mechanism: str, keys: Keys, password: bytes = PASSWORD) -> Security:
    if mechanism == "plain":
        return Security(b"PLAIN", username=USERNAME, password=password)
    if mechanism == "curve":
        return Security(
            b"CURVE",
            public_key=keys.client_public,
            secret_key=keys.client_secret,
            server_key=keys.server_public,
        )
    return Security(b"NULL")


def configure(sock: zmq.Socket, mechanism: str, keys: Keys, server: bool) -> None:
    """Security options of a good zeropipe socket."""
    sock.linger = 0
    if mechanism == "plain":
        if server:
            sock.plain_server = True
        else:
            sock.plain_username = USERNAME
            sock.plain_password = PASSWORD
    elif mechanism == "curve":
        if server:
            sock.curve_server = True
            sock.curve_secretkey = keys.server_secret
            sock.curve_publickey = keys.server_public
        else:
            sock.curve_serverkey = keys.server_public
            sock.curve_secretkey = keys.client_secret
            sock.curve_publickey = keys.client_public


def client_connection(mechanism: str, keys: Keys, rng: random.Random) -> Connection:
    """An honest client Connection (now and then of a type or with a password PULL refuses)."""
    socket_type = SocketType.PUSH if rng.random() < 0.9 else rng.choice(list(SocketType)[:11])
    password = PASSWORD if rng.random() < 0.9 else b"wrong"
    return Connection(
        socket_type,
        routing_id=b"fuzz" if socket_type in (SocketType.DEALER, SocketType.ROUTER) else b"",
        security=client_security(mechanism, keys, password),
    )


def traffic(rng: random.Random, tag: str) -> list[list[bytes] | tuple[int, bytes]]:
    """A few messages (payloads ``fuzz:...``, some multipart, now and then 70 KB) and PINGs."""
    items: list[list[bytes] | tuple[int, bytes]] = []
    for k in range(rng.randrange(1, 6)):
        if rng.random() < 0.2:
            items.append((rng.randrange(0x10000), rng.randbytes(rng.randrange(20))))
            continue
        frames = []
        for part in range(rng.choice((1, 1, 1, 2, 3))):
            body = f"fuzz:{tag}:{k}:{part}:".encode()
            size = 70_000 if rng.random() < 0.05 else rng.randrange(300)
            frames.append(body + rng.randbytes(size))
        items.append(frames)
    return items


def send_traffic(conn: Connection, items: list[list[bytes] | tuple[int, bytes]]) -> None:
    for item in items:
        if isinstance(item, tuple):
            conn.send_ping(*item)
        else:
            conn.send_message(list(item))


def record(mechanism: str, keys: Keys, rng: random.Random, tag: str) -> list[bytes]:
    """The frames an honest client sends a server of this run, through its first messages."""
    client = client_connection(mechanism, keys, rng)
    server = Connection(SocketType.PULL, as_server=True, security=server_security(mechanism, keys))
    cutter = FrameCutter()
    frames: list[bytes] = []
    items = traffic(rng, tag)
    client.initiate()
    server.initiate()
    sent = False
    for _ in range(20):
        out = client.data_to_send()
        frames += cutter.feed(out)
        try:
            if out:
                server.receive_data(out)
            event = server.next_event()
            while event is not None:
                if isinstance(event, ZapRequest):
                    granted = event.credentials[1:] != (b"wrong",)
                    server.zap_reply(ZapReply(200 if granted else 400))
                event = server.next_event()
            back = server.data_to_send()
            if back:
                client.receive_data(back)
        except RemoteProtocolError:
            break
        if client.state is ConnectionState.READY and not sent:
            sent = True
            send_traffic(client, items)
        elif not out and not back:
            break
    return frames


# -- oracles ---------------------------------------------------------------------------------


class FailOnError(logging.Handler):
    """Remembers ERROR records and records with a traceback; counts warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures: list[str] = []
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.failures.append(self.format(record))
        else:
            self.warnings += 1


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


#: Cancelled timers wait in the reactor's heap until they are due (30 s for a handshake), but
#: hold nothing: a bounded cost, left out of the census.
NOT_COUNTED = frozenset({"Timer"})


def zeropipe_kind(obj: object) -> str | None:
    """The class name of a zeropipe object that the census counts, else None."""
    kind = type(obj)
    module = kind.__dict__.get("__module__", "")  # some C types' __module__ is a descriptor
    if isinstance(module, str) and module.startswith("zeropipe."):
        name = kind.__qualname__
        return None if name in NOT_COUNTED else name
    return None


def zeropipe_census() -> dict[str, int]:
    """How many objects of each zeropipe class are alive (after a full collection)."""
    gc.collect()
    census: dict[str, int] = {}
    for obj in gc.get_objects():
        name = zeropipe_kind(obj)
        if name is not None:
            census[name] = census.get(name, 0) + 1
    return census


def held_by(obj: object, depth: int = 8, ignore: tuple[object, ...] = ()) -> str:
    """A chain of objects that keep ``obj`` alive (types, and a bound method's name), leaving
    out the containers in ``ignore`` (the caller's own)."""
    chain = []
    seen = {id(obj), *map(id, ignore)}
    for _ in range(depth):
        holder = None
        for referrer in gc.get_referrers(obj):  # the list is gone before the next call
            if id(referrer) not in seen and type(referrer).__name__ != "frame":
                holder = referrer
                break
        if holder is None:
            break
        obj = holder
        seen.add(id(obj))
        name = type(obj).__name__
        if hasattr(obj, "__func__"):
            name += f" {obj.__func__.__qualname__}"
        chain.append(name)
    return "held by " + " <- ".join(chain)


# -- one fuzz connection ---------------------------------------------------------------------


@dataclass
class Attempt:
    """What one fuzz connection did (reported when something fails)."""

    index: int
    mode: str = ""
    mutation: Mutation | None = None
    sent: bytearray = field(default_factory=bytearray)
    closed_by_server: bool = False

    def describe(self, seed: int, mechanism: str) -> str:
        head = bytes(self.sent[:1024]).hex()
        more = f" (+{len(self.sent) - 1024} bytes)" if len(self.sent) > 1024 else ""
        mutation = "none"
        if self.mutation is not None:
            m = self.mutation
            mutation = (
                f"{m.op} of frame {m.index} (bits {m.positions}, size {m.size}, "
                f"payload {m.payload[:32].hex()}{'...' if len(m.payload) > 32 else ''})"
            )
        return (
            f"connection {self.index} (replay: --mechanism {mechanism} --replay "
            f"{seed}:{self.index}), "
            f"mode {self.mode}, mutation: {mutation}\n    sent {len(self.sent)} bytes: "
            f"{head}{more}"
        )


class Fuzzer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mechanism: str = args.mechanism
        self.seed: int = args.seed
        self.keys = Keys.new()
        self.ctx = zmq.Context()
        self.auth: ThreadAuthenticator | None = None
        self.log_handler = FailOnError()
        self.thread_errors: list[str] = []
        self.known_frames: set[bytes] = set()
        self.stats: dict[str, int] = {}
        self.good_seq = 0
        self.fresh_seq = 0
        self.delivered = 0
        self.rss_base = 0
        self.rss_max = 0
        self.fds_base = 0
        self.sockets: list[zmq.Socket] = []
        self.round_attempts: list[Attempt] = []
        self.fuzz_seconds = 0.0
        self.census_base: dict[str, int] = {}
        self.base_ids: set[int] = set()

    # -- set-up / tear-down --

    def start(self) -> None:
        logger = logging.getLogger("zeropipe")
        logger.addHandler(self.log_handler)
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
        threading.excepthook = self._thread_died
        if self.mechanism != "null":
            self.auth = ThreadAuthenticator(self.ctx)
            self.auth.start()
            self.auth.configure_plain("*", {USERNAME.decode(): PASSWORD.decode()})
            self.auth.configure_curve("*", CURVE_ALLOW_ANY)
        self.pull = self._socket(zmq.PULL, server=True)
        self.pull.bind("tcp://127.0.0.1:*")
        endpoint = self.pull.last_endpoint
        self.endpoint = endpoint.decode() if isinstance(endpoint, bytes) else endpoint
        host, port = self.endpoint.rsplit(":", 1)
        self.address = (host.replace("tcp://", ""), int(port))
        self.good = self._socket(zmq.PUSH, server=False)
        self.good.connect(self.endpoint)
        rng = random.Random(f"{self.seed}:recordings")
        self.recordings = [record(self.mechanism, self.keys, rng, f"rec{i}") for i in range(6)]
        for frames in self.recordings:
            self._learn(frames)
        self.check_good()
        self.fds_base = open_fds()
        self.census_base = zeropipe_census()
        self.base_ids = {id(o) for o in gc.get_objects() if zeropipe_kind(o) is not None}

    def _socket(self, kind: int, server: bool) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        configure(sock, self.mechanism, self.keys, server)
        sock.rcvtimeo = int(self.args.deliver_timeout * 1000)
        sock.sndtimeo = int(self.args.deliver_timeout * 1000)
        self.sockets.append(sock)
        return sock

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        self.thread_errors.append(f"{args.thread}: {args.exc_type.__name__}: {args.exc_value}")

    def stop(self) -> None:
        for sock in self.sockets:
            sock.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        done = threading.Event()
        threading.Thread(target=lambda: (self.ctx.term(), done.set()), daemon=True).start()
        if not done.wait(TERM_TIMEOUT_S):
            raise Failure(f"Context.term() still blocked after {TERM_TIMEOUT_S} s")
        logging.getLogger("zeropipe").removeHandler(self.log_handler)

    def _learn(self, frames: list[bytes]) -> None:
        """Remember the payload frames honest encoders of this run produced (CURVE oracle)."""
        for frame in frames:
            body = frame[9:] if frame[0] & 2 else frame[2:]
            if body.startswith(b"fuzz:"):
                self.known_frames.add(body)

    # -- the oracles --

    def check_oracles(self) -> None:
        problems = self.log_handler.failures + self.thread_errors
        if problems:
            raise Failure("zeropipe logged an error or a thread died:\n" + "\n".join(problems))
        rss = rss_bytes()
        self.rss_max = max(self.rss_max, rss)
        bound = self.args.max_rss_growth_mb * 1024 * 1024
        if self.rss_base and rss - self.rss_base > bound:
            raise Failure(
                f"RSS grew by {(rss - self.rss_base) >> 20} MiB (bound "
                f"{self.args.max_rss_growth_mb} MiB) over its {self.rss_base >> 20} MiB baseline"
            )

    def _receive_until(self, wanted: bytes, timeout: float, what: str) -> None:
        """Receive from the PULL until ``wanted`` arrives; judge what else arrives."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.pull.poll(int(left * 1000) + 1):
                raise Failure(f"{what} {wanted!r} did not arrive within {timeout} s")
            frames = [bytes(f) for f in self.pull.recv_multipart(zmq.NOBLOCK)]
            if frames == [wanted]:
                return
            self.delivered += 1
            if self.mechanism == "curve":
                forged = [f for f in frames if f not in self.known_frames]
                if forged:
                    raise Failure(f"CURVE delivered frames nobody sent: {forged[:3]!r}")

    def check_good(self, inject_starve: bool = False) -> None:
        self.good_seq += 1
        message = b"good:%d" % self.good_seq
        if not inject_starve:
            self.good.send(message)
        self._receive_until(message, self.args.deliver_timeout, "the good peer's message")

    def check_fresh(self) -> None:
        """A new good PUSH: connect, handshake (ZAP included), one message, close."""
        self.fresh_seq += 1
        push = self._socket(zmq.PUSH, server=False)
        try:
            push.connect(self.endpoint)
            message = b"fresh:%d" % self.fresh_seq
            push.send(message)
            self._receive_until(message, self.args.deliver_timeout + 1.0, "a new peer's message")
        finally:
            self.sockets.remove(push)
            push.close(linger=0)

    # -- fuzz connections --

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=2.0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _send(self, sock: socket.socket, attempt: Attempt, data: bytes, rng: random.Random) -> bool:
        """Send ``data`` in a few chunks; False if the server is gone (or not reading)."""
        pieces = rng.choice((1, 1, 2, 4))
        cuts = sorted(rng.randrange(len(data) + 1) for _ in range(pieces - 1))
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            try:
                sock.sendall(data[start:end])
            except (BrokenPipeError, ConnectionResetError):
                attempt.closed_by_server = True
                return False
            except TimeoutError:
                self._count("send timeouts")
                return False
            attempt.sent += data[start:end]
            if pieces > 1:
                time.sleep(0.001)
        return True

    def _drain(self, sock: socket.socket, attempt: Attempt, silence: float) -> None:
        """Read what the server says until it closes or stays quiet for ``silence`` s."""
        while True:
            ready, _, _ = select.select([sock], [], [], silence)
            if not ready:
                return
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                data = b""
            if not data:
                attempt.closed_by_server = True
                return

    def _close(self, sock: socket.socket, rng: random.Random, reset: bool = False) -> None:
        if reset or rng.random() < 0.3:  # an abortive close: RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def plan(self, index: int) -> tuple[random.Random, Attempt]:
        rng = random.Random(f"{self.seed}:{index}")
        return rng, Attempt(index, rng.choice(MODES))

    def stream_for(self, rng: random.Random, attempt: Attempt) -> bytes:
        """The bytes of a non-live attempt."""
        frames = rng.choice(self.recordings)
        if attempt.mode == "garbage":  # a clean prefix (maybe none), then garbage
            return b"".join(frames[: rng.randrange(len(frames) + 1)]) + random_bytes(rng)
        if attempt.mode == "half":  # a clean prefix cut anywhere, then a close
            whole = b"".join(frames)
            return whole[: rng.randrange(len(whole) + 1)]
        attempt.mutation = random_mutation(rng, len(frames), OPS)
        mutator = Mutator(attempt.mutation)
        return b"".join(mutator.frame(frame) for frame in frames)

    def run_stream(self, sock: socket.socket, rng: random.Random, attempt: Attempt) -> None:
        data = self.stream_for(rng, attempt)
        if self._send(sock, attempt, data, rng) and rng.random() < 0.5:
            self._drain(sock, attempt, READ_SILENCE_S)

    def run_live(self, sock: socket.socket, rng: random.Random, attempt: Attempt) -> None:
        """An honest client Connection over the socket, one frame of its output mutated."""
        conn = client_connection(self.mechanism, self.keys, rng)
        items = traffic(rng, f"live{attempt.index}")
        for item in items:
            if isinstance(item, list):
                self.known_frames.update(item)
        attempt.mutation = random_mutation(rng, 8, tuple(op for op in OPS if op != "tail"))
        mutator = Mutator(attempt.mutation)
        cutter = FrameCutter()
        conn.initiate()
        sent_traffic = False
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if conn.state is ConnectionState.READY and not sent_traffic:
                sent_traffic = True
                send_traffic(conn, items)
            out = conn.data_to_send()
            if out:
                data = b"".join(mutator.frame(f) for f in cutter.feed(out))
                if data and not self._send(sock, attempt, data, rng):
                    return
            if sent_traffic and conn.state is ConnectionState.READY:
                self._drain(sock, attempt, READ_SILENCE_S)
                return
            ready, _, _ = select.select([sock], [], [], LIVE_WAIT_S)
            if not ready:
                return  # the server waits for something the mutation took away
            try:
                back = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                back = b""
            if not back:
                attempt.closed_by_server = True
                return
            try:
                conn.receive_data(back)
            except RemoteProtocolError:
                self._drain(sock, attempt, READ_SILENCE_S)
                return
            except Exception as exc:  # the client side broke on what the server sent
                raise Failure(f"a client Connection raised {exc!r} on the server's bytes") from exc
            while conn.next_event() is not None:
                pass
            conn.messages.clear()

    def run_round(self, first: int, count: int) -> None:
        """Connections ``first``..``first+count-1``: resets and live ones as they come, then
        the others, whose sockets were all opened first, one after the other."""
        attempts = self.round_attempts = []
        opened: list[tuple[socket.socket, random.Random, Attempt]] = []
        for index in range(first, first + count):
            rng, attempt = self.plan(index)
            attempts.append(attempt)
            self._count(attempt.mode)
            try:
                sock = self._connect()
            except OSError as exc:
                raise Failure(f"cannot connect to the server: {exc}") from None
            if attempt.mode == "reset":
                self._close(sock, rng, reset=True)
            elif attempt.mode == "live":
                try:
                    self.run_live(sock, rng, attempt)
                finally:
                    self._close(sock, rng)
                self._count("bytes", len(attempt.sent))
                self._count("closed by the server", attempt.closed_by_server)
            else:
                opened.append((sock, rng, attempt))
        for sock, rng, attempt in opened:
            try:
                self.run_stream(sock, rng, attempt)
            finally:
                self._close(sock, rng)
            self._count("bytes", len(attempt.sent))
            self._count("closed by the server", attempt.closed_by_server)

    # -- the loop --

    def run(self) -> int:
        args = self.args
        self.start()
        print(
            f"socket fuzz: mechanism {self.mechanism}, seed {self.seed}, {args.seconds} s, "
            f"server {self.endpoint}",
            flush=True,
        )
        started = time.monotonic()
        warmup_end = started + min(2.0, args.seconds / 4)
        index = rounds = 0
        rng = random.Random(f"{self.seed}:rounds")
        try:
            while time.monotonic() - started < args.seconds or rounds < args.min_rounds:
                faulthandler.dump_traceback_later(args.hang_timeout, exit=True)
                count = rng.randint(1, args.parallel)
                self.run_round(index, count)
                index += count
                rounds += 1
                if args.inject == "log-error" and rounds == 3:
                    logging.getLogger("zeropipe.fuzz").error("injected error")
                self.check_good(inject_starve=args.inject == "starve" and rounds == 3)
                if rounds % args.fresh_every == 0:
                    self.check_fresh()
                self.check_oracles()
                if not self.rss_base and time.monotonic() >= warmup_end:
                    self.rss_base = rss_bytes()
            self.fuzz_seconds = time.monotonic() - started
            faulthandler.dump_traceback_later(args.hang_timeout, exit=True)
            self.round_attempts = []  # what follows is about the whole run
            self.check_idle()  # first: a new connection could hide a spin (see check_idle)
            self.check_fresh()
            self.check_fds()
            self.check_released(index)
            self.check_oracles()
        except Failure as exc:
            self.fuzz_seconds = self.fuzz_seconds or time.monotonic() - started
            faulthandler.cancel_dump_traceback_later()
            print(f"FAILED after {index} connections: {exc}", flush=True)
            for attempt in self.round_attempts:  # the culprit is most likely among these
                print("  " + attempt.describe(self.seed, self.mechanism), flush=True)
            self._summary(index, rounds)
            return 1
        finally:
            faulthandler.cancel_dump_traceback_later()
            try:
                self.stop()
            except Failure as exc:
                print(f"FAILED at shutdown: {exc}", flush=True)
                return 1
        self._summary(index, rounds)
        print("OK", flush=True)
        return 0

    def check_idle(self) -> None:
        """With every fuzz connection gone and nothing to do, zeropipe must not burn CPU.

        (A reactor left polling a closed file descriptor spins until a new connection gets
        that descriptor number: hence this runs before any new connection is made.)
        """
        time.sleep(0.2)  # the server sees the last connections go
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(IDLE_S)
        after = resource.getrusage(resource.RUSAGE_SELF)
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        if used > IDLE_S / 2:
            raise Failure(
                f"the process used {used:.2f} s of CPU in {IDLE_S} s of idleness after the fuzz "
                "connections closed (a busy loop)"
            )

    def check_fds(self) -> None:
        """Once every fuzz connection is closed, the server must have closed its side too."""
        if self.fds_base < 0:
            return
        deadline = time.monotonic() + 5.0
        while open_fds() > self.fds_base + 4:
            if time.monotonic() > deadline:
                raise Failure(
                    f"{open_fds()} file descriptors open, {self.fds_base} before the first "
                    "fuzz connection: the server leaks connections"
                )
            time.sleep(0.05)

    def check_released(self, connections: int) -> None:
        """Closed connections are released: no kind of zeropipe object is much more numerous
        than before the first fuzz connection (see ``KEPT_OBJECTS``); in particular no
        connection state (a Connection and its buffers) is kept."""
        deadline = time.monotonic() + RELEASE_WAIT_S
        allowed = max(KEPT_OBJECTS, connections // 10)
        while True:
            census = zeropipe_census()
            grown = {
                name: count - self.census_base.get(name, 0)
                for name, count in census.items()
                if count - self.census_base.get(name, 0) > allowed
            }
            if not grown:
                return
            if time.monotonic() > deadline:
                worst = sorted(grown.items(), key=lambda item: -item[1])[:6]
                growth = ", ".join(f"{name} +{count}" for name, count in worst)
                # the least numerous kind that is not mere data likely holds the others
                data = ("Metadata", "Options", "Security")
                root = min(grown, key=lambda name: (name in data, grown[name], name))
                raise Failure(
                    f"{RELEASE_WAIT_S} s after the last of {connections} fuzz connections "
                    f"closed, zeropipe objects are still kept: {growth} (more than before the "
                    f"first one); {self._holders(root)}"
                )
            time.sleep(0.1)

    def _holders(self, kind: str) -> str:
        """What holds the new objects of ``kind``: the most common chain among a few."""
        everything = gc.get_objects()
        new = [o for o in everything if zeropipe_kind(o) == kind and id(o) not in self.base_ids]
        del everything  # or every object seems held by this list
        chains: dict[str, int] = {}
        for i in range(min(20, len(new))):  # (a slice would be one more holder)
            chain = held_by(new[i], ignore=(new,))
            chains[chain] = chains.get(chain, 0) + 1
        del new
        if not chains:
            return ""
        chain, count = max(chains.items(), key=lambda item: item[1])
        return f"{count} of the first {sum(chains.values())} new {kind} objects are {chain}"

    def _summary(self, connections: int, rounds: int) -> None:
        elapsed = max(self.fuzz_seconds, 1e-9)
        modes = ", ".join(f"{m} {self.stats.get(m, 0)}" for m in dict.fromkeys(MODES))
        print(
            f"summary: {connections} connections in {rounds} rounds, {elapsed:.1f} s, "
            f"{connections / elapsed:.1f} inputs/s, {self.stats.get('bytes', 0)} bytes sent\n"
            f"  modes: {modes}\n"
            f"  closed by the server: {self.stats.get('closed by the server', 0)}, "
            f"send timeouts: {self.stats.get('send timeouts', 0)}\n"
            f"  good messages: {self.good_seq}, new good peers: {self.fresh_seq}, "
            f"fuzz messages delivered: {self.delivered}, zeropipe warnings: "
            f"{self.log_handler.warnings}\n"
            f"  RSS: baseline {self.rss_base >> 20} MiB, max {self.rss_max >> 20} MiB; "
            f"fds before fuzzing {self.fds_base}, now {open_fds()}",
            flush=True,
        )

    def replay(self, index: int) -> int:
        self.start()
        try:
            self.run_round(index, 1)
            print("  " + self.round_attempts[0].describe(self.seed, self.mechanism), flush=True)
            self.check_good()
            self.check_oracles()
        except Failure as exc:
            print(f"FAILED: {exc}", flush=True)
            return 1
        finally:
            self.stop()
        print("OK (the connection did no harm)", flush=True)
        return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz.socket_fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mechanism", choices=("null", "plain", "curve"), default="null")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--parallel", type=int, default=4, help="most connections per round")
    parser.add_argument("--deliver-timeout", type=float, default=1.0)
    parser.add_argument("--fresh-every", type=int, default=25, help="rounds between new peers")
    parser.add_argument("--max-rss-growth-mb", type=int, default=128)
    parser.add_argument("--hang-timeout", type=float, default=30.0)
    parser.add_argument("--min-rounds", type=int, default=5)
    parser.add_argument("--replay", default=None, metavar="SEED:INDEX")
    parser.add_argument("--inject", choices=("log-error", "starve"), default=None)
    args = parser.parse_args(argv)
    if args.replay:
        seed, _, index = args.replay.partition(":")
        args.seed, args.replay = int(seed), int(index)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    faulthandler.enable()
    fuzzer = Fuzzer(args)
    if args.replay is not None:
        return fuzzer.replay(args.replay)
    return fuzzer.run()


if __name__ == "__main__":
    sys.exit(main())
