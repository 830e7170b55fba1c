"""The codec registry: codecs by name and by the one-byte wire id of a typed-frame header.

Built-in codecs (each behind a pip extra, created on first use)::

    name             wire id  content type              extra
    json                1     application/json          json (orjson; stdlib json without it)
    bson                2     application/bson          bson (pymongo's bson)
    protobuf            3     application/x-protobuf    protobuf
    thrift-binary       4     application/x-thrift      thrift
    thrift-compact      5     application/x-thrift      thrift

Wire ids 1..127 are reserved for zeropipe's built-ins; third-party codecs use 128..255 and
either call :func:`register` or declare an entry point in the group ``zeropipe.codecs``
(``msgpack = zeropipe_msgpack:MsgpackCodec``: a Codec class, created with no arguments, or a
Codec instance). Entry points are loaded once, on the first lookup that misses; a plugin that
fails to load is remembered, and only a lookup of that plugin's name reports the failure.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, runtime_checkable

from .errors import CodecError, MissingCodecError

if TYPE_CHECKING:
    from importlib import metadata

T = TypeVar("T")

ENTRY_POINT_GROUP = "zeropipe.codecs"
PLUGIN_WIRE_IDS = range(128, 256)


@runtime_checkable
class Codec(Protocol):
    """What a codec provides. ``decode`` raises :class:`~zeropipe.codecs.errors.DecodeError`
    (and ``encode`` :class:`~zeropipe.codecs.errors.EncodeError`) for anything it cannot
    handle, never another exception."""

    name: str
    wire_id: int
    content_type: str
    extra: str

    def encode(self, obj: Any) -> bytes: ...

    def decode(self, cls: type[T], data: bytes) -> T: ...


# name -> (wire id, module, class): imported and created on first use
_BUILTINS: dict[str, tuple[int, str, str]] = {
    "json": (1, "zeropipe.codecs.json_codec", "JsonCodec"),
    "bson": (2, "zeropipe.codecs.bson_codec", "BsonCodec"),
    "protobuf": (3, "zeropipe.codecs.protobuf_codec", "ProtobufCodec"),
    "thrift-binary": (4, "zeropipe.codecs.thrift_codec", "ThriftBinaryCodec"),
    "thrift-compact": (5, "zeropipe.codecs.thrift_codec", "ThriftCompactCodec"),
}
# name -> (pip extra, the PyPI package it installs), for MissingCodecError
_LIBRARIES = {
    "json": ("json", "orjson"),
    "bson": ("bson", "pymongo"),
    "protobuf": ("protobuf", "protobuf"),
    "thrift-binary": ("thrift", "thrift"),
    "thrift-compact": ("thrift", "thrift"),
}

_lock = threading.RLock()
_by_name: dict[str, Codec] = {}
_by_id: dict[int, Codec] = {}
_pending: dict[str, tuple[int, str, str]] = dict(_BUILTINS)
_plugins_loaded = False
_broken: dict[str, tuple[str, Exception]] = {}  # plugin name -> (what failed, the error)


def register(codec: Codec, *, replace: bool = False) -> Codec:
    """Add ``codec``; refuses a name or wire id already taken (built-ins included) unless
    ``replace``, which then drops whatever codec held that name or id. Returns ``codec``."""
    name, wire_id = _check(codec)
    with _lock:
        clash = _clash(name, wire_id)
        if clash and not replace:
            raise CodecError(f"cannot register codec {name!r} (wire id {wire_id}): {clash}")
        if wire_id not in PLUGIN_WIRE_IDS and not (replace and _reserved_for(wire_id, name)):
            raise CodecError(
                f"cannot register codec {name!r}: wire ids 1..127 are reserved for zeropipe's "
                f"built-in codecs; a plugin uses one of 128..255 (got {wire_id})"
            )
        _drop(name, wire_id)
        _by_name[name] = codec
        _by_id[wire_id] = codec
        _broken.pop(name, None)
    return codec


def get(codec: str | int | Codec) -> Codec:
    """The codec called ``codec`` (a name such as ``"json"``) or with that wire id.

    A codec instance is returned as is. Raises :class:`MissingCodecError` (naming the pip
    extra) when the codec's library is not installed, and :class:`CodecError` listing the
    known codecs when there is no such codec.
    """
    if isinstance(codec, str):
        found = _by_name.get(codec)
    elif isinstance(codec, int) and not isinstance(codec, bool):
        found = _by_id.get(codec)
    elif _looks_like_codec(codec):
        return cast(Codec, codec)
    else:
        raise CodecError(f"a codec is named by a str or a wire id (int), not {codec!r}")
    if found is not None:
        return found
    return _get_slow(codec)


def available() -> list[str]:
    """Names of the codecs usable here (their libraries import), in wire-id order."""
    with _lock:
        _load_plugins()
        for name in list(_pending):
            try:
                _create_builtin(name)
            except CodecError:
                pass
        return [c.name for _, c in sorted(_by_id.items())]


def encode(obj: Any, codec: str | int | Codec = "json") -> bytes:
    """``obj`` (an instance of a ``@message`` class) encoded with ``codec``."""
    return get(codec).encode(obj)


def decode(cls: type[T], data: bytes, codec: str | int | Codec = "json") -> T:
    """A ``cls`` instance decoded from ``data`` with ``codec``; raises DecodeError."""
    return get(codec).decode(cls, data)


# -- internals -------------------------------------------------------------------------------


def _get_slow(key: str | int) -> Codec:
    with _lock:
        found = _lookup(key)
        if found is not None:
            return found
        name = _builtin_name(key)
        if name is not None:
            return _create_builtin(name)
        if not _plugins_loaded:
            _load_plugins()
            found = _lookup(key)
            if found is not None:
                return found
        if isinstance(key, str) and key in _broken:
            where, error = _broken[key]
            if isinstance(error, MissingCodecError):
                raise MissingCodecError(error.codec, error.extra, error.library) from error
            raise CodecError(
                f"codec plugin {key!r} failed to load: {where}: {type(error).__name__}: {error}"
            ) from error
        known = ", ".join(sorted({*_by_name, *_pending}))
        what = f"codec {key!r}" if isinstance(key, str) else f"codec wire id {key}"
        broken = f"; plugins that failed to load: {', '.join(sorted(_broken))}" if _broken else ""
        raise CodecError(f"unknown {what}: known codecs are {known}{broken}")


def _lookup(key: str | int) -> Codec | None:
    return _by_name.get(key) if isinstance(key, str) else _by_id.get(key)


def _builtin_name(key: str | int) -> str | None:
    if isinstance(key, str):
        return key if key in _pending else None
    for name, (wire_id, _, _) in _pending.items():
        if wire_id == key:
            return name
    return None


def _create_builtin(name: str) -> Codec:
    wire_id, module_name, class_name = _pending[name]
    try:
        module = importlib.import_module(module_name)
    except MissingCodecError:
        raise
    except ImportError as exc:
        if exc.name == module_name:
            raise CodecError(f"the built-in codec {name!r} is not part of this build") from exc
        raise MissingCodecError(name, *_LIBRARIES[name]) from exc
    codec: Codec = getattr(module, class_name)()
    if codec.name != name or codec.wire_id != wire_id:
        raise CodecError(f"{module_name}.{class_name} is not the {name!r} codec")
    del _pending[name]
    _by_name[name] = codec
    _by_id[wire_id] = codec
    return codec


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib import metadata  # slow to import; only needed on a miss

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _by_name or ep.name in _broken:
            continue  # the first distribution on sys.path wins, as for imports
        try:
            loaded = ep.load()
            codec = loaded() if isinstance(loaded, type) else loaded
            if not _looks_like_codec(codec):
                raise CodecError(f"{ep.value} is not a codec (it needs name, wire_id, encode…)")
            if codec.name != ep.name:
                raise CodecError(f"{ep.value} is named {codec.name!r}, not {ep.name!r}")
            register(codec)
        except Exception as exc:
            _broken[ep.name] = (_describe_entry_point(ep), exc)


def _describe_entry_point(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    origin = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{origin} (group {ENTRY_POINT_GROUP})"


def _check(codec: Any) -> tuple[str, int]:
    if not _looks_like_codec(codec):
        raise CodecError(
            f"{codec!r} is not a codec: it needs name, wire_id, content_type, extra, "
            "encode(obj) and decode(cls, data)"
        )
    name, wire_id = codec.name, codec.wire_id
    if not isinstance(name, str) or not name:
        raise CodecError(f"a codec name is a non-empty str, not {name!r}")
    if not isinstance(wire_id, int) or isinstance(wire_id, bool) or not 1 <= wire_id <= 255:
        raise CodecError(f"codec {name!r}: a wire id is an int in 1..255, not {wire_id!r}")
    return name, wire_id


def _looks_like_codec(obj: Any) -> bool:
    return (
        all(hasattr(obj, a) for a in ("name", "wire_id", "content_type", "extra"))
        and callable(getattr(obj, "encode", None))
        and callable(getattr(obj, "decode", None))
        and not isinstance(obj, type)
    )


def _clash(name: str, wire_id: int) -> str:
    if name in _by_name or name in _pending:
        return f"the name {name!r} is taken"
    for other, (builtin_id, _, _) in _pending.items():
        if builtin_id == wire_id:
            return f"wire id {wire_id} is the built-in codec {other!r}"
    holder = _by_id.get(wire_id)
    if holder is not None:
        return f"wire id {wire_id} is taken by {holder.name!r}"
    return ""


def _reserved_for(wire_id: int, name: str) -> bool:
    """A replacement of a built-in keeps its name and wire id."""
    return any(n == name and i == wire_id for n, (i, _, _) in _BUILTINS.items())


def _drop(name: str, wire_id: int) -> None:
    for key in [n for n, (i, _, _) in _pending.items() if n == name or i == wire_id]:
        del _pending[key]
    old = _by_name.pop(name, None)
    if old is not None:
        _by_id.pop(old.wire_id, None)
    old = _by_id.pop(wire_id, None)
    if old is not None:
        _by_name.pop(old.name, None)


def _reset() -> None:
    """Forget registrations and plugins (for tests): back to the built-ins, none created."""
    global _plugins_loaded
    with _lock:
        _by_name.clear()
        _by_id.clear()
        _broken.clear()
        _pending.clear()
        _pending.update(_BUILTINS)
        _plugins_loaded = False


class Lazy(Generic[T]):
    """A value made by ``make()`` on the first call, once, however many threads ask at the same
    time (what a codec imports and sets up for all its instances). ``value`` is None until
    then; setting it back to None makes the next call make it again."""

    __slots__ = ("_lock", "_make", "value")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.value: T | None = None

    def __call__(self) -> T:
        value = self.value
        if value is None:
            with self._lock:
                value = self.value
                if value is None:
                    value = self.value = self._make()
        return value
