"""zeropipe.codecs."""
