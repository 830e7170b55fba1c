"""pyzmq's module path for the threaded ZAP authenticator (``zmq.auth.thread``)."""

from zeropipe.sdk.auth.thread import ThreadAuthenticator

__all__ = ["ThreadAuthenticator"]
