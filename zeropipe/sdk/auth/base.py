"""The ZAP handler (RFC 27): decides who may connect to a PLAIN, CURVE or NULL server.

A server socket with a security mechanism asks the ZAP handler of its Context, over
``inproc://zeromq.zap.01``, whether a client may connect. :class:`Authenticator` is that
handler, with pyzmq's policy (``zmq.auth.Authenticator``): an allow list or a deny list of
IP addresses, PLAIN passwords and CURVE public keys per ZAP domain. Its subclasses run it:
:class:`~zeropipe.sdk.auth.thread.ThreadAuthenticator` in a thread of its own,
:class:`~zeropipe.sdk.auth.asyncio.AsyncioAuthenticator` as a task of the running loop.

Beyond pyzmq, :meth:`Authenticator.configure_callback` hands each request, as a
:class:`ZapRequest`, to a function of the user's, which answers with a :class:`ZapVerdict`
(status, user id, metadata), a bool, or None to leave the decision to the configured policy.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from zeropipe.protocol import SocketType
from zeropipe.protocol.commands import encode_metadata
from zeropipe.sdk.auth.certs import load_certificates
from zeropipe.sdk.constants import SocketOption
from zeropipe.sdk.context import Context
from zeropipe.sdk.socket import Socket
from zeropipe.sdk.z85 import encode as z85_encode

CURVE_ALLOW_ANY = "*"
"""Pass to :meth:`Authenticator.configure_curve` as the location to accept any client key."""

VERSION = b"1.0"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
STATUS_CODES = (200, 300, 400, 500)
"""Success, temporary error, authentication failure, internal error (RFC 27)."""

_ANONYMOUS = "anonymous"
_A = TypeVar("_A", bound="Authenticator")
_S = TypeVar("_S", bound=Socket)
_CREDENTIAL_FRAMES = {"PLAIN": 2, "CURVE": 1, "GSSAPI": 1}


class CredentialsProvider(Protocol):
    """What :meth:`Authenticator.configure_curve_callback` takes."""

    def callback(self, domain: str, key: bytes) -> bool | Awaitable[bool]:
        """Whether the client with this public key (Z85) may connect in ``domain``."""
        ...


@dataclass(frozen=True)
class ZapRequest:
    """One well-formed ZAP request, as a :meth:`Authenticator.configure_callback` sees it.

    Text fields are decoded with the authenticator's encoding (undecodable bytes replaced).
    ``username`` and ``password`` are set for PLAIN, ``public_key`` (32 raw bytes) for CURVE.
    """

    request_id: bytes
    domain: str
    address: str
    """The client's IP address as text; for ipc, what the server's engine puts there."""
    identity: bytes
    """The routing id of the server socket asking."""
    mechanism: str
    credentials: tuple[bytes, ...] = field(default=(), repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    public_key: bytes | None = None

    @property
    def public_key_z85(self) -> bytes | None:
        """The CURVE public key in Z85, as certificate files and credentials providers see it."""
        return None if self.public_key is None else z85_encode(self.public_key)


@dataclass(frozen=True)
class ZapVerdict:
    """The answer to a ZAP request.

    ``user_id`` None means the default: the username for PLAIN, :meth:`Authenticator.
    curve_user_id` for CURVE, "anonymous" otherwise. The user id and ``metadata`` (name ->
    value, attached to the connection's messages by the server) only go with status 200.
    """

    status_code: int = 200
    status_text: str = "OK"
    user_id: str | None = None
    metadata: Mapping[str, bytes | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status_code not in STATUS_CODES:
            raise ValueError(
                f"ZAP status code must be one of {STATUS_CODES}, not {self.status_code}"
            )
        for name in self.metadata:
            if not name.isascii() or not 0 < len(name) < 256:
                raise ValueError(f"metadata name {name!r} must be 1..255 ASCII characters")

    @classmethod
    def allow(
        cls, user_id: str | None = None, metadata: Mapping[str, bytes | str] | None = None
    ) -> ZapVerdict:
        return cls(200, "OK", user_id, dict(metadata or {}))

    @classmethod
    def deny(cls, reason: str = "NO ACCESS", status_code: int = 400) -> ZapVerdict:
        return cls(status_code, reason)


CallbackResult = ZapVerdict | bool | None
ZapCallback = Callable[[ZapRequest], CallbackResult | Awaitable[CallbackResult]]


class Authenticator:
    """A ZAP handler with pyzmq's policy; :meth:`start` binds it, the caller drives it.

    Until configured it allows every NULL client and refuses every PLAIN and CURVE one.
    Run it with a subclass, or feed it requests yourself::

        auth = Authenticator(ctx)
        auth.start()
        while True:
            await auth.handle_zap_message(auth.zap_socket.recv_multipart())

    The configuration methods take a lock, so another thread may call them while requests
    are being handled.
    """

    context: Context
    encoding: str
    allow_any: bool
    credentials_providers: dict[str, CredentialsProvider]
    zap_socket: Socket | None
    passwords: dict[str, Mapping[str, str]]
    """domain -> {username: password}; the dicts given to configure_plain, not copies."""
    certs: dict[str, Mapping[bytes, Any]]
    """domain -> {Z85 public key: truthy when allowed}."""
    log: Any

    def __init__(
        self, context: Context | None = None, encoding: str = "utf-8", log: Any = None
    ) -> None:
        self.context = context or Context.instance()
        self.encoding = encoding
        self.log = log or logging.getLogger("zeropipe.auth")
        self.allow_any = False
        self.credentials_providers = {}
        self.passwords = {}
        self.certs = {}
        self.zap_socket = None
        self._allowed: set[str] = set()
        self._denied: set[str] = set()
        self._callback: ZapCallback | None = None
        self._lock = threading.RLock()

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        """Create the REP socket and bind it to the ZAP endpoint of the context."""
        self.zap_socket = self._bind(Socket)
        self.log.debug("Starting")

    def _bind(self, socket_class: type[_S]) -> _S:
        """A REP socket bound to the ZAP endpoint (EADDRINUSE if a handler already is)."""
        sock = self.context.socket(SocketType.REP, socket_class=socket_class)
        try:
            sock.setsockopt(SocketOption.LINGER, 1)
            sock.bind(ZAP_ENDPOINT)
        except BaseException:
            sock.close(0)
            raise
        return sock

    def stop(self) -> None:
        """Close the ZAP socket."""
        if self.zap_socket is not None:
            self.zap_socket.close()
        self.zap_socket = None

    def __enter__(self: _A) -> _A:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------

    def allow(self, *addresses: str) -> None:
        """Accept clients from these IP addresses only (NULL: outright; others: then check).

        Exclusive with :meth:`deny`.
        """
        with self._lock:
            if self._denied:
                raise ValueError("Only use allow or deny, not both")
            self.log.debug("Allowing %s", ",".join(addresses))
            self._allowed.update(addresses)

    def deny(self, *addresses: str) -> None:
        """Refuse clients from these IP addresses; the others go on to authenticate.

        Exclusive with :meth:`allow`.
        """
        with self._lock:
            if self._allowed:
                raise ValueError("Only use allow or deny, not both")
            self.log.debug("Denying %s", ",".join(addresses))
            self._denied.update(addresses)

    def configure_plain(
        self, domain: str = "*", passwords: Mapping[str, str] | None = None
    ) -> None:
        """PLAIN: accept these ``{username: password}`` in ``domain``.

        The mapping is kept, not copied: changes to it apply to the next requests. "*" is
        the domain of requests that name none.
        """
        with self._lock:
            if passwords:
                self.passwords[domain] = passwords
        self.log.debug("Configure plain: %s", domain)

    def configure_curve(self, domain: str = "*", location: str | os.PathLike[str] = ".") -> None:
        """CURVE: accept the public keys of the certificates (``*.key``) in ``location``.

        The directory is read now; call again after changing it. ``CURVE_ALLOW_ANY`` as the
        location accepts any key, in every domain. "*" is the domain of requests that name
        none.
        """
        self.log.debug("Configure curve: %s[%s]", domain, location)
        if location == CURVE_ALLOW_ANY:
            with self._lock:
                self.allow_any = True
            return
        with self._lock:
            self.allow_any = False
        try:
            keys = load_certificates(location)
        except Exception as exc:
            self.log.error("Failed to load CURVE certs from %s: %s", location, exc)
            return
        with self._lock:
            self.certs[domain] = keys

    def configure_curve_callback(
        self, domain: str = "*", credentials_provider: CredentialsProvider | None = None
    ) -> None:
        """CURVE: ask ``credentials_provider.callback(domain, z85_key)`` about each client.

        Once any provider is configured, certificate directories are no longer consulted.
        The callback may return an awaitable.
        """
        with self._lock:
            self.allow_any = False
            if credentials_provider is None:
                self.log.error("None credentials_provider provided for domain:%s", domain)
                return
            self.credentials_providers[domain] = credentials_provider

    def configure_gssapi(self, domain: str = "*", location: str | None = None) -> None:
        """GSSAPI needs no configuration: every principal is accepted (as in pyzmq)."""

    def configure_callback(self, callback: ZapCallback | None) -> None:
        """Ask ``callback(request)`` first about every well-formed request (None: stop asking).

        It returns a :class:`ZapVerdict`; True (accept, default user id) or False (refuse,
        "NO ACCESS"); or None to let the configured policy decide. It may return an
        awaitable of those. If it raises, the request gets status 500.
        """
        with self._lock:
            self._callback = callback

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The user id of an accepted CURVE client: by default its public key in Z85."""
        return z85_encode(client_public_key).decode("ascii")

    # -- handling requests ---------------------------------------------------

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        """Answer one ZAP request (its frames, as the REP socket received them).

        A coroutine, as in pyzmq, because callbacks may be asynchronous. Malformed requests
        get status 400. pyzmq leaves a request of fewer than two frames unanswered, which
        stalls its REP socket for good; this one answers it, with an empty request id.
        """
        reply = await self.zap_reply(msg)
        assert self.zap_socket is not None, "start() the authenticator first"
        send: Callable[[list[bytes]], Any] = self.zap_socket.send_multipart  # maybe async
        sent = send(reply)
        if inspect.isawaitable(sent):
            await sent

    async def zap_reply(self, msg: list[bytes]) -> list[bytes]:
        """The reply frames for one ZAP request, without sending them."""
        msg = [bytes(frame) for frame in msg]
        if len(msg) < 6:
            self.log.error("Invalid ZAP message, not enough frames: %r", msg)
            return self._reply(msg[1] if len(msg) > 1 else b"", 400, "Not enough frames")
        version, request_id = msg[:2]
        if version != VERSION:
            self.log.error("Invalid ZAP version: %r", msg)
            return self._reply(request_id, 400, "Invalid version")
        request = self._request(msg)
        self.log.debug(
            "version: %r, request_id: %r, domain: %r, address: %r, identity: %r, mechanism: %r",
            version,
            request_id,
            request.domain,
            request.address,
            request.identity,
            request.mechanism,
        )
        try:
            with self._lock:
                callback = self._callback
            well_formed = len(request.credentials) == _CREDENTIAL_FRAMES.get(
                request.mechanism, len(request.credentials)
            )
            if callback is not None and well_formed:
                answer = callback(request)
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer is not None:
                    return self._reply_verdict(request, answer)
            return await self._policy(request)
        except Exception:
            self.log.exception("ZAP handler failed on %r", request)
            return self._reply(request_id, 500, "Internal error")

    def _request(self, msg: list[bytes]) -> ZapRequest:
        enc = self.encoding
        mechanism = msg[5].decode("ascii", "replace")
        credentials = tuple(msg[6:])
        extra: dict[str, Any] = {}
        if mechanism == "PLAIN" and len(credentials) == 2:
            extra["username"] = credentials[0].decode(enc, "replace")
            extra["password"] = credentials[1].decode(enc, "replace")
        elif mechanism == "CURVE" and len(credentials) == 1:
            extra["public_key"] = credentials[0]
        return ZapRequest(
            request_id=msg[1],
            domain=msg[2].decode(enc, "replace"),
            address=msg[3].decode(enc, "replace"),
            identity=msg[4],
            mechanism=mechanism,
            credentials=credentials,
            **extra,
        )

    async def _policy(self, request: ZapRequest) -> list[bytes]:
        """pyzmq's decision: the address lists, then the mechanism's own check."""
        rid, address = request.request_id, request.address
        allowed = denied = False
        reason = "NO ACCESS"
        with self._lock:
            if self._allowed:
                if address in self._allowed:
                    allowed = True
                    self.log.debug("PASSED (allowed) address=%s", address)
                else:
                    denied = True
                    reason = "Address not allowed"
                    self.log.debug("DENIED (not allowed) address=%s", address)
            elif self._denied:
                if address in self._denied:
                    denied = True
                    reason = "Address denied"
                    self.log.debug("DENIED (denied) address=%s", address)
                else:
                    allowed = True
                    self.log.debug("PASSED (not denied) address=%s", address)
        user_id = _ANONYMOUS
        mechanism = request.mechanism
        if not denied:
            wanted = _CREDENTIAL_FRAMES.get(mechanism)
            if wanted is not None and len(request.credentials) != wanted:
                self.log.error("Invalid %s credentials: %r", mechanism, request.credentials)
                return self._reply(rid, 400, "Invalid credentials")
            if mechanism == "NULL" and not allowed:
                self.log.debug("ALLOWED (NULL)")
                allowed = True
            elif mechanism == "PLAIN":
                assert request.username is not None
                assert request.password is not None
                user_id = request.username
                allowed, reason = self._authenticate_plain(
                    request.domain, request.username, request.password
                )
            elif mechanism == "CURVE":
                assert request.public_key is not None
                allowed, reason = await self._authenticate_curve(request.domain, request.public_key)
                if allowed:
                    user_id = self.curve_user_id(request.public_key)
            elif mechanism == "GSSAPI":
                user_id = request.credentials[0].decode("utf-8", "replace")
                self.log.debug("ALLOWED (GSSAPI) domain=%s principal=%s", request.domain, user_id)
                allowed, reason = True, "OK"
        if allowed:
            return self._reply(rid, 200, "OK", user_id)
        return self._reply(rid, 400, reason)

    def _authenticate_plain(self, domain: str, username: str, password: str) -> tuple[bool, str]:
        with self._lock:
            if not self.passwords:
                self.log.debug("DENIED (PLAIN) No passwords defined")
                return False, "No passwords defined"
            domain = domain or "*"
            users = self.passwords.get(domain)
            if users is None:
                reason = "Invalid domain"
            elif username not in users:
                reason = "Invalid username"
            elif users[username] != password:
                reason = "Invalid password"
            else:
                self.log.debug("ALLOWED (PLAIN) domain=%s username=%s", domain, username)
                return True, "OK"
        self.log.debug("DENIED (PLAIN) domain=%s username=%s: %s", domain, username, reason)
        return False, reason

    async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, str]:
        domain = domain or "*"
        with self._lock:
            allow_any = self.allow_any
            use_providers = bool(self.credentials_providers)
            provider = self.credentials_providers.get(domain)
            keys = self.certs.get(domain)
        if allow_any:
            self.log.debug("ALLOWED (CURVE allow any client)")
            return True, "OK"
        source = provider if use_providers else keys
        if source is None:
            self.log.debug("DENIED (CURVE) domain=%s: Unknown domain", domain)
            return False, "Unknown domain"
        z85_key = z85_encode(client_key)
        if provider is not None:
            answer = provider.callback(domain, z85_key)
            if inspect.isawaitable(answer):
                answer = await answer
            allowed = bool(answer)
        else:
            assert keys is not None
            allowed = bool(keys.get(z85_key))
        self.log.debug(
            "%s (CURVE) domain=%s client_key=%s",
            "ALLOWED" if allowed else "DENIED",
            domain,
            z85_key.decode("ascii"),
        )
        return (True, "OK") if allowed else (False, "Unknown key")

    def _reply_verdict(self, request: ZapRequest, answer: ZapVerdict | bool) -> list[bytes]:
        if answer is True:
            answer = ZapVerdict.allow()
        elif answer is False:
            answer = ZapVerdict.deny()
        if not isinstance(answer, ZapVerdict):
            raise TypeError(f"ZAP callback returned {answer!r}, not a ZapVerdict, bool or None")
        user_id = answer.user_id
        if user_id is None:
            user_id = self._default_user_id(request)
        self.log.debug("%s (callback) %r", answer.status_code, request)
        return self._reply(
            request.request_id, answer.status_code, answer.status_text, user_id, answer.metadata
        )

    def _default_user_id(self, request: ZapRequest) -> str:
        if request.username is not None:
            return request.username
        if request.public_key is not None:
            return self.curve_user_id(request.public_key)
        if request.mechanism == "GSSAPI" and request.credentials:
            return request.credentials[0].decode("utf-8", "replace")
        return _ANONYMOUS

    def _reply(
        self,
        request_id: bytes,
        status_code: int,
        status_text: str,
        user_id: str = "",
        metadata: Mapping[str, bytes | str] | None = None,
    ) -> list[bytes]:
        """The reply frames; user id and metadata only go with status 200."""
        enc = self.encoding
        self.log.debug("ZAP reply code=%s text=%s", status_code, status_text)
        if status_code != 200:
            user_id, metadata = "", None
        properties = {
            name: value.encode(enc) if isinstance(value, str) else bytes(value)
            for name, value in (metadata or {}).items()
        }
        return [
            VERSION,
            request_id,
            str(status_code).encode("ascii"),
            status_text.encode(enc, "replace"),
            user_id.encode(enc, "replace"),
            encode_metadata(properties),
        ]


__all__ = [
    "CURVE_ALLOW_ANY",
    "Authenticator",
    "CredentialsProvider",
    "ZapCallback",
    "ZapRequest",
    "ZapVerdict",
]
