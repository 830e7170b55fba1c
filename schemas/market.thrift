// Market data: trades and quotes (the Trade of the codec benchmark).
// The same types are in market.proto; a peer may use either.
namespace py market
namespace java zeropipe.examples.market

enum Side {
  SIDE_UNSPECIFIED = 0,
  BUY = 1,
  SELL = 2,
}

struct Trade {
  1: i64 id,
  2: string symbol,
  3: double price,
  4: i32 qty,
  5: i64 ts,                  // Unix time in nanoseconds
  6: list<string> tags,
  7: string venue,
  8: Side side,               // the aggressor
}

struct Quote {
  1: string symbol,
  2: double bid,
  3: double ask,
  4: i32 bid_qty,
  5: i32 ask_qty,
  6: i64 ts,
  7: string venue,
  8: optional double last,    // absent before the first trade of the day
}

// The last quote of each venue, and the trades since the previous snapshot.
struct Snapshot {
  1: i64 seq,
  2: map<string, Quote> quotes,
  3: list<Trade> trades,
  4: bool complete,
  5: binary checksum,
}
