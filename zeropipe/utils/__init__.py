"""Helpers with pyzmq's module paths (``zeropipe.utils.monitor``)."""
