"""CURVE certificate files, as pyzmq's ``zmq.auth.certs`` (and czmq's ``zcert``) read and write.

A certificate is a ZPL text file (https://rfc.zeromq.org/spec/4/): comment lines, an optional
``metadata`` section of ``name = "value"`` properties, and a ``curve`` section holding
``public-key = "<40 Z85 chars>"`` and, in the secret file only, ``secret-key``. A key pair
``NAME`` is stored as ``NAME.key`` (the public certificate, to share) and ``NAME.key_secret``
(both keys; created readable by its owner only).
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping

from zeropipe.sdk import z85
from zeropipe.sdk.keys import Z85_KEY_SIZE, curve_keypair

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"

StrPath = str | os.PathLike[str]

_PUBLIC_BANNER = """\
#   ****  Generated on {now} by zeropipe  ****
#   ZeroMQ CURVE Public Certificate
#   Safe to share, but make sure it reaches its readers unaltered: whoever
#   swaps it for their own can pose as its owner.

"""
_SECRET_BANNER = """\
#   ****  Generated on {now} by zeropipe  ****
#   ZeroMQ CURVE **Secret** Certificate
#   Keep this file private: whoever reads it can act as its owner.

"""
# the characters of a ZPL property name
_ZPL_NAME = re.compile(r"[A-Za-z0-9$\-_@.&+/]+\Z")
# a comment in an unquoted value: Z85 keys may hold '#', so only one after whitespace counts
_TRAILING_COMMENT = re.compile(r"\s#.*\Z")


def _text(item: object, what: str) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8")
    if isinstance(item, str):
        return item
    raise TypeError(f"certificate metadata {what} must be str or bytes, not {type(item).__name__}")


def _metadata_lines(metadata: Mapping[str, str] | None) -> list[str]:
    """The ZPL lines of ``metadata``, or ValueError for what a certificate cannot hold."""
    lines = []
    for raw_name, raw_value in (metadata or {}).items():
        name = _text(raw_name, "name")
        value = _text(raw_value, "value")
        if not _ZPL_NAME.match(name):
            raise ValueError(
                f"certificate metadata name {name!r}: use letters, digits and $-_@.&+/ only"
            )
        if name.startswith(("public-key", "secret-key")):
            raise ValueError(f"certificate metadata name {name!r} would be read as a key")
        if "\n" in value or "\r" in value:
            raise ValueError(f"certificate metadata {name!r}: the value must be a single line")
        quote = "'" if '"' in value else '"'
        if quote in value:
            raise ValueError(f"certificate metadata {name!r}: a value cannot hold both quotes")
        lines.append(f"    {name} = {quote}{value}{quote}\n")
    return lines


def _certificate_text(
    banner: str, metadata: list[str], public_key: bytes, secret_key: bytes | None
) -> str:
    now = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    parts = [banner.format(now=now), "metadata\n", *metadata, "curve\n"]
    parts.append(f'    public-key = "{public_key.decode("ascii")}"\n')
    if secret_key is not None:
        parts.append(f'    secret-key = "{secret_key.decode("ascii")}"\n')
    return "".join(parts)


def _write(path: str, text: str, *, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with open(fd, "w", encoding="utf-8", newline="\n") as f:
        if private and hasattr(os, "fchmod"):
            os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_TRUNC
        f.write(text)


def create_certificates(
    key_dir: StrPath, name: str, metadata: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """Write a new key pair as ``key_dir/name.key`` and ``key_dir/name.key_secret``.

    ``metadata`` (name -> value) goes into both files. Returns the paths (public, secret).
    Needs PyNaCl.
    """
    lines = _metadata_lines(metadata)
    public_key, secret_key = curve_keypair()
    base = os.path.join(os.fspath(key_dir), name)
    public_file, secret_file = base + PUBLIC_SUFFIX, base + SECRET_SUFFIX
    _write(public_file, _certificate_text(_PUBLIC_BANNER, lines, public_key, None), private=False)
    _write(
        secret_file,
        _certificate_text(_SECRET_BANNER, lines, public_key, secret_key),
        private=True,
    )
    return public_file, secret_file


def _zpl_value(rest: str) -> str:
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        return rest[1:end] if end > 0 else rest[1:]
    return _TRAILING_COMMENT.sub("", rest).strip()


def _read_properties(filename: StrPath) -> dict[tuple[str, ...], str]:
    """The properties of a ZPL file, keyed by path (``("curve", "public-key")``)."""
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ValueError(f"{os.fspath(filename)} is not a certificate (not UTF-8 text)") from None
    properties: dict[tuple[str, ...], str] = {}
    parents: list[tuple[int, str]] = []  # (indent, name) of the enclosing properties
    for line in text.splitlines():
        body = line.expandtabs(4)
        stripped = body.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(body) - len(stripped)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        name, equals, rest = stripped.partition("=")
        name = _TRAILING_COMMENT.sub("", name).strip()
        if equals:
            path = (*[parent for _, parent in parents], name)
            properties[path] = _zpl_value(rest)
        parents.append((indent, name))
    return properties


def _checked_key(value: str, which: str, filename: StrPath) -> bytes:
    try:
        if len(value) != Z85_KEY_SIZE:
            raise ValueError(f"{len(value)} characters, not {Z85_KEY_SIZE}")
        z85.decode(value)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(filename)}: bad {which} key: {exc}") from None
    return value.encode("ascii")


def load_certificate(filename: StrPath) -> tuple[bytes, bytes | None]:
    """The keys of a certificate file: ``(public, secret)`` as Z85 bytes.

    ``secret`` is None for a public certificate (``NAME.key``). A missing file raises
    FileNotFoundError, a file without a valid public key ValueError.
    """
    properties = _read_properties(filename)
    public = properties.get(("curve", "public-key"))
    if not public:
        raise ValueError(f"No public key found in {os.fspath(filename)}")
    secret = properties.get(("curve", "secret-key"))
    return (
        _checked_key(public, "public", filename),
        _checked_key(secret, "secret", filename) if secret else None,
    )


def load_certificate_metadata(filename: StrPath) -> dict[str, str]:
    """The ``metadata`` section of a certificate file, name -> value."""
    return {
        path[1]: value
        for path, value in _read_properties(filename).items()
        if len(path) == 2 and path[0] == "metadata"
    }


def load_certificates(directory: StrPath = ".") -> dict[bytes, bool]:
    """The public keys of every ``*.key`` certificate in ``directory``, each mapped to True.

    The form ZAP authenticators take as their list of allowed clients.
    """
    directory = os.fspath(directory)
    names = sorted(
        entry.name
        for entry in os.scandir(directory)
        if entry.name.endswith(PUBLIC_SUFFIX) and not entry.name.startswith(".")
    )
    return {load_certificate(os.path.join(directory, name))[0]: True for name in names}


__all__ = [
    "PUBLIC_SUFFIX",
    "SECRET_SUFFIX",
    "create_certificates",
    "load_certificate",
    "load_certificate_metadata",
    "load_certificates",
]
