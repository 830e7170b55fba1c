"""Subscriptions: which message prefixes a peer (or a SUB socket) wants.

Matching looks up one dict entry per distinct prefix length, so its cost does
not grow with the number of subscriptions (libzmq uses a trie for the same
reason; prefix lengths are few in practice).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TypeVar

from zeropipe.protocol.frames import Buffer

_Table = TypeVar("_Table", bound=dict)  # type: ignore[type-arg]

#: Tables that shrank below a quarter of their peak (and had this many entries) are
#: rebuilt: Python's dicts keep their largest size, so a subscription flood would
#: otherwise hold its memory for the socket's life.
COMPACT_FROM = 4096


def compacted(table: _Table, peak: int) -> tuple[_Table, int]:
    """``table`` and its peak size, the table rebuilt smaller if it shrank a lot."""
    size = len(table)
    if size > peak:
        return table, size
    if peak >= COMPACT_FROM and size < peak // 4:
        return type(table)(table), size
    return table, peak


class Lengths:
    """The distinct lengths of a set of topics, kept sorted as topics come and go
    (a subscription costs O(log n), not a re-sort)."""

    __slots__ = ("_counts", "sorted")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        #: The distinct lengths, ascending (the same list object for the set's life).
        self.sorted: list[int] = []

    def add(self, length: int) -> None:
        count = self._counts.get(length, 0)
        self._counts[length] = count + 1
        if not count:
            insort(self.sorted, length)

    def remove(self, length: int) -> None:
        count = self._counts[length] - 1
        if count:
            self._counts[length] = count
            return
        del self._counts[length]
        del self.sorted[bisect_left(self.sorted, length)]


class Subscriptions:
    """A set of topic prefixes, optionally counted (SUB counts, PUB does not)."""

    def __init__(self, counted: bool = False) -> None:
        self.counted = counted
        self._topics: dict[bytes, int] = {}
        self._lengths = Lengths()
        self._sorted_lengths = self._lengths.sorted

    def add(self, topic: bytes) -> bool:
        """Add ``topic``; True when it was not there before."""
        count = self._topics.get(topic, 0)
        if count and not self.counted:
            return False
        self._topics[topic] = count + 1
        if not count:
            self._lengths.add(len(topic))
        return not count

    def remove(self, topic: bytes) -> bool:
        """Remove ``topic`` (one count of it); True when it is now gone."""
        count = self._topics.get(topic, 0)
        if not count:
            return False
        if count > 1 and self.counted:
            self._topics[topic] = count - 1
            return False
        del self._topics[topic]
        self._lengths.remove(len(topic))
        return True

    def matches(self, data: Buffer) -> bool:
        """True when ``data`` starts with one of the topics."""
        topics = self._topics
        if not topics:
            return False
        lengths = self._sorted_lengths
        if len(lengths) == 1:  # the usual case: topics of one length
            length = lengths[0]
            return length <= len(data) and bytes(data[:length]) in topics
        for length in lengths:
            if length > len(data):
                return False
            if bytes(data[:length]) in topics:
                return True
        return False

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._topics))

    def __len__(self) -> int:
        return len(self._topics)
