"""CURVE certificate files, as pyzmq's ``zmq.auth.certs``."""

from zeropipe.sdk.auth.certs import (
    create_certificates,
    load_certificate,
    load_certificate_metadata,
    load_certificates,
)

__all__ = [
    "create_certificates",
    "load_certificate",
    "load_certificate_metadata",
    "load_certificates",
]
