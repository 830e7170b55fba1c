"""ZAP (RFC 27): the request a server sends its authentication handler, and the reply.

The engine speaks to the handler bound at ``inproc://zeromq.zap.01`` as if
from a REQ socket: an empty delimiter frame, then the request. The reply is
checked the way libzmq checks it, each fault with libzmq's protocol error
code, so a monitor reports the same thing for the same broken handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zeropipe.protocol.commands import Metadata, decode_metadata
from zeropipe.protocol.errors import (
    ZAP_BAD_REQUEST_ID,
    ZAP_BAD_VERSION,
    ZAP_INVALID_METADATA,
    ZAP_INVALID_STATUS_CODE,
    ZAP_MALFORMED_REPLY,
    RemoteProtocolError,
    ZapError,
)
from zeropipe.protocol.frames import Buffer

ZAP_ENDPOINT = "zeromq.zap.01"
ZAP_VERSION = b"1.0"
STATUS_CODES = (b"200", b"300", b"400", b"500")


@dataclass(frozen=True)
class ZapRequest:
    """A mechanism wants the handler's verdict on these credentials.

    ``credentials`` is empty for NULL, (username, password) for PLAIN and the
    client's 32-byte public key for CURVE.
    """

    mechanism: bytes
    credentials: tuple[bytes, ...]


@dataclass(frozen=True)
class ZapReply:
    """What the handler decided."""

    status_code: int
    status_text: str = ""
    user_id: bytes = b""
    metadata: Metadata = field(default_factory=Metadata)


def request_frames(
    request_id: bytes,
    domain: bytes,
    address: bytes,
    identity: bytes,
    request: ZapRequest,
) -> list[bytes]:
    """The frames of one request, after the empty delimiter."""
    return [
        ZAP_VERSION,
        request_id,
        domain,
        address,
        identity,
        request.mechanism,
        *request.credentials,
    ]


def parse_reply(frames: list[Buffer], request_id: bytes) -> ZapReply:
    """Check a reply (delimiter included) against the request it answers."""
    if len(frames) != 7 or len(frames[0]) != 0:
        raise ZapError("malformed ZAP reply", code=ZAP_MALFORMED_REPLY)
    _, version, reply_id, status, text, user_id, raw_meta = (bytes(f) for f in frames)
    if version != ZAP_VERSION:
        raise ZapError(f"ZAP reply version {version!r}", code=ZAP_BAD_VERSION)
    if reply_id != request_id:
        raise ZapError("ZAP reply answers another request", code=ZAP_BAD_REQUEST_ID)
    if status not in STATUS_CODES:
        raise ZapError(f"ZAP status code {status!r}", code=ZAP_INVALID_STATUS_CODE)
    try:
        metadata = decode_metadata(raw_meta)
    except RemoteProtocolError:
        raise ZapError("ZAP reply metadata is malformed", code=ZAP_INVALID_METADATA) from None
    return ZapReply(int(status), text.decode("utf-8", "replace"), user_id, metadata)
