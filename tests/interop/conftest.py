"""Fixtures for the interop tests: zeropipe ("ours") against libzmq through pyzmq ("theirs").

``ZP_IMPL`` selects the module used as "ours": ``zeropipe`` (the default) tests the engine;
``pyzmq`` puts pyzmq on both sides, which validates the tests themselves.

Every socket gets receive/send timeouts and linger 0, and teardown closes every socket and
terminates every context (guarded by a deadline), so a failing test raises instead of hanging.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from netutil import Endpoints, ScratchDir, implementation

TIMEOUT_MS = 5000
"""RCVTIMEO and SNDTIMEO of every socket."""

TERM_TIMEOUT_S = 5.0
"""How long teardown waits for ``Context.term()`` before reporting it as stuck."""


class Side:
    """One context of one implementation, and every socket opened on it."""

    def __init__(self, label: str, module: ModuleType) -> None:
        self.label = label
        self.module = module
        self.ctx = module.Context()
        self.sockets: list[Any] = []
        self.closed = False

    def socket(self, kind: str) -> Any:
        """Open a socket of type ``kind`` ("PUSH", "PULL", "PAIR") with timeouts set."""
        sock = self.ctx.socket(getattr(self.module, kind))
        self.sockets.append(sock)  # registered first: closed even if an option below fails
        sock.linger = 0
        # setsockopt rather than the attribute: it fails loudly if RCVTIMEO is unsupported,
        # instead of silently creating a plain Python attribute and leaving recv() unbounded.
        sock.setsockopt(self.module.RCVTIMEO, TIMEOUT_MS)
        sock.sndtimeo = TIMEOUT_MS
        return sock

    def close(self) -> None:
        """Close every socket, then terminate the context; idempotent and never hangs."""
        if self.closed:
            return
        self.closed = True
        errors: list[BaseException] = []
        for sock in self.sockets:
            try:
                sock.close()
            except Exception as exc:
                errors.append(exc)

        term_errors: list[BaseException] = []

        def term() -> None:
            try:
                self.ctx.term()
            except BaseException as exc:
                term_errors.append(exc)

        thread = threading.Thread(target=term, name=f"term-{self.label}", daemon=True)
        thread.start()
        thread.join(TERM_TIMEOUT_S)
        if thread.is_alive():
            errors.append(
                TimeoutError(f"{self.label}: Context.term() still blocked after {TERM_TIMEOUT_S} s")
            )
        errors.extend(term_errors)
        if errors:
            raise errors[0]


class Harness:
    """Creates sides (contexts) on demand and closes all of them at teardown."""

    def __init__(self) -> None:
        self.sides: list[Side] = []

    def side(self, label: str, module: ModuleType) -> Side:
        side = Side(label, module)
        self.sides.append(side)
        return side

    def close(self) -> None:
        errors: list[BaseException] = []
        for side in reversed(self.sides):
            try:
                side.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def zp() -> ModuleType:
    """The module under test ("ours"), chosen by ``ZP_IMPL``."""
    module: ModuleType = implementation("ZP_IMPL")[1]
    return module


@pytest.fixture(scope="session")
def pyzmq() -> ModuleType:
    """The reference implementation ("theirs"): pyzmq over libzmq."""
    return importlib.import_module("zmq")


@pytest.fixture
def scratch() -> Iterator[ScratchDir]:
    directory = ScratchDir()
    yield directory
    directory.remove()


@pytest.fixture
def harness(scratch: ScratchDir) -> Iterator[Harness]:
    """Owns every context of a test. Depends on ``scratch`` so ipc files outlive the sockets."""
    owner = Harness()
    yield owner
    owner.close()


@pytest.fixture
def ours(harness: Harness, zp: ModuleType) -> Side:
    return harness.side("ours", zp)


@pytest.fixture
def theirs(harness: Harness, pyzmq: ModuleType) -> Side:
    return harness.side("theirs", pyzmq)


@pytest.fixture(params=["tcp", "ipc"])
def transport(request: pytest.FixtureRequest) -> str:
    """Transports shared with libzmq; tests may override with direct parametrization."""
    value: str = request.param
    return value


@pytest.fixture
def endpoints(transport: str, scratch: ScratchDir) -> Endpoints:
    return Endpoints(transport, scratch)
