"""The pipeline protocol's messages (docs/pipeline-protocol.md is the specification).

A worker's DEALER talks to the head's ROUTER. Every message starts with a command frame;
control messages carry one UTF-8 JSON object, TASKS and RESULTS carry their task ids as an
array of little-endian uint64 and then the payload frames (see payload.py)."""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

VERSION = 1

HELLO = b"HELLO"
READY = b"READY"
REFUSE = b"REFUSE"
TASKS = b"TASKS"
RESULTS = b"RESULTS"
FAILED = b"FAILED"
HEARTBEAT = b"HEARTBEAT"
END = b"END"
BYE = b"BYE"

COMMANDS = frozenset({HELLO, READY, REFUSE, TASKS, RESULTS, FAILED, HEARTBEAT, END, BYE})

_BUSY = struct.Struct("<Q")
_LITTLE = array("Q", [1]).tobytes()[0] == 1


class ProtocolViolation(Exception):
    """A message that does not follow the pipeline protocol."""


def control(command: bytes, body: dict[str, Any]) -> list[bytes]:
    return [command, json.dumps(body, separators=(",", ":")).encode()]


def parse_control(frames: Sequence[bytes]) -> dict[str, Any]:
    if len(frames) != 2:
        raise ProtocolViolation(f"{_name(frames)} has {len(frames) - 1} body frames, not 1")
    try:
        body = json.loads(bytes(frames[1]))
    except ValueError as exc:
        raise ProtocolViolation(f"{_name(frames)}: the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolViolation(f"{_name(frames)}: the body is not a JSON object")
    return body


def pack_ids(ids: Iterable[int]) -> bytes:
    a = array("Q", ids)
    if not _LITTLE:
        a.byteswap()
    return a.tobytes()


def unpack_ids(data: bytes) -> list[int]:
    if len(data) % 8:
        raise ProtocolViolation(f"an id frame of {len(data)} bytes (not a multiple of 8)")
    a = array("Q")
    a.frombytes(data)
    if not _LITTLE:
        a.byteswap()
    return a.tolist()


def tasks(ids: bytes, payload: list[bytes]) -> list[bytes]:
    return [TASKS, ids, *payload]


def results(ids: bytes, busy_ns: int, payload: list[bytes]) -> list[bytes]:
    return [RESULTS, ids, _BUSY.pack(busy_ns), *payload]


def parse_batch(
    frames: Sequence[bytes], with_busy: bool
) -> tuple[bytes, list[int], int, list[bytes]]:
    """(the id frame, the ids, the busy nanoseconds, the payload frames) of TASKS or RESULTS."""
    head = 3 if with_busy else 2
    if len(frames) < head + 1:
        raise ProtocolViolation(f"{_name(frames)} without payload frames")
    id_frame = bytes(frames[1])
    ids = unpack_ids(id_frame)
    if not ids:
        raise ProtocolViolation(f"{_name(frames)} without ids")
    busy = parse_busy(frames[2]) if with_busy else 0
    return id_frame, ids, busy, [bytes(f) for f in frames[head:]]


def parse_busy(frame: bytes) -> int:
    if len(frame) != 8:
        raise ProtocolViolation("RESULTS: the busy-time frame is not 8 bytes")
    busy: int = _BUSY.unpack(frame)[0]
    return busy


def _name(frames: Sequence[bytes]) -> str:
    return bytes(frames[0][:16]).decode("ascii", "replace") if frames else "an empty message"
