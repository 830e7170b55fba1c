// Football match events: the live feed of the PUB/SUB example, as typed messages.
// The same types are in football.proto; a peer may use either.
namespace py football
namespace java zeropipe.examples.football

// What happened.
enum EventKind {
  UNSPECIFIED = 0,
  GOAL = 1,
  CARD = 2,
  SUBSTITUTION = 3,
  KICK_OFF = 4,
  FULL_TIME = 5,
}

// Goals of each side.
struct Score {
  1: i32 home,
  2: i32 away,
}

// One event of a match; subscribers filter on the team.
struct MatchEvent {
  1: string match_id,
  2: EventKind kind,
  3: string team,             // the team concerned, by country: "Brazil"
  4: string player,           // empty for kick-off and full-time
  5: i32 minute,
  6: Score score,             // the score after the event
  7: optional string detail,  // "yellow", "red", "in: 9, out: 11"...
  8: i64 ts,                  // Unix time in nanoseconds
}
