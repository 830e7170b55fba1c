"""Errors of the codec layer.

Every codec turns whatever its library raises into one of these, so a caller catches
:class:`DecodeError` (a ``ValueError``) for any bad payload, whichever codec read it::

    raise DecodeError("protobuf", "market.Trade", "truncated payload")
    # DecodeError: protobuf could not decode market.Trade: truncated payload
"""

from __future__ import annotations


class CodecError(Exception):
    """Base of every codec error; also raised for an unknown codec name or wire id."""


class MissingCodecError(CodecError):
    """A codec whose library is not installed; the message names the extra that provides it."""

    def __init__(self, codec: str, extra: str, library: str = "") -> None:
        self.codec = codec
        self.extra = extra
        self.library = library or extra
        hint = f"pip install 'zeropipe[{extra}]'" if extra else f"install {self.library}"
        super().__init__(
            f"the {codec!r} codec needs the {self.library!r} package, which is not installed: "
            f"{hint}"
        )


class _PayloadError(CodecError, ValueError):
    verb = "handle"

    def __init__(self, codec: str, type_name: str, reason: str) -> None:
        self.codec = codec
        self.type_name = type_name
        self.reason = reason
        super().__init__(_describe(self.verb, codec, type_name, reason))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.codec, self.type_name, self.reason))


class DecodeError(_PayloadError):
    """A payload (or typed-frame header) that cannot become the expected message.

    ``codec`` is the codec's name and ``type_name`` the message type's full name; either is
    "" when the bytes were too broken to tell (a frame that is not a typed-frame header).
    """

    verb = "decode"


class EncodeError(_PayloadError):
    """A message that a codec cannot encode (a field holding a value of the wrong type)."""

    verb = "encode"


def _describe(verb: str, codec: str, type_name: str, reason: str) -> str:
    if codec and type_name:
        return f"{codec} could not {verb} {type_name}: {reason}"
    if codec:
        return f"{codec} could not {verb}: {reason}"
    if type_name:
        return f"could not {verb} {type_name}: {reason}"
    return reason


def why(exc: BaseException) -> str:
    """What a library's exception says, as the ``reason`` of a payload error."""
    return f"{type(exc).__name__}: {exc}"
