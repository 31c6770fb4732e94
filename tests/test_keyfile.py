"""Tests for crypto.keyfile: round trips, file mode, and every way a key file goes bad.

Most sealed files here use argon2id's minimum limits so the suite stays fast;
one test covers the (interactive) defaults.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from pathlib import Path

import nacl.pwhash.argon2id
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto.didkey import did_from_public
from crypto.errors import KeyFileError
from crypto.keyfile import (
    KeyFilePermissionWarning,
    is_encrypted,
    read_did,
    read_key,
    write_key,
)
from crypto.keys import SigningKey

KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
PASS = b"correct horse battery staple"
FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "node.key"
    write_key(path, KEY)
    return path


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    path = tmp_path / "sealed.key"
    write_key(path, KEY, PASS, **FAST)
    return path


def _doc(path: Path) -> dict[str, object]:
    doc = json.loads(path.read_bytes())
    assert isinstance(doc, dict)
    return doc


def _put(path: Path, data: bytes) -> None:
    """Write `data` as a key file would be: 0600, so no permission warning."""
    path.write_bytes(data)
    path.chmod(0o600)


def _rewrite(path: Path, doc: dict[str, object]) -> None:
    _put(path, json.dumps(doc).encode())


# --- round trips ----------------------------------------------------------------------


def test_plain_round_trip(plain: Path) -> None:
    assert read_key(plain).seed == KEY.seed
    assert not is_encrypted(plain)
    doc = _doc(plain)
    assert doc["did"] == did_from_public(KEY.public)
    assert doc["seed"] == KEY.seed.hex()


def test_plain_ignores_passphrase(plain: Path) -> None:
    assert read_key(plain, PASS).seed == KEY.seed


def test_sealed_round_trip(sealed: Path) -> None:
    assert is_encrypted(sealed)
    assert read_key(sealed, PASS).seed == KEY.seed
    raw = sealed.read_text()
    assert KEY.seed.hex() not in raw
    assert did_from_public(KEY.public) in raw


def test_read_did_needs_no_passphrase(plain: Path, sealed: Path) -> None:
    assert read_did(plain) == read_did(sealed) == did_from_public(KEY.public)


def test_read_did_checks_the_file(sealed: Path) -> None:
    doc = _doc(sealed)
    doc["did"] = "did:key:zNotAKey"
    _rewrite(sealed, doc)
    with pytest.raises(KeyFileError, match="bad did") as info:
        read_did(sealed)
    assert str(sealed) in str(info.value)


def test_sealed_default_limits(tmp_path: Path) -> None:
    path = tmp_path / "default.key"
    write_key(path, KEY, PASS)
    doc = _doc(path)
    assert doc["opslimit"] == nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    assert doc["memlimit"] == nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
    assert read_key(path, PASS).seed == KEY.seed


def test_str_path(tmp_path: Path) -> None:
    path = str(tmp_path / "str.key")
    write_key(path, KEY)
    assert read_key(path).seed == KEY.seed


def test_overwrite_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("old")
    path.chmod(0o644)
    write_key(path, KEY)
    write_key(path, OTHER, PASS, **FAST)
    assert read_key(path, PASS).seed == OTHER.seed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]


# --- mode -----------------------------------------------------------------------------


def test_mode_0600(plain: Path, sealed: Path) -> None:
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600


def test_no_warning_at_0600(plain: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_key(plain)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_open_mode_warns_but_loads(plain: Path, mode: int) -> None:
    plain.chmod(mode)
    with pytest.warns(KeyFilePermissionWarning, match=f"{plain}.*{mode:#o}"):
        key = read_key(plain)
    assert key.seed == KEY.seed


# --- failures -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError, match="does not exist") as info:
        read_key(path)
    assert str(path) in str(info.value)
    with pytest.raises(KeyFileError, match="does not exist"):
        is_encrypted(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as info:
        read_key(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_write_into_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "node.key"
    with pytest.raises(KeyFileError) as info:
        write_key(path, KEY)
    assert str(path) in str(info.value)


def test_empty_passphrase_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.key"
    with pytest.raises(KeyFileError, match="empty passphrase"):
        write_key(path, KEY, b"")
    assert not path.exists()


def test_wrong_passphrase(sealed: Path) -> None:
    with pytest.raises(KeyFileError, match="wrong passphrase") as info:
        read_key(sealed, b"wrong")
    assert str(sealed) in str(info.value)


def test_missing_passphrase(sealed: Path) -> None:
    with pytest.raises(KeyFileError, match="no passphrase") as info:
        read_key(sealed)
    assert str(sealed) in str(info.value)


def test_seed_does_not_match_did(plain: Path) -> None:
    doc = _doc(plain)
    doc["seed"] = OTHER.seed.hex()
    _rewrite(plain, doc)
    with pytest.raises(KeyFileError, match="does not match") as info:
        read_key(plain)
    assert str(plain) in str(info.value)


def test_sealed_seed_does_not_match_did(sealed: Path) -> None:
    doc = _doc(sealed)
    doc["did"] = did_from_public(OTHER.public)
    _rewrite(sealed, doc)
    with pytest.raises(KeyFileError, match="does not match"):
        read_key(sealed, PASS)


def _mutations(sealed: bool) -> list[tuple[str, object]]:
    common: list[tuple[str, object]] = [
        ("format", "other"),
        ("version", 2),
        ("version", True),
        ("version", "1"),
        ("did", "did:key:zzz"),
        ("did", 7),
        ("extra", 1),
    ]
    if not sealed:
        return [*common, ("seed", "00"), ("seed", KEY.seed.hex().upper()), ("seed", None)]
    return [
        *common,
        ("kdf", "scrypt"),
        ("cipher", "aes"),
        ("salt", "00"),
        ("nonce", "zz" * 24),
        ("ciphertext", "00" * 48),
        ("opslimit", 0),
        ("opslimit", 10**9),
        ("opslimit", 2.0),
        ("memlimit", 2**40),
        ("memlimit", 1024),
        ("seed", KEY.seed.hex()),
    ]


@pytest.mark.parametrize(("field", "value"), _mutations(sealed=False))
def test_corrupted_plain_field(plain: Path, field: str, value: object) -> None:
    doc = _doc(plain)
    doc[field] = value
    _rewrite(plain, doc)
    with pytest.raises(KeyFileError) as info:
        read_key(plain)
    assert str(plain) in str(info.value)


@pytest.mark.parametrize(("field", "value"), _mutations(sealed=True))
def test_corrupted_sealed_field(sealed: Path, field: str, value: object) -> None:
    doc = _doc(sealed)
    doc[field] = value
    _rewrite(sealed, doc)
    with pytest.raises(KeyFileError) as info:
        read_key(sealed, PASS)
    assert str(sealed) in str(info.value)


@pytest.mark.parametrize("field", ["did", "seed", "format", "version"])
def test_missing_field(plain: Path, field: str) -> None:
    doc = _doc(plain)
    del doc[field]
    _rewrite(plain, doc)
    with pytest.raises(KeyFileError):
        read_key(plain)


@pytest.mark.parametrize("fixture", ["plain", "sealed"])
def test_every_truncation(request: pytest.FixtureRequest, fixture: str) -> None:
    path: Path = request.getfixturevalue(fixture)
    data = path.read_bytes()
    for n in range(len(data)):
        _put(path, data[:n])
        if data[:n].rstrip() == data.rstrip():
            # Only the trailing newline is gone: still the whole key.
            assert read_key(path, PASS).seed == KEY.seed
            continue
        with pytest.raises(KeyFileError) as info:
            read_key(path, PASS)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 64,
        b"\xff\xfe garbage",
        b"null",
        b"[]",
        b'"did:key:z6Mk"',
        b"[" * 100_000,
        b"[" * 20_000,
        b"{" * 10,
        b"NaN",
        b'{"format": "sealchain-key", "version": 1e400}',
        b'{"format": "sealchain-key", "version": ' + b"9" * 5000 + b"}",
        b" " * (64 * 1024 + 1),
    ],
)
def test_garbage(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "garbage.key"
    _put(path, data)
    with pytest.raises(KeyFileError) as info:
        read_key(path, PASS)
    assert str(path) in str(info.value)
    with pytest.raises(KeyFileError):
        is_encrypted(path)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(st.binary(max_size=600))
def test_random_bytes_only_key_file_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.key"
    _put(path, data)
    with pytest.raises(KeyFileError):
        read_key(path, PASS)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of one plain and one sealed file, for tests that mutate copies."""
    folder = tmp_path_factory.mktemp("pristine")
    write_key(folder / "plain", KEY)
    write_key(folder / "sealed", KEY, PASS, **FAST)
    return {name: (folder / name).read_bytes() for name in ("plain", "sealed")}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100)
@given(st.sampled_from(["plain", "sealed"]), st.integers(min_value=0), st.integers(0, 255))
def test_flipped_byte_only_key_file_error(
    tmp_path: Path, pristine: dict[str, bytes], name: str, where: int, value: int
) -> None:
    data = bytearray(pristine[name])
    data[where % len(data)] = value
    path = tmp_path / "flipped.key"
    _put(path, bytes(data))
    try:
        key = read_key(path, PASS)
    except KeyFileError:
        return
    # Unchanged, or only formatting changed: it must still be the same key.
    assert key.seed == KEY.seed


def test_temp_file_is_created_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The file must never exist with a wider mode, even for an instant.
    seen: list[int] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if flags & os.O_CREAT:
            seen.append(mode)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    write_key(tmp_path / "node.key", KEY)
    assert seen == [0o600]
