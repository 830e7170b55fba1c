"""pyzmq's module path for the ZAP authenticator base (``zmq.auth.base``)."""

from zeropipe.sdk.auth.base import (
    CURVE_ALLOW_ANY,
    Authenticator,
    CredentialsProvider,
    ZapRequest,
    ZapVerdict,
)

__all__ = ["CURVE_ALLOW_ANY", "Authenticator", "CredentialsProvider", "ZapRequest", "ZapVerdict"]
