"""``zeropipe keygen``: CURVE key pairs, printed or written as certificate files."""

from __future__ import annotations

import argparse
import os
import sys

from zeropipe.sdk.auth.certs import (
    PUBLIC_SUFFIX,
    SECRET_SUFFIX,
    create_certificates,
    load_certificate,
)
from zeropipe.sdk.keys import curve_keypair, require_nacl


def metadata_item(text: str) -> tuple[str, str]:
    """Parse one ``--metadata NAME=VALUE`` (an argparse ``type``)."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _fail(message: str) -> int:
    print(f"zeropipe keygen: {message}", file=sys.stderr)
    return 2


def keygen(
    name: str | None,
    directory: str | None = None,
    metadata: list[tuple[str, str]] | None = None,
    force: bool = False,
) -> int:
    """Print a new key pair, or with ``name`` write it as certificates in ``directory``."""
    if name is None and (directory is not None or metadata):
        return _fail("--directory and --metadata need a NAME to write certificates")
    try:
        require_nacl()
    except ImportError as exc:
        return _fail(str(exc))
    if name is None:
        public, secret = curve_keypair()
        print(f'public-key = "{public.decode()}"')
        print(f'secret-key = "{secret.decode()}"')
        return 0
    directory = "." if directory is None else directory
    if os.path.exists(directory) and not os.path.isdir(directory):
        return _fail(f"cannot write certificates in {directory}: not a directory")
    if not force:
        for suffix in (PUBLIC_SUFFIX, SECRET_SUFFIX):
            existing = os.path.join(directory, name + suffix)
            if os.path.lexists(existing):
                return _fail(f"{existing} exists (--force replaces it and its key pair)")
    try:
        os.makedirs(directory, exist_ok=True)
        public_file, secret_file = create_certificates(directory, name, dict(metadata or []))
    except OSError as exc:
        return _fail(f"cannot write certificates in {directory}: {exc.strerror or exc}")
    except ValueError as exc:
        return _fail(str(exc))
    public, _ = load_certificate(public_file)
    print(f"public certificate: {public_file}")
    print(f"secret certificate: {secret_file}")
    print(f'public-key = "{public.decode()}"')
    return 0
