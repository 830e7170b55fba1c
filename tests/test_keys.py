"""Z85, CURVE keys, certificate files and ``zeropipe keygen``, checked against pyzmq/libzmq."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
import zmq.auth
from hypothesis import given, settings
from hypothesis import strategies as st
from zmq.utils import z85 as pyzmq_z85

import zeropipe.auth
import zeropipe.auth.certs
import zeropipe.utils.z85
from zeropipe.cli.main import main
from zeropipe.sdk import z85
from zeropipe.sdk.auth import (
    CURVE_ALLOW_ANY,
    create_certificates,
    load_certificate,
    load_certificate_metadata,
    load_certificates,
)
from zeropipe.sdk.keys import curve_keypair, curve_public, has_curve, key_to_raw, require_nacl

pytestmark = pytest.mark.timeout(60)

PROPERTY = settings(max_examples=200, deadline=None)
CHILD_TIMEOUT_S = 30

# (secret, public) pairs from the libzmq documentation (zmq_curve.7)
DOC_KEYS = [
    ("D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"),
    ("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"),
]
NO_NACL = "import sys; sys.modules['nacl'] = None; sys.modules['nacl.bindings'] = None; "


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zeropipe.cli", *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
        cwd=cwd,
    )


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )


def printed_keys(stdout: str) -> dict[str, bytes]:
    """The ``name = "key"`` lines the keygen command prints."""
    keys = {}
    for line in stdout.splitlines():
        name, equals, value = line.partition(" = ")
        if equals:
            keys[name] = value.strip('"').encode()
    return keys


# --- Z85 -------------------------------------------------------------------------------------


def test_rfc32_test_vector() -> None:
    raw = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
    assert z85.encode(raw) == b"HelloWorld"
    assert z85.decode(b"HelloWorld") == raw
    assert z85.decode("HelloWorld") == raw


def test_group_bounds() -> None:
    assert z85.encode(b"\0\0\0\0") == b"00000"
    assert z85.encode(b"\xff\xff\xff\xff") == b"%nSc0"
    assert z85.decode(b"%nSc0") == b"\xff\xff\xff\xff"
    assert z85.encode(b"") == b""
    assert z85.decode(b"") == b""
    assert z85.decode("") == b""


def test_buffer_types_are_accepted() -> None:
    raw = bytes(range(32))
    encoded = z85.encode(raw)
    assert z85.encode(bytearray(raw)) == encoded
    assert z85.encode(memoryview(raw)) == encoded
    assert z85.decode(bytearray(encoded)) == raw
    assert z85.decode(memoryview(encoded)) == raw
    assert z85.decode(encoded.decode()) == raw


@PROPERTY
@given(st.binary(max_size=64).map(lambda b: b[: len(b) - len(b) % 4]))
def test_encode_matches_pyzmq_and_round_trips(raw: bytes) -> None:
    encoded = z85.encode(raw)
    assert encoded == pyzmq_z85.encode(raw)
    assert len(encoded) == len(raw) // 4 * 5
    assert z85.decode(encoded) == raw
    assert z85.decode(encoded.decode("ascii")) == raw


@PROPERTY
@given(st.lists(st.integers(0, 2**32 - 1), max_size=12))
def test_decode_matches_pyzmq(groups: list[int]) -> None:
    raw = b"".join(g.to_bytes(4, "big") for g in groups)
    text = pyzmq_z85.encode(raw)
    assert z85.decode(text) == pyzmq_z85.decode(text) == raw


@pytest.mark.parametrize("size", [1, 2, 3, 5, 31, 33])
def test_encode_rejects_lengths_not_multiple_of_4(size: int) -> None:
    with pytest.raises(ValueError, match=f"multiple of 4.*{size}"):
        z85.encode(b"\0" * size)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (b"Hell", "multiple of 5.*4"),
        ("HelloWorl", "multiple of 5.*9"),
        (b'Hello"orld', "invalid Z85 character '\"' at offset 5"),
        (b"Hel lo", "multiple of 5"),
        (b"Hello Worl", "invalid Z85 character ' ' at offset 5"),
        (b"HelloWor\x00d", "invalid Z85 character '\\\\x00' at offset 8"),
        ("Hello\u00e9orld", "invalid Z85 character 'é' at offset 5"),
        (b"Hello\xe9orld", "invalid Z85 character 'é' at offset 5"),
        (b"%nSc1", "'%nSc1' at offset 0 is larger than 2\\*\\*32 - 1"),
        (b"HelloWorld#####", "'#####' at offset 10 is larger than 2\\*\\*32 - 1"),
    ],
)
def test_decode_rejects_bad_input(text: bytes | str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        z85.decode(text)


def test_utils_path_is_the_same_module_api() -> None:
    assert zeropipe.utils.z85.encode is z85.encode
    assert zeropipe.utils.z85.decode is z85.decode
    assert zeropipe.utils.z85.Z85CHARS == pyzmq_z85.Z85CHARS


# --- keys ------------------------------------------------------------------------------------


def test_has_curve_with_pynacl() -> None:
    assert has_curve()
    assert hasattr(require_nacl(), "crypto_scalarmult_base")


@pytest.mark.parametrize(("secret", "public"), DOC_KEYS)
def test_libzmq_documentation_key_pairs(secret: str, public: str) -> None:
    assert curve_public(secret) == public.encode()
    assert curve_public(secret.encode()) == public.encode()
    assert curve_public(z85.decode(secret)) == public.encode()
    assert zmq.curve_public(secret.encode()) == public.encode()


def test_curve_keypair_is_a_libzmq_key_pair() -> None:
    public, secret = curve_keypair()
    assert len(public) == len(secret) == 40
    assert len(z85.decode(public)) == len(z85.decode(secret)) == 32
    assert zmq.curve_public(secret) == public
    assert curve_public(secret) == public
    assert curve_keypair() != (public, secret)


def test_pyzmq_keypair_is_derived_alike() -> None:
    public, secret = zmq.curve_keypair()
    assert curve_public(secret) == public


@PROPERTY
@given(st.binary(min_size=32, max_size=32))
def test_curve_public_matches_libzmq(raw_secret: bytes) -> None:
    secret = z85.encode(raw_secret)
    expected = zmq.curve_public(secret)
    assert curve_public(secret) == expected
    assert curve_public(raw_secret) == expected


@pytest.mark.parametrize(
    "form",
    [
        lambda raw: raw,
        lambda raw: bytearray(raw),
        lambda raw: z85.encode(raw),
        lambda raw: z85.encode(raw).decode(),
        lambda raw: z85.encode(raw) + b"\0",
        lambda raw: memoryview(z85.encode(raw)),
    ],
    ids=["raw", "bytearray", "z85", "z85-str", "z85-nul", "memoryview"],
)
def test_key_to_raw_accepts_the_libzmq_forms(form: object) -> None:
    raw = bytes(range(100, 132))
    assert key_to_raw(form(raw), "CURVE_SERVERKEY") == raw  # type: ignore[operator]


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\1" * 31,
        b"\1" * 33,
        b"0" * 39,
        b"0" * 41,
        b"0" * 40 + b"\0\0",
        b"0" * 39 + b"\0",
        b"0" * 39 + b'"',
        "0" * 32,
        "0" * 41,
        "0" * 39 + "\u00e9",
        b"#" * 40,
    ],
)
def test_key_to_raw_rejects_bad_keys_naming_the_option(value: bytes | str) -> None:
    with pytest.raises(ValueError, match="CURVE_PUBLICKEY"):
        key_to_raw(value, "CURVE_PUBLICKEY")


def test_key_to_raw_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="CURVE_SECRETKEY"):
        key_to_raw(12345, "CURVE_SECRETKEY")  # type: ignore[arg-type]


def test_without_pynacl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nacl", None)
    monkeypatch.setitem(sys.modules, "nacl.bindings", None)
    assert not has_curve()
    with pytest.raises(ImportError, match=r"zeropipe\[curve\]"):
        require_nacl()
    with pytest.raises(ImportError, match=r"zeropipe\[curve\]"):
        curve_keypair()
    with pytest.raises(ImportError, match=r"zeropipe\[curve\]"):
        curve_public(DOC_KEYS[0][0])


def test_zeropipe_imports_without_pynacl() -> None:
    out = run_python(
        NO_NACL + "import zeropipe, zeropipe.auth, zeropipe.auth.certs, zeropipe.utils.z85; "
        "from zeropipe.sdk.keys import has_curve, key_to_raw; "
        "print(has_curve(), zeropipe.utils.z85.decode('HelloWorld').hex(), "
        "len(key_to_raw('0' * 40, 'k')))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "864fd26fb559f75b", "32"]


# --- certificate files -----------------------------------------------------------------------


def test_reexports() -> None:
    for module in (zeropipe.auth, zeropipe.auth.certs):
        assert module.create_certificates is create_certificates
        assert module.load_certificate is load_certificate
        assert module.load_certificates is load_certificates
    assert zeropipe.auth.CURVE_ALLOW_ANY == CURVE_ALLOW_ANY == "*"


def test_certificates_are_read_by_pyzmq(tmp_path: Path) -> None:
    public_file, secret_file = create_certificates(tmp_path, "server")
    assert public_file == os.path.join(tmp_path, "server.key")
    assert secret_file == os.path.join(tmp_path, "server.key_secret")
    public, secret = zmq.auth.load_certificate(secret_file)
    assert secret is not None
    assert zmq.curve_public(secret) == public
    assert zmq.auth.load_certificate(public_file) == (public, None)
    assert load_certificate(secret_file) == (public, secret)
    assert load_certificate(public_file) == (public, None)
    assert zmq.auth.load_certificates(tmp_path) == {public: True}
    assert load_certificates(tmp_path) == {public: True}


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_secret_certificate_is_private(tmp_path: Path) -> None:
    stale = tmp_path / "server.key_secret"
    stale.write_text("old")
    stale.chmod(0o644)
    public_file, secret_file = create_certificates(tmp_path, "server")
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert "old" not in Path(secret_file).read_text()
    assert stat.S_IMODE(os.stat(public_file).st_mode) & 0o600 == 0o600


def test_pyzmq_certificates_are_read(tmp_path: Path) -> None:
    metadata = {"name": "bob smith", "role": "client", "tag": "v#2"}
    public_file, secret_file = zmq.auth.create_certificates(tmp_path, "client", metadata)
    expected = zmq.auth.load_certificate(secret_file)
    assert load_certificate(secret_file) == expected
    assert load_certificate(public_file) == (expected[0], None)
    assert load_certificate_metadata(secret_file) == metadata
    assert load_certificates(tmp_path) == zmq.auth.load_certificates(tmp_path)


def test_metadata_is_kept_in_both_files(tmp_path: Path) -> None:
    metadata = {
        "name": "alice",
        "spaces": "a b  c",
        "quoted": 'say "hi"',
        "hash": "#1 # not a comment",
        "empty": "",
        "unicode": "Zoë",
    }
    public_file, secret_file = create_certificates(str(tmp_path), "alice", metadata)
    assert load_certificate_metadata(public_file) == metadata
    assert load_certificate_metadata(secret_file) == metadata
    assert zmq.auth.load_certificate(secret_file) == load_certificate(secret_file)


def test_bytes_metadata(tmp_path: Path) -> None:
    _, secret_file = create_certificates(tmp_path, "b", {b"name": b"value"})  # type: ignore[dict-item]
    assert load_certificate_metadata(secret_file) == {"name": "value"}


@pytest.mark.parametrize(
    "metadata",
    [
        {"has space": "v"},
        {"": "v"},
        {"eq=ual": "v"},
        {"public-key": "v"},
        {"secret-key-owner": "v"},
        {"name": "two\nlines"},
        {"name": "both \" and ' quotes"},
    ],
)
def test_unwritable_metadata_is_refused_before_writing(
    tmp_path: Path, metadata: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="metadata"):
        create_certificates(tmp_path, "x", metadata)
    assert list(tmp_path.iterdir()) == []


def test_czmq_style_certificate(tmp_path: Path) -> None:
    secret, public = DOC_KEYS[0]
    cert = tmp_path / "peer.key_secret"
    cert.write_bytes(
        (
            "#   ****  Generated on 2014-05-02 12:00:00 by CZMQ  ****\r\n"
            "#   ZeroMQ CURVE **Secret** Certificate\r\n"
            "\r\n"
            "metadata\r\n"
            '    name = "peer"    # who\r\n'
            "    address\r\n"
            '        city = "Ghent"\r\n'
            "    bare = plain value   # trailing comment\r\n"
            "curve    # keys\r\n"
            f'    public-key = "{public}"\r\n'
            f"    secret-key = '{secret}'\r\n"
        ).encode()
    )
    assert load_certificate(cert) == (public.encode(), secret.encode())
    assert load_certificate_metadata(cert) == {"name": "peer", "bare": "plain value"}
    assert zmq.auth.load_certificate(cert) == (public.encode(), secret.encode())


def test_unquoted_keys_may_hold_a_hash(tmp_path: Path) -> None:
    secret = z85.encode((84).to_bytes(4, "big") * 8)  # "0000#" * 8
    public = curve_public(secret)
    cert = tmp_path / "hash.key_secret"
    cert.write_text(
        f"curve\n    public-key = {public.decode()}\n    secret-key = {secret.decode()}\n"
    )
    assert load_certificate(cert) == (public, secret)
    assert zmq.auth.load_certificate(cert) == (public, secret)


def test_missing_certificate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_certificate(tmp_path / "nope.key")
    with pytest.raises(OSError):
        load_certificates(tmp_path / "nope")
    with pytest.raises(OSError):
        create_certificates(tmp_path / "nope", "x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "metadata\n    name = x\ncurve\n",
        'curve\n    secret-key = "0000000000000000000000000000000000000000"\n',
        'metadata\n    public-key = "0000000000000000000000000000000000000000"\n',
        'curve\n    public-key = ""\n',
    ],
)
def test_certificate_without_public_key(tmp_path: Path, text: str) -> None:
    cert = tmp_path / "broken.key"
    cert.write_text(text)
    with pytest.raises(ValueError, match=r"No public key found in .*broken\.key"):
        load_certificate(cert)
    with pytest.raises(ValueError, match=r"broken\.key"):
        load_certificates(tmp_path)


@pytest.mark.parametrize("key", ["00000", "0" * 39, "0" * 41, "0" * 39 + "~", "%nSc1" + "0" * 35])
def test_certificate_with_bad_key(tmp_path: Path, key: str) -> None:
    cert = tmp_path / "bad.key"
    cert.write_text(f'curve\n    public-key = "{key}"\n')
    with pytest.raises(ValueError, match=r"bad\.key.*public key"):
        load_certificate(cert)


def test_certificate_not_text(tmp_path: Path) -> None:
    cert = tmp_path / "binary.key"
    cert.write_bytes(b"\xff\xfe\x00curve")
    with pytest.raises(ValueError, match=r"binary\.key"):
        load_certificate(cert)


def test_load_certificates_takes_public_files_only(tmp_path: Path) -> None:
    ours, _ = create_certificates(tmp_path, "ours")
    theirs, _ = zmq.auth.create_certificates(tmp_path, "theirs")
    (tmp_path / "notes.txt").write_text("not a certificate")
    expected = {load_certificate(ours)[0]: True, zmq.auth.load_certificate(theirs)[0]: True}
    assert load_certificates(tmp_path) == expected
    assert zmq.auth.load_certificates(tmp_path) == expected


# --- zeropipe keygen -------------------------------------------------------------------------


def test_keygen_prints_a_key_pair() -> None:
    out = run_cli("keygen")
    assert out.returncode == 0, out.stderr
    keys = printed_keys(out.stdout)
    assert set(keys) == {"public-key", "secret-key"}
    assert zmq.curve_public(keys["secret-key"]) == keys["public-key"]


def test_keygen_writes_certificates(tmp_path: Path) -> None:
    target = tmp_path / "certs"
    out = run_cli(
        "keygen", "server", "-d", str(target), "--metadata", "name=Server A", "--metadata", "k=a=b"
    )
    assert out.returncode == 0, out.stderr
    public_file, secret_file = target / "server.key", target / "server.key_secret"
    assert str(public_file) in out.stdout
    assert str(secret_file) in out.stdout
    public, secret = zmq.auth.load_certificate(secret_file)
    assert secret is not None
    assert zmq.curve_public(secret) == public
    assert printed_keys(out.stdout) == {"public-key": public}
    assert zmq.auth.load_certificates(target) == {public: True}
    assert load_certificate_metadata(public_file) == {"name": "Server A", "k": "a=b"}


def test_keygen_defaults_to_the_current_directory(tmp_path: Path) -> None:
    out = run_cli("keygen", "here", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert load_certificate(tmp_path / "here.key_secret")[1] is not None


def test_keygen_keeps_existing_certificates_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    public_file, _ = create_certificates(tmp_path, "server")
    before = Path(public_file).read_bytes()
    assert main(["keygen", "server", "-d", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert Path(public_file).read_bytes() == before
    assert main(["keygen", "server", "-d", str(tmp_path), "--force"]) == 0
    assert Path(public_file).read_bytes() != before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "{tmp}"], "need a NAME"),
        (["x", "-d", "{tmp}/file"], "not a directory"),
        (["x", "-d", "{tmp}/file/sub"], "cannot write certificates"),
        (["x", "-d", "{tmp}", "--metadata", "novalue"], "NAME=VALUE"),
        (["x", "-d", "{tmp}", "--metadata", "bad name=v"], "metadata name"),
    ],
)
def test_keygen_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "file").write_text("")
    out = run_cli("keygen", *(arg.format(tmp=tmp_path) for arg in args))
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_keygen_without_pynacl(tmp_path: Path) -> None:
    for args in (["keygen"], ["keygen", "x", "-d", str(tmp_path)]):
        out = run_python(
            NO_NACL + f"from zeropipe.cli.main import main; raise SystemExit(main({args!r}))"
        )
        assert out.returncode == 2
        assert "zeropipe[curve]" in out.stderr
        assert out.stdout == ""
    assert list(tmp_path.iterdir()) == []
