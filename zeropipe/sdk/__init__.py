"""What users touch: Context, Socket, Frame, constants and errors."""

from zeropipe.sdk.context import Context
from zeropipe.sdk.frame import Frame, Message
from zeropipe.sdk.socket import Socket

__all__ = ["Context", "Frame", "Message", "Socket"]
