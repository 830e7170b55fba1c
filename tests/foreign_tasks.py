"""The pipelines of tests/test_pipeline_foreign_worker.py, as their author declares them.

Only the head imports these functions (for their import paths and types). The foreign workers
in the test never call them: they compute the same results with their own code."""

from __future__ import annotations

from collections.abc import Iterator

from codegen_golden.market_proto import Quote, Side, Trade


def numbers(n: int) -> Iterator[int]:
    yield from range(n)


def square(x: int) -> int:
    return x * x


def trades(n: int) -> Iterator[Trade]:
    for i in range(n):
        yield Trade(
            id=(1 << 40) + i,
            symbol=("AAPL", "MSFT", "NVDA")[i % 3],
            price=100.0 + 0.25 * i,
            qty=10 * i,
            ts=1_700_000_000_000_000_000 + i,
            tags=["odd-lot"] * (i % 2),
            venue="XNAS",
            side=Side.SELL if i % 2 else Side.BUY,
        )


def quote_of(t: Trade) -> Quote:
    """A quote around the trade's price; ``last`` is present only for tagged trades."""
    return Quote(
        symbol=t.symbol,
        bid=t.price - 0.5,
        ask=t.price + 0.5,
        bid_qty=t.qty,
        ask_qty=t.qty if t.side == Side.SELL else 0,
        ts=t.ts,
        venue=t.venue,
        last=t.price if t.tags else None,
    )
