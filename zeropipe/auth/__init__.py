"""Authentication with pyzmq's module paths (``zeropipe.auth``, ``zeropipe.auth.certs``)."""

from zeropipe.sdk.auth import (
    CURVE_ALLOW_ANY,
    AsyncioAuthenticator,
    Authenticator,
    ThreadAuthenticator,
    ZapRequest,
    ZapVerdict,
    create_certificates,
    load_certificate,
    load_certificate_metadata,
    load_certificates,
)

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
