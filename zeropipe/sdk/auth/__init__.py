"""Authentication: CURVE certificate files (and the ZAP authenticators)."""

from zeropipe.sdk.auth.asyncio import AsyncioAuthenticator
from zeropipe.sdk.auth.base import (
    CURVE_ALLOW_ANY,
    Authenticator,
    ZapRequest,
    ZapVerdict,
)
from zeropipe.sdk.auth.certs import (
    create_certificates,
    load_certificate,
    load_certificate_metadata,
    load_certificates,
)
from zeropipe.sdk.auth.thread import ThreadAuthenticator

__all__ = [
    "CURVE_ALLOW_ANY",
    "AsyncioAuthenticator",
    "Authenticator",
    "ThreadAuthenticator",
    "ZapRequest",
    "ZapVerdict",
    "create_certificates",
    "load_certificate",
    "load_certificate_metadata",
    "load_certificates",
]
