"""Fuzzing helpers and the socket-level fuzz harness (``python -m tests.fuzz.socket_fuzz``)."""
