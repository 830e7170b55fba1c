"""The background thread of a Context: everything the caller cannot be relied on for.

Theory of operation
-------------------
The hot path runs in the caller's thread: ``send`` frames and writes,
``recv`` reads and parses (see :mod:`zeropipe.transports.stream`). This
thread only does what must happen while the caller is away:

* accept, connect, reconnect with backoff, and run handshakes;
* flush a tail of queued messages that the caller left behind (the caller
  arms a flush only when its output went from empty to non-empty, and wakes
  this thread only when it is parked in ``select``);
* write batches the kernel refused, when the socket becomes writable;
* read from connections whose caller is not reading (so disconnects, PINGs
  and incoming data are seen), up to the receive high-water mark;
* heartbeats, handshake timeouts and LINGER on close.

It waits with ``select.select`` (sub-millisecond timeouts; epoll rounds them
up to whole milliseconds) and falls back to ``poll`` for descriptors that do
not fit in an fd_set. Other threads talk to it only through
:meth:`Reactor.call_soon` and :meth:`Reactor.request_flush`; everything else
is called on this thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zeropipe.transports.waker import Waker

if TYPE_CHECKING:
    from zeropipe.transports.stream import StreamPipe

log = logging.getLogger("zeropipe")

#: How long a tail may wait before this thread writes it (seconds).
TAIL_DELAY = 0.0002
#: While the caller keeps sending, look at its tail at most this often.
TAIL_MAX_DELAY = 0.001
#: A socket whose caller has not read for this long is read by this thread.
IDLE_READ_DELAY = 0.05

Callback = Callable[[], None]


#: Past this many scheduled timers, the cancelled ones are purged now and then.
PURGE_TIMERS_FROM = 1024


class Timer:
    """A handle to cancel a scheduled call."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = _nothing  # the heap keeps the entry until it is due, not what it holds


def _nothing() -> None:
    pass


class Reactor:
    """One background thread per Context."""

    def __init__(self, name: str = "zeropipe-reactor") -> None:
        self._name = name
        self._waker = Waker()
        self._lock = threading.Lock()
        self._calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._flushes: list[StreamPipe] = []
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._readers: dict[int, Callback] = {}
        self._writers: dict[int, Callback] = {}
        self._owners: set[Any] = set()
        self._lingering: set[Any] = set()
        self._tails: dict[StreamPipe, tuple[float, float, tuple[int, int]]] = {}
        self.parked = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.thread_id: int | None = None

    # -- thread-safe entry points --------------------------------------------

    def start(self) -> None:
        """Start the thread if it is not running."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the reactor thread."""
        self._calls.append((fn, args))
        if self.parked:
            self.parked = False
            self._waker.wake()

    def request_flush(self, pipe: StreamPipe) -> None:
        """Ask for ``pipe``'s tail to be written if the caller leaves it."""
        self._flushes.append(pipe)
        if self.parked:
            self.parked = False
            self._waker.wake()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread after the calls already queued have run."""
        self._stopping = True
        self._waker.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._waker.close()

    def barrier(self, timeout: float | None = None) -> bool:
        """Wait until every call queued so far has run on the reactor thread."""
        thread = self._thread
        if thread is None or self.in_thread or not thread.is_alive():
            return True
        done = threading.Event()
        self.call_soon(done.set)
        return done.wait(timeout)

    @property
    def in_thread(self) -> bool:
        """True when called from the reactor thread."""
        return threading.get_ident() == self.thread_id

    # -- reactor-thread API --------------------------------------------------

    def call_later(self, delay: float, fn: Callback) -> Timer:
        """Schedule ``fn`` after ``delay`` seconds (reactor thread only)."""
        timer = Timer(time.monotonic() + delay, fn)
        timers = self._timers
        heapq.heappush(timers, (timer.when, next(self._seq), timer))
        if len(timers) >= PURGE_TIMERS_FROM and not len(timers) % PURGE_TIMERS_FROM:
            # Cancelled timers wait in the heap until due (a handshake timer: 30 s); when
            # many connections come and go, drop them rather than let the heap grow.
            timers[:] = [entry for entry in timers if not entry[2].cancelled]
            heapq.heapify(timers)
        return timer

    def add_reader(self, fd: int, fn: Callback) -> None:
        self._readers[fd] = fn

    def remove_reader(self, fd: int) -> None:
        self._readers.pop(fd, None)

    def add_writer(self, fd: int, fn: Callback) -> None:
        self._writers[fd] = fn

    def remove_writer(self, fd: int) -> None:
        self._writers.pop(fd, None)

    def add_owner(self, owner: Any) -> None:
        """Register a socket for idle reads (reactor thread)."""
        self._owners.add(owner)

    def add_owner_soon(self, owner: Any) -> None:
        """Register a socket for idle reads (any thread)."""
        if owner not in self._owners:
            self.call_soon(self._owners.add, owner)

    def retire(self, owner: Any) -> None:
        """Forget a closed socket and release its waker (any thread)."""
        with self._lock:
            running = self._thread is not None and not self._stopping
        if running:
            self.call_soon(self._retire, owner)
        else:  # no thread will ever run a queued call: release it now
            self._retire(owner)

    def _retire(self, owner: Any) -> None:
        self._owners.discard(owner)
        owner.waker.close()

    def linger_started(self, pipe: Any) -> None:
        """A closed connection still has output to deliver (Context.term waits for it)."""
        self._lingering.add(pipe)

    def linger_ended(self, pipe: Any) -> None:
        self._lingering.discard(pipe)

    @property
    def lingering(self) -> int:
        """How many closed connections are still delivering their queued output."""
        return len(self._lingering)

    def lingering_endpoints(self) -> list[str]:
        """The endpoints of the pipes still delivering after their socket closed."""
        return [str(getattr(pipe, "endpoint", "")) for pipe in list(self._lingering)]

    # -- the loop ------------------------------------------------------------

    def _run(self) -> None:
        self.thread_id = threading.get_ident()
        while True:
            try:
                if self._step():
                    break
            except Exception:  # a bug in one callback must not kill the thread
                log.exception("zeropipe reactor callback failed")

    def _step(self) -> bool:
        self._run_calls()
        if self._stopping and not self._calls:
            self._waker.close()
            return True
        now = time.monotonic()
        timeout = self._run_timers(now)
        timeout = min(timeout, self._run_tails(now))
        idle, recheck = self._idle_readers(now)
        timeout = min(timeout, recheck)
        readers = dict(self._readers)
        readers.update(idle)
        rfds = [self._waker.fd, *readers]
        wfds = list(self._writers)
        self.parked = True
        if self._calls or self._flushes or self._stopping:
            timeout = 0.0
        try:
            rready, wready = _wait(rfds, wfds, timeout)
        finally:
            self.parked = False
        for fd in rready:
            if fd == self._waker.fd:
                self._waker.clear()
                continue
            cb = readers.get(fd)
            if cb is not None:
                cb()
        for fd in wready:
            cb = self._writers.get(fd)
            if cb is not None:
                cb()
        return False

    def _run_calls(self) -> None:
        while self._calls:
            calls = self._calls[:]
            del self._calls[: len(calls)]
            for fn, args in calls:
                try:
                    fn(*args)
                except Exception:
                    log.exception("zeropipe reactor call failed")

    def _run_timers(self, now: float) -> float:
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, timer = heapq.heappop(timers)
            if not timer.cancelled:
                timer.callback()
        return max(0.0, timers[0][0] - now) if timers else 1.0

    def _run_tails(self, now: float) -> float:
        """Write the tails of callers that stopped sending.

        A caller arms a pipe once per burst (its output went from empty to
        non-empty shortly after a write). While it keeps sending it writes its
        own batches (by size, or by age every 64 messages), so this thread
        only watches its message count, backing off from ``TAIL_DELAY`` to
        ``TAIL_MAX_DELAY``; once the count stops moving, it writes the tail.
        """
        tails = self._tails
        if self._flushes:
            new = self._flushes[:]
            del self._flushes[: len(new)]
            for pipe in new:
                if pipe not in tails:
                    tails[pipe] = (pipe.armed_at + TAIL_DELAY, TAIL_DELAY, (pipe.writes, 1))
        timeout = 1.0
        for pipe, (due, interval, seen) in list(tails.items()):
            if now < due:
                timeout = min(timeout, due - now)
                continue
            state = (pipe.writes, pipe.out_msgs)
            # Unchanged since the last look: the caller has gone; write its tail. While it
            # is active it stays armed (no wake-ups from it) and this look costs no lock.
            if state == seen and pipe.flush_tail():
                del tails[pipe]
                continue
            interval = min(interval * 2, TAIL_MAX_DELAY)
            tails[pipe] = (now + interval, interval, state)
            timeout = min(timeout, interval)
        return timeout

    def _idle_readers(self, now: float) -> tuple[dict[int, Callback], float]:
        """Connections to read for callers that are away, and when to look again."""
        readers: dict[int, Callback] = {}
        recheck = 1.0
        for owner in self._owners:
            if owner.reader_parked:
                continue
            since = now - owner.last_pump
            if since < IDLE_READ_DELAY:
                if owner.pipes:
                    recheck = min(recheck, IDLE_READ_DELAY - since)
                continue
            for pipe in owner.idle_pipes():
                readers[pipe.fd] = pipe.idle_read
        return readers, recheck


def _wait(rfds: list[int], wfds: list[int], timeout: float) -> tuple[list[int], list[int]]:
    if max(rfds + wfds, default=0) < 1024:
        try:
            r, w, _ = select.select(rfds, wfds, [], timeout)
        except (OSError, ValueError):
            return _poll(rfds, wfds, 0.0)
        return r, w
    return _poll(rfds, wfds, timeout)


def _poll(rfds: list[int], wfds: list[int], timeout: float) -> tuple[list[int], list[int]]:
    poller = select.poll()
    masks: dict[int, int] = {}
    for fd in rfds:
        masks[fd] = masks.get(fd, 0) | select.POLLIN
    for fd in wfds:
        masks[fd] = masks.get(fd, 0) | select.POLLOUT
    for fd, mask in masks.items():
        poller.register(fd, mask)
    r: list[int] = []
    w: list[int] = []
    for fd, ev in poller.poll(max(0, int(timeout * 1000 + 0.999))):
        if ev & (select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLNVAL):
            r.append(fd)
        if ev & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            w.append(fd)
    return r, w
