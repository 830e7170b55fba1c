"""The stages of the demo pipeline (market.toml): synthetic trades -> simulated value at risk
per trade -> a report by symbol. The trades are ``market.Trade`` from schemas/market.proto
(market_proto.py is generated: ``zeropipe codegen schemas/market.proto -o examples/pipeline``);
``Risk`` is a typed message declared here. Both travel between processes as protobuf."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Iterator

from market_proto import Side, Trade

from zeropipe.codecs import field, message

SYMBOLS = {"AAPL": 0.018, "MSFT": 0.016, "NVDA": 0.032, "TSLA": 0.041, "XOM": 0.014}
PATHS = 400  # simulated one-day returns per trade


@message("demo.Risk")
@dataclasses.dataclass
class Risk:
    trade_id: int = field(1, "int64", default=0)
    symbol: str = field(2, default="")
    notional: float = field(3, default=0.0)
    var99: float = field(4, default=0.0)  # the one-day loss exceeded once in a hundred days


def trades(count: int, seed: int = 7) -> Iterator[Trade]:
    """``count`` reproducible trades."""
    rng = random.Random(seed)
    names = sorted(SYMBOLS)
    for n in range(count):
        symbol = rng.choice(names)
        yield Trade(
            id=n,
            symbol=symbol,
            price=round(rng.uniform(50, 500), 2),
            qty=rng.randrange(1, 1000),
            ts=1_700_000_000_000_000_000 + n * 1_000_000,
            tags=["demo"],
            venue=rng.choice(["XNAS", "XNYS", "BATS"]),
            side=rng.choice([Side.BUY, Side.SELL]),
        )


def value_at_risk(trade: Trade) -> Risk:
    """Monte Carlo: the 99th percentile one-day loss of the position."""
    notional = trade.price * trade.qty * (1 if trade.side == Side.BUY else -1)
    rng = random.Random(trade.id)
    vol = SYMBOLS[trade.symbol]
    losses = sorted(-notional * rng.gauss(0.0, vol) for _ in range(PATHS))
    return Risk(trade.id, trade.symbol, notional, losses[int(PATHS * 0.99)])


def report(risks: Iterable[Risk]) -> dict[str, tuple[int, float, float]]:
    """Trades, net notional and summed VaR by symbol; printed, and returned."""
    table: dict[str, tuple[int, float, float]] = {}
    for r in risks:
        count, notional, var = table.get(r.symbol, (0, 0.0, 0.0))
        table[r.symbol] = (count + 1, notional + r.notional, var + r.var99)
    print(f"{'symbol':8}{'trades':>8}{'net notional':>16}{'sum VaR99':>14}")
    for symbol, (count, notional, var) in sorted(table.items()):
        print(f"{symbol:8}{count:8d}{notional:16,.0f}{var:14,.0f}")
    return table
