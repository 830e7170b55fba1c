"""Decode monitor events, as pyzmq's ``zmq.utils.monitor``."""

from zeropipe.sdk.monitor import MonitorMessage, parse_monitor_message, recv_monitor_message

__all__ = ["MonitorMessage", "parse_monitor_message", "recv_monitor_message"]
