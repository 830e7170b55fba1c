"""zeropipe.cli."""
