"""Scheduling decisions of the reactor and the connecter, checked without a clock.

Each test hands the code a fixed "now" or a recording fake reactor, so what is
checked is the decision (what to read, when to look again, how long to wait
before reconnecting), never how long something took.
"""

from __future__ import annotations

from typing import Any

import pytest

from zeropipe.transports.endpoint import parse_endpoint
from zeropipe.transports.monitor import Event
from zeropipe.transports.options import Options
from zeropipe.transports.reactor import IDLE_READ_DELAY, Reactor
from zeropipe.transports.session import Connecter


class FakePipe:
    fd = 42

    def idle_read(self) -> None:  # pragma: no cover - only its identity matters
        pass


class FakeOwner:
    def __init__(self, last_pump: float, parked: bool = False) -> None:
        self.last_pump = last_pump
        self.reader_parked = parked
        self.pipe = FakePipe()
        self.pipes = [self.pipe]

    def idle_pipes(self) -> list[FakePipe]:
        return [self.pipe]


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.stop()


def test_an_owner_whose_caller_just_read_is_looked_at_again_when_the_delay_ends(reactor) -> None:
    now = 100.0
    reactor.add_owner(FakeOwner(last_pump=now - 0.01))
    readers, recheck = reactor._idle_readers(now)
    assert readers == {}
    assert recheck == pytest.approx(IDLE_READ_DELAY - 0.01)


def test_an_owner_whose_caller_is_away_is_read(reactor) -> None:
    owner = FakeOwner(last_pump=0.0)
    reactor.add_owner(owner)
    readers, _ = reactor._idle_readers(100.0)
    assert readers == {owner.pipe.fd: owner.pipe.idle_read}


def test_an_owner_whose_caller_is_parked_reading_is_left_to_it(reactor) -> None:
    reactor.add_owner(FakeOwner(last_pump=0.0, parked=True))
    assert reactor._idle_readers(100.0) == ({}, 1.0)


class RecordingReactor:
    """Stands in for the reactor: records what the connecter schedules."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.soon: list[Any] = []

    def call_soon(self, fn: Any, *args: Any) -> None:
        self.soon.append(fn)

    def call_later(self, delay: float, fn: Any) -> Any:
        self.delays.append(round(delay * 1000))
        return _Handle()


class _Handle:
    def cancel(self) -> None:
        pass


class _Owner:
    def __init__(self, **options: int) -> None:
        self.options = Options(**options)
        self.events: list[tuple[int, int, str]] = []

    def event(self, kind: int, value: int, endpoint: str) -> None:
        self.events.append((kind, value, endpoint))


def _connecter(**options: int) -> tuple[Connecter, RecordingReactor]:
    fake = RecordingReactor()
    owner: Any = _Owner(immediate=1, **options)  # no pipe before a connection exists
    connecter = Connecter(owner, fake, parse_endpoint("tcp://127.0.0.1:1"))  # type: ignore[arg-type]
    return connecter, fake


def test_reconnect_waits_reconnect_ivl_without_backoff() -> None:
    connecter, fake = _connecter(reconnect_ivl=100)
    for _ in range(4):
        connecter._retry(failed=True)
    assert fake.delays == [100, 100, 100, 100]


def test_reconnect_backoff_doubles_up_to_the_maximum() -> None:
    connecter, fake = _connecter(reconnect_ivl=50, reconnect_ivl_max=400)
    for _ in range(6):
        connecter._retry(failed=True)
    assert fake.delays == [50, 100, 200, 400, 400, 400]
    # each scheduled retry is reported to a monitor with its delay, as libzmq does
    events: Any = connecter.owner
    retried = [value for kind, value, _ in events.events if kind == Event.CONNECT_RETRIED]
    assert retried == fake.delays
    assert {endpoint for _, _, endpoint in events.events} == {"tcp://127.0.0.1:1"}


def test_backoff_restarts_after_a_connection_that_worked() -> None:
    connecter, fake = _connecter(reconnect_ivl=50, reconnect_ivl_max=400)
    for _ in range(3):
        connecter._retry(failed=True)
    connecter._retry(failed=False)  # the lost connection had completed its handshake
    connecter._retry(failed=True)
    assert fake.delays == [50, 100, 200, 50, 50]


def test_reconnect_ivl_minus_one_never_reconnects() -> None:
    connecter, fake = _connecter(reconnect_ivl=-1)
    connecter._retry(failed=True)
    connecter._retry(failed=False)
    assert fake.delays == []


def test_a_stopped_connecter_schedules_nothing() -> None:
    connecter, fake = _connecter(reconnect_ivl=100)
    connecter.stop(0)
    connecter._retry(failed=True)
    assert fake.delays == []
