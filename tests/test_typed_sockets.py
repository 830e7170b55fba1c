"""Typed sockets: ``send_message``/``recv_message``, the typed wrappers, and their wire format.

Real sockets over tcp and inproc, blocking and asyncio: typed messages go through every
available codec over PUSH/PULL, PUB/SUB (subscriptions by type and codec), REQ/REP,
DEALER/ROUTER and PAIR. Bad input (another type, a corrupt payload from libzmq, unknown codec
ids and type names, a payload over the limit) raises DecodeError and the socket keeps working.
A pyzmq (libzmq) peer that only has the raw libraries (protoc-generated classes, orjson,
pymongo's bson, thriftpy2) builds and parses the two frames by hand, as
docs/typed-messages.md tells a peer in another language to. mypy --strict checks that the
wrappers are typed.

Every socket has timeouts and linger 0; the ``own`` fixture closes every socket and terminates
every context (under a deadline), and each asyncio test runs under ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import zmq as pyzmq
from codec_support import load_module
from deadlines import term_with_deadline

import zeropipe as zp
import zeropipe.asyncio as zaio
from zeropipe import codecs
from zeropipe.codecs import (
    CodecError,
    DecodeError,
    EncodeError,
    decode_message,
    encode_message,
    field,
    message,
    pack_header,
)

TIMEOUT_MS = 5000
OPTS: dict[str, Any] = {"linger": 0, "rcvtimeo": TIMEOUT_MS, "sndtimeo": TIMEOUT_MS}
SETTLE_S = 5.0
RUN_S = 20.0
CODECS = codecs.available()
TRANSPORTS = ["tcp", "inproc"]
WIRE_IDS = {"json": 1, "bson": 2, "protobuf": 3, "thrift-binary": 4, "thrift-compact": 5}


class Side(enum.IntEnum):
    SIDE_UNSPECIFIED = 0
    BUY = 1
    SELL = 2


@message("typedsock.Trade")
class Trade:
    id: int = field(1, "int64", default=0)
    symbol: str = field(2, default="")
    price: float = field(3, default=0.0)
    qty: int = field(4, "int32", default=0)
    side: Side = field(5, default=Side.SIDE_UNSPECIFIED)
    tags: list[str] = field(6, default_factory=list)
    venue: str | None = field(7, default=None)


@message("typedsock.Quote")
class Quote:
    symbol: str = field(1, default="")
    bid: float = field(2, default=0.0)
    ask: float = field(3, default=0.0)


@message("typedsock.Query")
class Query:
    symbol: str = field(1, default="")
    limit: int = field(2, "int32", default=0)


@message("typedsock.TradeBatch")  # its name extends Trade's: a Trade subscription matches it
class TradeBatch:
    symbol: str = field(1, default="")
    trades: list[Trade] = field(2, default_factory=list)


TRADE = Trade(2**62 + 1, "AAPL", 187.25, 300, Side.SELL, ["lit", "dé"], "NYSE")
QUOTE = Quote("MSFT", 410.5, 410.75)
QUERY = Query("AAPL", 2)
BATCH = TradeBatch("AAPL", [TRADE, Trade(id=-7, symbol="AAPL", qty=-1)])


def marker(cls: type, word: str) -> Any:
    """A probe or fence of type ``cls`` (every test type has a ``symbol``)."""
    return cls(symbol="\x00" + word)


# -- owning sockets and contexts ------------------------------------------------------------------


class Owner:
    """Everything a test opens: closed (sockets first) and terminated at teardown."""

    def __init__(self) -> None:
        self.closables: list[Any] = []
        self.contexts: list[Any] = []

    def ctx(self, module: ModuleType = zp) -> Any:
        ctx = module.Context()
        self.contexts.append(ctx)
        return ctx

    def sock(self, ctx: Any, kind: int, **options: Any) -> Any:
        sock = self.add(ctx.socket(kind))
        for name, value in {**OPTS, **options}.items():
            setattr(sock, name, value)
        return sock

    def add(self, closable: Any) -> Any:
        self.closables.append(closable)
        return closable

    def close(self) -> None:
        for closable in reversed(self.closables):
            closable.close()
        for ctx in self.contexts:
            term_with_deadline(ctx)


@pytest.fixture
def own() -> Iterator[Owner]:
    owner = Owner()
    try:
        yield owner
    finally:
        owner.close()


def link(binder: Any, connecter: Any, transport: str) -> str:
    """Bind ``binder`` (a socket or wrapper) to a fresh endpoint and connect ``connecter``."""
    addr = "tcp://127.0.0.1:*" if transport == "tcp" else f"inproc://typed-{uuid.uuid4().hex}"
    binder.bind(addr)
    last = binder.last_endpoint
    endpoint = last.decode() if isinstance(last, bytes) else str(last)
    connecter.connect(endpoint)
    return endpoint


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), RUN_S)

    asyncio.run(bounded())


def wrong(expected: str, got: str) -> str:
    """The pattern of the DecodeError for a message of type ``got`` where ``expected`` was."""
    return re.escape(f"expected typedsock.{expected}, got typedsock.{got}")


def by_hand(wire_id: int, name: str) -> bytes:
    """A typed-frame header built from docs/typed-messages.md, not by zeropipe."""
    return b"ZP" + bytes([1, wire_id]) + name.encode()


# -- PUB/SUB: waiting for subscriptions -----------------------------------------------------------

Sub = tuple[Any, Callable[[], Any], type]
"""A subscriber to settle: the socket to poll, its receive call, the type it receives."""


def settle(send: Callable[[Any], None], subs: Sequence[Sub]) -> None:
    """Publish a probe of each subscriber's type until every subscriber received one, then a
    fence of each type, and read every subscriber up to its fence: afterwards nothing is left
    queued and what is published arrives exactly."""
    classes = list(dict.fromkeys(cls for _, _, cls in subs))
    waiting = set(range(len(subs)))
    deadline = time.monotonic() + SETTLE_S
    while waiting:
        assert time.monotonic() < deadline, "subscriptions never took effect"
        for cls in classes:
            send(marker(cls, "probe"))
        for i in sorted(waiting):
            sock, recv, cls = subs[i]
            if sock.poll(20):
                assert recv() == marker(cls, "probe")
                waiting.discard(i)
    for cls in classes:
        send(marker(cls, "fence"))
    for _, recv, cls in subs:
        while (got := recv()) != marker(cls, "fence"):
            assert got == marker(cls, "probe")


async def asettle(
    send: Callable[[Any], Awaitable[None]], subs: Sequence[tuple[Any, Any, type]]
) -> None:
    """``settle`` for asyncio sockets (``recv`` returns an awaitable)."""
    classes = list(dict.fromkeys(cls for _, _, cls in subs))
    waiting = set(range(len(subs)))
    deadline = time.monotonic() + SETTLE_S
    while waiting:
        assert time.monotonic() < deadline, "subscriptions never took effect"
        for cls in classes:
            await send(marker(cls, "probe"))
        for i in sorted(waiting):
            sock, recv, cls = subs[i]
            if await sock.poll(20):
                assert await recv() == marker(cls, "probe")
                waiting.discard(i)
    for cls in classes:
        await send(marker(cls, "fence"))
    for _, recv, cls in subs:
        while (got := await recv()) != marker(cls, "fence"):
            assert got == marker(cls, "probe")


# -- send_message / recv_message ------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("codec", CODECS)
def test_push_pull_every_codec(own: Owner, codec: str, transport: str) -> None:
    ctx = own.ctx()
    pull = own.sock(ctx, zp.PULL)
    push = own.sock(ctx, zp.PUSH)
    link(pull, push, transport)
    push.send_message(TRADE, codec)
    push.send_message(BATCH, codec)
    push.send_message(TRADE, codec)
    header, payload = pull.recv_multipart()
    assert header == by_hand(WIRE_IDS.get(codec, 0), "typedsock.Trade")
    assert payload == codecs.encode(TRADE, codec)
    assert pull.recv_message() == BATCH
    got = pull.recv_message(Trade)
    assert got == TRADE
    assert type(got) is Trade


def test_default_codec_is_json_and_the_socket_attribute_changes_it(own: Owner) -> None:
    ctx = own.ctx()
    pull = own.sock(ctx, zp.PULL)
    push = own.sock(ctx, zp.PUSH)
    link(pull, push, "inproc")
    assert push.codec == "json"
    push.send_message(QUOTE)
    push.codec = "protobuf"
    push.send_message(QUOTE)
    push.send_message(QUOTE, "bson")  # the argument wins over the attribute
    push.send_message(QUOTE, 1)  # a wire id
    push.send_message(QUOTE, codecs.get("thrift-compact"))  # a codec
    ids = [pull.recv_multipart()[0][3] for _ in range(5)]
    assert ids == [1, 3, 2, 1, 5]
    other = own.add(ctx.socket(zp.PUSH, codec="protobuf", linger=0))
    assert other.codec == "protobuf"


def test_send_message_refuses_what_is_not_a_message(own: Owner) -> None:
    ctx = own.ctx()
    push = own.sock(ctx, zp.PUSH)
    with pytest.raises(EncodeError, match="not a typed message"):
        push.send_message({"id": 1})
    with pytest.raises(CodecError, match="unknown codec 'nope'"):
        push.send_message(TRADE, "nope")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pair_both_ways(own: Owner, transport: str) -> None:
    ctx = own.ctx()
    a = own.sock(ctx, zp.PAIR)
    b = own.sock(ctx, zp.PAIR)
    link(a, b, transport)
    for codec in CODECS:
        a.send_message(TRADE, codec)
        assert b.recv_message(Trade) == TRADE
        b.send_message(QUOTE, codec)
        assert a.recv_message((Trade, Quote)) == QUOTE


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_req_rep_raw(own: Owner, transport: str) -> None:
    ctx = own.ctx()
    rep = own.sock(ctx, zp.REP)
    req = own.sock(ctx, zp.REQ)
    link(rep, req, transport)
    for codec in CODECS:
        req.send_message(QUERY, codec)
        assert rep.recv_message(Query) == QUERY
        rep.send_message(BATCH, codec)
        assert req.recv_message(TradeBatch) == BATCH


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_router_envelopes(own: Owner, transport: str) -> None:
    """A ROUTER receives ``(envelope, obj)`` and replies with the envelope (REQ peer: routing
    id and delimiter) or the routing id alone (DEALER peer)."""
    ctx = own.ctx()
    router = own.sock(ctx, zp.ROUTER)
    req = own.sock(ctx, zp.REQ)
    dealer = own.sock(ctx, zp.DEALER, routing_id=b"dealer-1")
    endpoint = link(router, req, transport)
    dealer.connect(endpoint)

    req.send_message(QUERY, "protobuf")
    envelope, got = router.recv_message(Query)
    assert got == QUERY
    assert len(envelope) == 2
    assert envelope[1] == b""
    router.send_message(BATCH, "protobuf", routing_id=envelope)
    assert req.recv_message(TradeBatch) == BATCH

    dealer.send_message(QUOTE)
    envelope, got = router.recv_message()
    assert (envelope, got) == ([b"dealer-1"], QUOTE)
    router.send_message(TRADE, routing_id=b"dealer-1")
    assert dealer.recv_message(Trade) == TRADE

    dealer.send(b"not typed")  # [routing id, b"not typed"]: one frame short
    with pytest.raises(DecodeError, match="two frames"):
        router.recv_message()
    dealer.send_message(TRADE)
    assert router.recv_message(Trade) == ([b"dealer-1"], TRADE)


def test_routing_id_only_on_router(own: Owner) -> None:
    ctx = own.ctx()
    router = own.sock(ctx, zp.ROUTER)
    push = own.sock(ctx, zp.PUSH)
    with pytest.raises(ValueError, match="routing_id"):
        router.send_message(TRADE)
    with pytest.raises(ValueError, match="empty"):
        router.send_message(TRADE, routing_id=[])
    with pytest.raises(ValueError, match="ROUTER"):
        push.send_message(TRADE, routing_id=b"x")


# -- PUB/SUB --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("codec", CODECS)
def test_subscribers_get_only_their_type(own: Owner, codec: str, transport: str) -> None:
    """One PUB carries Trades and Quotes; each subscriber gets its type, in order."""
    ctx = own.ctx()
    pub = own.sock(ctx, zp.PUB)
    trades = own.add(zp.Subscriber(ctx, Trade, codec=codec, **OPTS))
    quotes = own.add(zp.Subscriber(ctx, Quote, codec=codec, **OPTS))
    raw = own.sock(ctx, zp.SUB)
    raw.subscribe_type(Quote, codec)
    endpoint = link(pub, trades, transport)
    quotes.connect(endpoint)
    raw.connect(endpoint)

    def send(obj: Any) -> None:
        pub.send_message(obj, codec)

    settle(
        send,
        [
            (trades.socket, trades.recv, Trade),
            (quotes.socket, quotes.recv, Quote),
            (raw, lambda: raw.recv_message(Quote), Quote),
        ],
    )
    sent = [TRADE, QUOTE, Trade(id=2), Quote(bid=1.5), Trade(id=3)]
    for obj in sent:
        send(obj)
    send(marker(Trade, "end"))
    send(marker(Quote, "end"))
    for recv, cls in ((trades.recv, Trade), (quotes.recv, Quote), (raw.recv_message, Quote)):
        got = []
        while (obj := recv()) != marker(cls, "end"):
            got.append(obj)
        assert got == [obj for obj in sent if type(obj) is cls]


def test_a_subscription_is_by_type_and_codec(own: Owner) -> None:
    """A Subscriber in protobuf does not receive the JSON messages of its type."""
    ctx = own.ctx()
    pub = own.add(zp.Publisher(ctx, Trade, codec="protobuf", **OPTS))
    other = own.sock(ctx, zp.PUB)
    sub = own.add(zp.Subscriber(ctx, Trade, codec="protobuf", **OPTS))
    link(pub, sub, "tcp")
    link(other, sub, "inproc")
    settle(pub.send, [(sub.socket, sub.recv, Trade)])
    settle(lambda obj: other.send_message(obj, "protobuf"), [(sub.socket, sub.recv, Trade)])
    other.send_message(Trade(id=1), "json")  # not subscribed
    other.send_message(Trade(id=2), "protobuf")
    other.send_message(marker(Trade, "end"), "protobuf")  # after id 1 on the same pipe
    pub.send(Trade(id=3))
    pub.send(marker(Trade, "end"))
    got = [sub.recv() for _ in range(4)]
    assert sorted(obj.id for obj in got if obj != marker(Trade, "end")) == [2, 3]


def test_subscriber_drops_types_whose_name_extends_its_own(own: Owner) -> None:
    """A subscription to typedsock.Trade is a prefix of typedsock.TradeBatch's header: the
    Subscriber wrapper drops those quietly; a raw SUB checks the type and raises."""
    assert pack_header("json", "typedsock.TradeBatch").startswith(
        pack_header("json", "typedsock.Trade")
    )
    ctx = own.ctx()
    pub = own.sock(ctx, zp.PUB)
    sub = own.add(zp.Subscriber(ctx, Trade, **OPTS))
    raw = own.sock(ctx, zp.SUB)
    raw.subscribe_type(Trade)
    link(pub, sub, "tcp")
    raw.connect(pub.last_endpoint.decode())
    settle(
        pub.send_message,
        [(sub.socket, sub.recv, Trade), (raw, lambda: raw.recv_message(Trade), Trade)],
    )
    for obj in (BATCH, Trade(id=1), BATCH, Trade(id=2)):
        pub.send_message(obj)
    assert [sub.recv().id, sub.recv().id] == [1, 2]
    with pytest.raises(DecodeError, match=wrong("Trade", "TradeBatch")):
        raw.recv_message(Trade)
    assert raw.recv_message(Trade) == Trade(id=1)
    assert raw.recv_message() == BATCH  # without expected, any type
    assert raw.recv_message(Trade) == Trade(id=2)


def test_unsubscribe_type(own: Owner) -> None:
    ctx = own.ctx()
    pub = own.sock(ctx, zp.PUB)
    sub = own.sock(ctx, zp.SUB)
    sub.subscribe_type(Trade)
    sub.subscribe_type(Quote)
    link(pub, sub, "tcp")
    recv = functools.partial(sub.recv_message, (Trade, Quote))
    settle(pub.send_message, [(sub, recv, Trade), (sub, recv, Quote)])
    sub.unsubscribe_type(Quote)
    # Subscriptions travel in order: once this one works, the cancel above is in effect.
    sub.subscribe_type(Trade, "bson")
    settle(lambda obj: pub.send_message(obj, "bson"), [(sub, recv, Trade)])
    pub.send_message(QUOTE)
    pub.send_message(TRADE)
    assert sub.recv_message() == TRADE


def test_subscribe_type_refuses_a_class_that_is_not_a_message(own: Owner) -> None:
    sub = own.sock(own.ctx(), zp.SUB)
    with pytest.raises(TypeError, match="not a typed message"):
        sub.subscribe_type(dict)


# -- typed wrappers -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("codec", CODECS)
def test_pusher_puller(own: Owner, codec: str, transport: str) -> None:
    ctx = own.ctx()
    puller = own.add(zp.Puller(ctx, Trade, **OPTS))
    pusher = own.add(zp.Pusher(ctx, Trade, codec=codec, **OPTS))
    link(puller, pusher, transport)
    assert pusher.codec.name == codec
    for obj in (TRADE, Trade(), Trade(id=-(2**63), symbol="😀", tags=[""] * 3)):
        pusher.send(obj)
        got = puller.recv()
        assert got == obj
        assert type(got) is Trade


def test_puller_accepts_its_type_in_any_codec(own: Owner) -> None:
    ctx = own.ctx()
    puller = own.add(zp.Puller(ctx, Trade, codec="json", **OPTS))
    push = own.sock(ctx, zp.PUSH)
    link(puller, push, "inproc")
    for codec in CODECS:
        push.send_message(TRADE, codec)
        assert puller.recv() == TRADE


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("codec", CODECS)
def test_publisher_subscriber(own: Owner, codec: str, transport: str) -> None:
    ctx = own.ctx()
    pub = own.add(zp.Publisher(ctx, Trade, codec=codec, **OPTS))
    sub = own.add(zp.Subscriber(ctx, Trade, codec=codec, **OPTS))
    link(pub, sub, transport)
    settle(pub.send, [(sub.socket, sub.recv, Trade)])
    pub.send(TRADE)
    assert sub.recv() == TRADE


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("codec", CODECS)
def test_requester_replier(own: Owner, codec: str, transport: str) -> None:
    ctx = own.ctx()
    rep = own.add(zp.Replier(ctx, Query, TradeBatch, codec=codec, **OPTS))
    req = own.add(zp.Requester(ctx, Query, TradeBatch, codec=codec, **OPTS))
    link(rep, req, transport)
    req.send(QUERY)
    assert rep.recv() == QUERY
    rep.send(BATCH)
    assert req.recv() == BATCH

    def serve() -> None:
        query = rep.recv()
        rep.send(TradeBatch(query.symbol, [TRADE] * query.limit))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        assert req.request(Query("X", 3)) == TradeBatch("X", [TRADE] * 3)
    finally:
        server.join(TIMEOUT_MS / 1000)
    assert not server.is_alive()


def test_replier_owes_a_reply_after_a_bad_request(own: Owner) -> None:
    ctx = own.ctx()
    rep = own.add(zp.Replier(ctx, Query, TradeBatch, **OPTS))
    req = own.sock(ctx, zp.REQ)
    link(rep, req, "tcp")
    req.send_message(QUOTE)
    with pytest.raises(DecodeError, match=wrong("Query", "Quote")):
        rep.recv()
    rep.send(TradeBatch("error"))
    assert req.recv_message(TradeBatch) == TradeBatch("error")
    req.send_message(QUERY)
    assert rep.recv() == QUERY


def test_wrappers_check_the_type_they_send(own: Owner) -> None:
    ctx = own.ctx()
    puller = own.add(zp.Puller(ctx, Trade, **OPTS))
    pusher = own.add(zp.Pusher(ctx, Trade, **OPTS))
    link(puller, pusher, "inproc")
    with pytest.raises(TypeError, match=r"sends typedsock\.Trade messages \(Trade\), not Quote"):
        pusher.send(QUOTE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not dict"):
        pusher.send({"id": 1})  # type: ignore[arg-type]
    pusher.send(TRADE)
    assert puller.recv() == TRADE  # nothing was sent for the refused ones


def test_wrapper_construction_errors(own: Owner) -> None:
    ctx = own.ctx()
    pull = own.sock(ctx, zp.PULL)
    with pytest.raises(TypeError, match="Publisher needs a PUB or XPUB socket, not PULL"):
        zp.Publisher(pull, Trade)
    with pytest.raises(TypeError, match="options are for a new socket"):
        zp.Puller(pull, Trade, rcvtimeo=5)
    with pytest.raises(TypeError, match="not a typed message"):
        zp.Pusher(ctx, dict)
    with pytest.raises(CodecError, match="unknown codec 'nope'"):
        zp.Pusher(ctx, Trade, codec="nope")  # the socket it opened is closed again
    with pytest.raises(ValueError, match="max_size"):
        zp.Puller(ctx, Trade, max_size=-1)
    wrapped = zp.Puller(pull, Trade)  # an existing socket of the right type
    assert wrapped.socket is pull
    assert wrapped.message_type is Trade
    assert "typedsock.Trade (json)" in repr(wrapped)
    actx = own.ctx(zaio)
    with pytest.raises(TypeError, match="use AsyncPusher"):
        zp.Pusher(actx, Trade)
    with pytest.raises(TypeError, match="use Puller"):
        zp.AsyncPuller(pull, Trade)
    # a socket opened and refused above would keep the contexts from terminating
    term_with_deadline(actx)
    own.contexts.remove(actx)


def test_wrapper_endpoints_and_lifetime(own: Owner) -> None:
    ctx = own.ctx()
    with zp.Puller(ctx, Trade, **OPTS) as puller:
        endpoint = puller.bind("tcp://127.0.0.1:*")
        assert endpoint.startswith("tcp://127.0.0.1:")
        assert not endpoint.endswith("*")
        assert puller.last_endpoint == endpoint
        pusher = own.add(zp.Pusher(ctx, Trade, **OPTS))
        assert pusher.connect(endpoint) == endpoint
        pusher.send(TRADE)
        assert puller.recv() == TRADE
        pusher.disconnect(endpoint)
        puller.unbind(endpoint)
    assert puller.closed
    assert puller.socket.closed


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_wrong_type_then_the_next_good_message(own: Owner, codec: str) -> None:
    ctx = own.ctx()
    puller = own.add(zp.Puller(ctx, Trade, **OPTS))
    pull = own.sock(ctx, zp.PULL)
    push = own.sock(ctx, zp.PUSH)
    link(puller, push, "tcp")
    push2 = own.sock(ctx, zp.PUSH)
    link(pull, push2, "inproc")
    for sender in (push, push2):
        sender.send_message(QUOTE, codec)
        sender.send_message(TRADE, codec)
    for recv in (puller.recv, lambda: pull.recv_message(Trade)):
        with pytest.raises(DecodeError) as info:
            recv()
        assert info.value.codec == codec
        assert info.value.type_name == "typedsock.Quote"
        assert "expected typedsock.Trade, got typedsock.Quote" in str(info.value)
        assert recv() == TRADE


@pytest.mark.parametrize("codec", CODECS)
def test_corrupt_payload_from_libzmq(own: Owner, codec: str) -> None:
    ctx = own.ctx()
    puller = own.add(zp.Puller(ctx, Trade, **OPTS))
    pull = own.sock(ctx, zp.PULL)
    theirs = own.sock(own.ctx(pyzmq), pyzmq.PUSH)
    puller.bind("tcp://127.0.0.1:*")
    pull.bind("tcp://127.0.0.1:*")
    theirs.connect(puller.last_endpoint)
    theirs.connect(pull.last_endpoint.decode())
    header = by_hand(WIRE_IDS[codec], "typedsock.Trade")
    good = codecs.encode(TRADE, codec)
    for _ in range(2):  # PUSH round-robins: one bad and one good message each
        theirs.send_multipart([header, good[:-1]])
    for _ in range(2):
        theirs.send_multipart([header, good])
    for recv in (puller.recv, lambda: pull.recv_message(Trade)):
        with pytest.raises(DecodeError) as info:
            recv()
        assert (info.value.codec, info.value.type_name) == (codec, "typedsock.Trade")
        assert str(info.value).startswith(f"{codec} could not decode typedsock.Trade: ")
        assert recv() == TRADE


BAD_MESSAGES = {
    "not-a-header": ([b"hello", b"world"], "not a zeropipe typed frame"),
    "short-header": ([b"ZP", b"{}"], "not a zeropipe typed frame"),
    "version-2": ([b"ZP\x02\x01typedsock.Trade", b"{}"], "unsupported typed-frame version 2"),
    "unknown-codec-id": ([b"ZP\x01\x63typedsock.Trade", b"{}"], "unknown codec wire id 99"),
    "unknown-plugin-id": ([b"ZP\x01\xc8typedsock.Trade", b"{}"], "unknown codec wire id 200"),
    "unknown-type": ([by_hand(1, "typedsock.Nope"), b"{}"], "unknown message type"),
    "empty-name": ([b"ZP\x01\x01", b"{}"], "empty type name"),
    "bad-utf8-name": ([b"ZP\x01\x01\xff\xfe", b"{}"], "not UTF-8"),
    "one-frame": ([by_hand(1, "typedsock.Trade")], "two frames"),
    "three-frames": ([by_hand(1, "typedsock.Trade"), b"{}", b"{}"], "not 3"),
}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_bad_frames_from_libzmq(own: Owner, case: str) -> None:
    frames, reason = BAD_MESSAGES[case]
    ctx = own.ctx()
    pull = own.sock(ctx, zp.PULL)
    theirs = own.sock(own.ctx(pyzmq), pyzmq.PUSH)
    pull.bind("tcp://127.0.0.1:*")
    theirs.connect(pull.last_endpoint.decode())
    theirs.send_multipart(frames)
    theirs.send_multipart([by_hand(1, "typedsock.Trade"), codecs.encode(TRADE, "json")])
    theirs.send_multipart(frames)
    theirs.send_multipart([by_hand(3, "typedsock.Quote"), codecs.encode(QUOTE, "protobuf")])
    with pytest.raises(DecodeError, match=reason):
        pull.recv_message()
    assert pull.recv_message() == TRADE
    with pytest.raises(DecodeError, match=reason):
        pull.recv_message(Quote)
    assert pull.recv_message(Quote) == QUOTE


@pytest.mark.parametrize("codec", CODECS)
def test_size_limit_on_the_wrapper(own: Owner, codec: str) -> None:
    """``max_size`` on the wrapper, for a message in the wrapper's codec and in another."""
    big = Trade(symbol="X" * 200)
    other = "json" if codec != "json" else "bson"
    ctx = own.ctx()
    limit = len(codecs.encode(TRADE, codec))
    puller = own.add(zp.Puller(ctx, Trade, codec=codec, max_size=limit, **OPTS))
    push = own.sock(ctx, zp.PUSH)
    link(puller, push, "tcp")
    for obj, sent_in in ((big, codec), (TRADE, codec), (big, other), (Trade(id=5), other)):
        push.send_message(obj, sent_in)
    size = len(codecs.encode(big, codec))
    with pytest.raises(DecodeError, match=f"size limit: {size} bytes > max_size {limit}"):
        puller.recv()
    assert puller.recv() == TRADE  # exactly at the limit
    with pytest.raises(DecodeError, match="size limit") as info:
        puller.recv()
    assert info.value.codec == other
    assert puller.recv() == Trade(id=5)


def test_maxmsgsize_is_the_default_limit(own: Owner) -> None:
    """Over inproc (where neither libzmq nor zeropipe applies MAXMSGSIZE to the transport),
    MAXMSGSIZE is the typed limit; an explicit ``max_size`` overrides it."""
    ctx = own.ctx()
    pull = own.sock(ctx, zp.PULL, maxmsgsize=16)
    push = own.sock(ctx, zp.PUSH)
    link(pull, push, "inproc")
    for _ in range(2):
        push.send_message(TRADE, "json")
        push.send_message(Trade(id=1), "json")  # {"id":"1"}: 10 bytes
    with pytest.raises(DecodeError, match="max_size 16"):
        pull.recv_message()
    assert pull.recv_message() == Trade(id=1)
    assert pull.recv_message(max_size=1 << 20) == TRADE
    puller = zp.Puller(pull, Trade)
    assert puller.recv() == Trade(id=1)
    push.send_message(TRADE, "json")
    with pytest.raises(DecodeError, match="max_size 16"):
        puller.recv()


# -- interop: a libzmq peer with only the raw libraries -------------------------------------------

_RAW: dict[str, Any] = {}


@pytest.fixture(scope="module")
def pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The protoc-generated module of the .proto that zeropipe emits for Trade (once per
    process: protobuf's default pool refuses a second file of the same name)."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    if "pb2" not in _RAW:
        from zeropipe.sdk.codegen import emit_schemas

        out = tmp_path_factory.mktemp("protoc")
        for name, text in emit_schemas([Trade], "proto", "tests").items():
            (out / name).write_text(text)
        assert protoc.main(["protoc", f"-I{out}", f"--python_out={out}", "typedsock.proto"]) == 0
        _RAW["pb2"] = load_module(out / "typedsock_pb2.py", "typedsock_pb2")
    module: ModuleType = _RAW["pb2"]
    return module


@pytest.fixture(scope="module")
def tp(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """thriftpy2's module for the .thrift that zeropipe emits for Trade."""
    thriftpy2 = pytest.importorskip("thriftpy2")
    if "tp" not in _RAW:
        from zeropipe.sdk.codegen import emit_schemas

        out = tmp_path_factory.mktemp("thrift")
        for name, text in emit_schemas([Trade], "thrift", "tests").items():
            (out / name).write_text(text)
        _RAW["tp"] = thriftpy2.load(str(out / "typedsock.thrift"), module_name="typedsock_thrift")
    module: ModuleType = _RAW["tp"]
    return module


TRADE_VALUES: dict[str, Any] = {
    "id": TRADE.id,
    "symbol": TRADE.symbol,
    "price": TRADE.price,
    "qty": TRADE.qty,
    "side": int(TRADE.side),
    "tags": TRADE.tags,
    "venue": TRADE.venue,
}
TRADE_JSON = {**TRADE_VALUES, "id": str(TRADE.id), "side": "SELL"}


def raw_encoders(pb2: ModuleType, tp: ModuleType) -> dict[str, Callable[[], bytes]]:
    """Trade's payload as each raw library writes it from its own objects."""
    import bson
    import orjson
    from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
    from thriftpy2.utils import serialize

    return {
        "json": lambda: orjson.dumps(TRADE_JSON),
        "bson": lambda: bson.encode({**TRADE_VALUES, "id": bson.Int64(TRADE.id)}),
        "protobuf": lambda: pb2.Trade(**TRADE_VALUES).SerializeToString(),
        "thrift-binary": lambda: serialize(tp.Trade(**TRADE_VALUES), TBinaryProtocolFactory()),
        "thrift-compact": lambda: serialize(tp.Trade(**TRADE_VALUES), TCompactProtocolFactory()),
    }


def raw_decoders(pb2: ModuleType, tp: ModuleType) -> dict[str, Callable[[bytes], dict[str, Any]]]:
    """Trade's payload read by each raw library, as a dict of field values."""
    import bson
    import orjson
    from google.protobuf import json_format
    from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
    from thriftpy2.utils import deserialize

    def from_pb(data: bytes) -> dict[str, Any]:
        msg = pb2.Trade.FromString(data)
        values = json_format.MessageToDict(msg, preserving_proto_field_name=True)
        return {**values, "id": int(values["id"]), "side": msg.side, "venue": msg.venue}

    def from_tp(factory: Any) -> Callable[[bytes], dict[str, Any]]:
        return lambda data: dict(vars(deserialize(tp.Trade(), data, factory)))

    return {
        "json": orjson.loads,
        "bson": lambda data: dict(bson.decode(data)),
        "protobuf": from_pb,
        "thrift-binary": from_tp(TBinaryProtocolFactory()),
        "thrift-compact": from_tp(TCompactProtocolFactory()),
    }


@pytest.mark.parametrize("codec", CODECS)
def test_libzmq_peer_sends_frames_by_hand(
    own: Owner, pb2: ModuleType, tp: ModuleType, codec: str
) -> None:
    ctx = own.ctx()
    puller = own.add(zp.Puller(ctx, Trade, **OPTS))
    theirs = own.sock(own.ctx(pyzmq), pyzmq.PUSH)
    theirs.connect(puller.bind("tcp://127.0.0.1:*"))
    payload = raw_encoders(pb2, tp)[codec]()
    theirs.send_multipart([by_hand(WIRE_IDS[codec], "typedsock.Trade"), payload])
    assert puller.recv() == TRADE


@pytest.mark.parametrize("codec", CODECS)
def test_libzmq_peer_reads_frames_by_hand(
    own: Owner, pb2: ModuleType, tp: ModuleType, codec: str
) -> None:
    ctx = own.ctx()
    pusher = own.add(zp.Pusher(ctx, Trade, codec=codec, **OPTS))
    theirs = own.sock(own.ctx(pyzmq), pyzmq.PULL)
    theirs.connect(pusher.bind("tcp://127.0.0.1:*"))
    pusher.send(TRADE)
    header, payload = theirs.recv_multipart()
    assert header[:3] == b"ZP\x01"
    assert header[3] == WIRE_IDS[codec]
    assert header[4:].decode() == "typedsock.Trade"
    expected = TRADE_JSON if codec == "json" else TRADE_VALUES
    assert raw_decoders(pb2, tp)[codec](payload) == expected


@pytest.mark.parametrize("codec", CODECS)
def test_send_serialized_recv_serialized_as_pyzmq(own: Owner, codec: str) -> None:
    """pyzmq's contract: ``serialize(msg)`` returns the frames, ``deserialize(frames)``
    gets the list of frames; both sides agree with libzmq's pyzmq."""
    serialize = functools.partial(encode_message, codec=codec)
    deserialize = functools.partial(decode_message, expected=Trade)
    ctx = own.ctx()
    pull = own.sock(ctx, zp.PULL)
    push = own.sock(ctx, zp.PUSH)
    link(pull, push, "tcp")
    push.send_serialized(TRADE, serialize)
    assert pull.recv_serialized(deserialize) == TRADE
    push.send_serialized(TRADE, serialize, copy=False)
    assert pull.recv_serialized(deserialize, copy=False) == TRADE

    pctx = own.ctx(pyzmq)
    their_push = own.sock(pctx, pyzmq.PUSH)
    their_pull = own.sock(pctx, pyzmq.PULL)
    their_push.connect(pull.last_endpoint.decode())
    their_push.send_serialized(TRADE, serialize)
    assert pull.recv_serialized(deserialize) == TRADE
    their_pull.bind("tcp://127.0.0.1:*")
    push.connect(their_pull.last_endpoint.decode())
    push.disconnect(pull.last_endpoint.decode())
    push.send_serialized(TRADE, serialize)
    assert their_pull.recv_serialized(deserialize) == TRADE


# -- asyncio --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("codec", CODECS)
def test_async_push_pull(own: Owner, codec: str, transport: str) -> None:
    ctx = own.ctx(zaio)
    puller = own.add(zp.AsyncPuller(ctx, Trade, **OPTS))
    pusher = own.add(zp.AsyncPusher(ctx, Trade, codec=codec, **OPTS))
    pull = own.sock(ctx, zp.PULL)
    push = own.sock(ctx, zp.PUSH)
    link(puller, pusher, transport)
    link(pull, push, transport)

    async def main() -> None:
        await pusher.send(TRADE)
        assert await puller.recv() == TRADE
        await push.send_message(BATCH, codec)
        assert await pull.recv_message(TradeBatch) == BATCH
        await push.send_message(QUOTE, codec)
        await push.send_message(TRADE, codec)
        with pytest.raises(DecodeError, match=wrong("Trade", "Quote")):
            await pull.recv_message(Trade)
        assert await pull.recv_message(Trade) == TRADE
        await pusher.socket.send_message(QUOTE, codec)
        await pusher.send(TRADE)
        with pytest.raises(DecodeError, match=wrong("Trade", "Quote")):
            await puller.recv()
        assert await puller.recv() == TRADE
        with pytest.raises(TypeError, match=r"AsyncPusher sends typedsock\.Trade"):
            await pusher.send(QUOTE)  # type: ignore[arg-type]

    run(main)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_async_subscribers_get_only_their_type(own: Owner, transport: str) -> None:
    ctx = own.ctx(zaio)
    pub = own.sock(ctx, zp.PUB)
    trades = own.add(zp.AsyncSubscriber(ctx, Trade, codec="protobuf", **OPTS))
    quotes = own.add(zp.AsyncSubscriber(ctx, Quote, codec="protobuf", **OPTS))
    endpoint = link(pub, trades, transport)
    quotes.connect(endpoint)
    publisher = own.add(zp.AsyncPublisher(ctx, Trade, codec="protobuf", **OPTS))
    trades.connect(publisher.bind("tcp://127.0.0.1:*"))

    async def send(obj: Any) -> None:
        await pub.send_message(obj, "protobuf")

    async def main() -> None:
        await asettle(
            send, [(trades.socket, trades.recv, Trade), (quotes.socket, quotes.recv, Quote)]
        )
        await asettle(publisher.send, [(trades.socket, trades.recv, Trade)])
        for obj in (TRADE, QUOTE, BATCH, Quote(bid=2.0)):
            await send(obj)
        assert await quotes.recv() == QUOTE
        assert await quotes.recv() == Quote(bid=2.0)
        assert await trades.recv() == TRADE  # the TradeBatch was dropped
        await publisher.send(Trade(id=9))
        assert await trades.recv() == Trade(id=9)

    run(main)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_async_requester_replier(own: Owner, transport: str) -> None:
    ctx = own.ctx(zaio)
    rep = own.add(zp.AsyncReplier(ctx, Query, TradeBatch, codec="bson", **OPTS))
    req = own.add(zp.AsyncRequester(ctx, Query, TradeBatch, codec="bson", **OPTS))
    link(rep, req, transport)

    async def serve(n: int) -> None:
        for _ in range(n):
            query = await rep.recv()
            await rep.send(TradeBatch(query.symbol, [TRADE] * query.limit))

    async def main() -> None:
        server = asyncio.ensure_future(serve(3))
        for i in range(3):
            assert await req.request(Query("S", i)) == TradeBatch("S", [TRADE] * i)
        await server

    run(main)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_async_router_dealer(own: Owner, transport: str) -> None:
    ctx = own.ctx(zaio)
    router = own.sock(ctx, zp.ROUTER)
    dealer = own.sock(ctx, zp.DEALER, routing_id=b"d")
    link(router, dealer, transport)

    async def main() -> None:
        await dealer.send_message(QUERY, "thrift-binary")
        envelope, query = await router.recv_message(Query)
        assert (envelope, query) == ([b"d"], QUERY)
        await router.send_message(BATCH, "thrift-compact", routing_id=envelope)
        assert await dealer.recv_message(TradeBatch) == BATCH

    run(main)


def test_async_send_serialized_recv_serialized(own: Owner) -> None:
    ctx = own.ctx(zaio)
    pull = own.sock(ctx, zp.PULL)
    push = own.sock(ctx, zp.PUSH)
    link(pull, push, "inproc")

    async def main() -> None:
        await push.send_serialized(TRADE, functools.partial(encode_message, codec="protobuf"))
        got = await pull.recv_serialized(functools.partial(decode_message, expected=Trade))
        assert got == TRADE

    run(main)


# -- static typing --------------------------------------------------------------------------------

SNIPPET = """
from zeropipe import AsyncPusher, AsyncSubscriber, Context, Publisher, Requester, Subscriber
import zeropipe.asyncio as zaio
from zeropipe.codecs import field, message


@message("typedsnippet.Trade")
class Trade:
    id: int = field(1, "int64", default=0)


@message("typedsnippet.Quote")
class Quote:
    bid: float = field(1, default=0.0)


def blocking(ctx: Context) -> None:
    sub = Subscriber(ctx, Trade, codec="protobuf")
    reveal_type(sub.recv())  # reveal Trade
    trade: Trade = sub.recv()
    pub = Publisher(ctx, Trade)
    pub.send(trade)
    pub.send(Quote())  # error arg-type
    quote: Quote = sub.recv()  # error assignment
    req = Requester(ctx, Quote, Trade)
    reveal_type(req.request(Quote()))  # reveal Trade
    req.send(Trade())  # error arg-type


async def asynchronous(ctx: zaio.Context) -> None:
    sub = AsyncSubscriber(ctx, Trade)
    reveal_type(await sub.recv())  # reveal Trade
    pusher = AsyncPusher(ctx, Quote)
    await pusher.send(Quote(1.5))
    await pusher.send(Trade())  # error arg-type
"""


def test_wrappers_type_check(tmp_path: Path) -> None:
    """mypy --strict: ``Subscriber[Trade].recv()`` is a Trade, sending another type is an
    error, and nothing else in the snippet is."""
    (tmp_path / "typed_snippet.py").write_text(SNIPPET)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--show-error-codes",
            "--no-error-summary",
            "typed_snippet.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
    )
    expected = set()
    for number, line in enumerate(SNIPPET.splitlines(), 1):
        if "# reveal " in line:
            name = line.rsplit("# reveal ", 1)[1]
            expected.add(
                f'typed_snippet.py:{number}: note: Revealed type is "typed_snippet.{name}"'
            )
        elif "# error " in line:
            expected.add((number, line.rsplit("# error ", 1)[1]))
    got = set()
    for line in done.stdout.splitlines():
        if ": error: " in line:
            number = int(line.split(":")[1])
            got.add((number, line.rsplit("[", 1)[1].rstrip("]")))
        else:
            got.add(line)
    assert got == expected, done.stdout + done.stderr
