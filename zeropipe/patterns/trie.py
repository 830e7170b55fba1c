"""Subscriptions: which message prefixes a peer (or a SUB socket) wants.

Matching looks up one dict entry per distinct prefix length, so its cost does
not grow with the number of subscriptions (libzmq uses a trie for the same
reason; prefix lengths are few in practice).
"""

from __future__ import annotations

from collections import Counter

from zeropipe.protocol.frames import Buffer


class Subscriptions:
    """A set of topic prefixes, optionally counted (SUB counts, PUB does not)."""

    def __init__(self, counted: bool = False) -> None:
        self.counted = counted
        self._topics: dict[bytes, int] = {}
        self._lengths: Counter[int] = Counter()
        self._sorted_lengths: list[int] = []

    def add(self, topic: bytes) -> bool:
        """Add ``topic``; True when it was not there before."""
        count = self._topics.get(topic, 0)
        if count and not self.counted:
            return False
        self._topics[topic] = count + 1
        if not count:
            self._lengths[len(topic)] += 1
            self._sorted_lengths = sorted(self._lengths)
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
        self._lengths[len(topic)] -= 1
        if not self._lengths[len(topic)]:
            del self._lengths[len(topic)]
        self._sorted_lengths = sorted(self._lengths)
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
