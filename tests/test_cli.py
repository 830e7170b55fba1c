"""The ``zeropipe`` console script."""

from __future__ import annotations

import subprocess
import sys

import pytest

import zeropipe
from zeropipe.cli.main import main


@pytest.mark.timeout(30)
def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert zeropipe.__version__ in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_bench_help_runs_from_the_checkout() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "zeropipe.cli", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    assert "--quick" in out.stdout
