"""Authentication with pyzmq's module paths (``zeropipe.auth``, ``zeropipe.auth.certs``)."""

from zeropipe.sdk.auth import *  # noqa: F403
from zeropipe.sdk.auth import __all__ as __all__
