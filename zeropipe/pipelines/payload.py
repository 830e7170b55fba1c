"""How a batch of tasks or results travels: one frame of plain values, or a frame per message.

An edge between two stages carries either typed messages (one codec payload per task, a frame
each) or plain Python values (the whole batch as one array, encoded by a values codec in one
call: per-task encoding would cost more than a tiny task itself)."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zeropipe.codecs import Codec, CodecError, is_message
from zeropipe.codecs import get as get_codec

from .errors import PipelineError
from .types import describe, schema_text

VALUES = "values"
MESSAGES = "messages"

#: The codecs that carry plain values, and which of int/float/str/bytes/list/dict they cannot.
VALUE_CODECS = ("msgpack", "json", "bson")
DEFAULT_VALUES_CODEC = "msgpack"
DEFAULT_MESSAGE_CODEC = "protobuf"


class BatchError(Exception):
    """A batch that would not decode."""


@dataclass(frozen=True)
class Edge:
    """The link between two stages: its layout, codec and the type of what it carries."""

    layout: str
    codec: str
    type: Any

    def ready(self) -> dict[str, str]:
        """The edge as READY announces it (a typed message also by import path and schema)."""
        desc = {"layout": self.layout, "codec": self.codec, "type": describe(self.type)}
        if self.layout == MESSAGES:
            desc["path"] = f"{self.type.__module__}:{self.type.__qualname__}"
            desc["schema"] = schema_text(self.type)
        return desc


def edge_for(t: Any, codec: str | None, where: str) -> Edge:
    """The edge carrying ``t`` with the pipeline's codec (None: the default for its kind)."""
    if is_message(t):
        name = codec or DEFAULT_MESSAGE_CODEC
        try:
            get_codec(name)
        except CodecError as exc:
            raise PipelineError(
                f"{where}: {describe(t)} cannot travel with codec {name}: {exc}"
            ) from None
        return Edge(MESSAGES, name, t)
    name = codec or DEFAULT_VALUES_CODEC
    if name not in VALUE_CODECS:
        try:
            get_codec(name)
        except CodecError as exc:
            raise PipelineError(f"{where}: {exc}") from None
        raise PipelineError(
            f"{where}: codec {name!r} carries typed messages only, and {describe(t)} is a plain "
            f"value; plain values need one of {', '.join(VALUE_CODECS)}"
        )
    _values_codec(name)  # the library is installed
    if name == "json" and _mentions_bytes(t):
        raise PipelineError(f"{where}: json cannot carry {describe(t)}; use msgpack or bson")
    return Edge(VALUES, name, t)


def _mentions_bytes(t: Any) -> bool:
    return t in (bytes, bytearray) or any(_mentions_bytes(a) for a in typing.get_args(t))


class Packer:
    """Encodes and decodes batches of one edge."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        if edge.layout == VALUES:
            self._dump, self._load = _values_codec(edge.codec)
        else:
            self._codec: Codec = get_codec(edge.codec)

    def encode(self, items: Sequence[Any]) -> tuple[list[bytes], list[tuple[int, str]]]:
        """The payload frames of the items that encode, and (index, reason) of the others,
        found in one pass."""
        bad: list[tuple[int, str]] = []
        if self.edge.layout == VALUES:
            try:
                return [self._dump(items)], bad
            except Exception:
                good = []
                for i, item in enumerate(items):
                    try:
                        self._dump([item])
                        good.append(item)
                    except Exception as exc:
                        bad.append((i, f"{self.edge.codec} cannot encode {exc}"))
                return ([self._dump(good)] if good else []), bad
        encode, cls = self._codec.encode, self.edge.type
        frames = []
        for i, item in enumerate(items):
            if not isinstance(item, cls):
                bad.append((i, f"expected {describe(cls)}, got {type(item).__name__}"))
                continue
            try:
                frames.append(encode(item))
            except CodecError as exc:
                bad.append((i, str(exc)))
        return frames, bad

    def decode(self, frames: Sequence[bytes], count: int) -> list[Any]:
        if self.edge.layout == VALUES:
            if len(frames) != 1:
                raise BatchError(f"a batch of values is one frame, got {len(frames)}")
            try:
                items = self._load(frames[0])
            except Exception as exc:
                raise BatchError(f"{self.edge.codec} cannot decode the batch: {exc}") from None
            if not isinstance(items, list) or len(items) != count:
                raise BatchError(f"the batch holds {_count(items)} values for {count} ids")
            return items
        if len(frames) != count:
            raise BatchError(f"{len(frames)} message frames for {count} ids")
        decode, cls = self._codec.decode, self.edge.type
        try:
            return [decode(cls, bytes(f)) for f in frames]
        except CodecError as exc:
            raise BatchError(str(exc)) from None


def _count(items: Any) -> str:
    return str(len(items)) if isinstance(items, list) else f"a {type(items).__name__}, not"


def _values_codec(name: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    try:
        if name == "msgpack":
            import msgpack  # type: ignore[import-untyped,unused-ignore]

            packer = msgpack.Packer(use_bin_type=True)

            def unpack(data: bytes) -> Any:
                return msgpack.unpackb(data, raw=False, strict_map_key=False)

            return packer.pack, unpack
        if name == "json":
            try:
                import orjson

                return orjson.dumps, orjson.loads
            except ImportError:
                return (lambda v: json.dumps(v, separators=(",", ":")).encode()), json.loads
        if name == "bson":
            import bson

            return (lambda v: bson.encode({"v": v})), (lambda d: bson.decode(d)["v"])
    except ImportError as exc:
        extra = "bson" if name == "bson" else name
        raise PipelineError(
            f"the {name} codec needs its library: pip install 'zeropipe[{extra}]' ({exc})"
        ) from exc
    raise PipelineError(f"unknown values codec {name!r}")
