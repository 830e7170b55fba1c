"""zeropipe.transports."""
