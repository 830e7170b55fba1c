"""pyzmq's module path for the asyncio ZAP authenticator (``zmq.auth.asyncio``)."""

from zeropipe.sdk.auth.asyncio import AsyncioAuthenticator

__all__ = ["AsyncioAuthenticator"]
