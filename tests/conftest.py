"""Shared test configuration.

The hypothesis profile "long" (``make fuzz``: ``pytest tests/test_protocol_fuzz.py
--hypothesis-profile=long``) is registered here and not in the test module: hypothesis's pytest
plugin loads the profile named on the command line in ``pytest_configure``, which runs after
conftest files are imported but before any test module is, so a profile registered only in
a test module would be reported as "not registered".
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("long", max_examples=20_000, deadline=None)
