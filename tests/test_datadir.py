"""Tests for node.datadir: the node key behind a passphrase, and passphrase files.

Every key failure is a one-line `ConfigError` naming the key file (the CLI
turns it into exit code 2); a passphrase comes from a file, never argv.
"""

from __future__ import annotations

import json
from pathlib import Path

import nacl.pwhash.argon2id
import pytest

from crypto import keyfile
from crypto.didkey import did_from_public
from crypto.keys import SigningKey
from node.datadir import PASSPHRASE_ENV, DataDir, load_passphrase
from node.errors import ConfigError
from node.scenario import World

KEY = SigningKey(bytes(range(32)))
PASS = b"correct horse battery staple"


@pytest.fixture
def sealed(tmp_path: Path) -> DataDir:
    # `init` seals with the default (interactive) argon2id limits: ~0.1 s per unseal.
    d = DataDir.init(tmp_path / "node", World.create(seed=1).genesis, key=KEY, passphrase=PASS)
    assert keyfile.is_encrypted(d.key_file)
    return d


def test_init_seals_the_key_0600(sealed: DataDir) -> None:
    assert sealed.key_file.stat().st_mode & 0o777 == 0o600
    raw = sealed.key_file.read_text()
    assert KEY.seed.hex() not in raw
    assert json.loads(raw)["opslimit"] == nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE


def test_key_with_the_right_passphrase(sealed: DataDir) -> None:
    assert sealed.key(PASS).seed == KEY.seed


def test_did_needs_no_passphrase(sealed: DataDir) -> None:
    assert sealed.did() == did_from_public(KEY.public)


def test_missing_passphrase_is_one_config_line(sealed: DataDir) -> None:
    with pytest.raises(ConfigError) as info:
        sealed.key()
    msg = str(info.value)
    assert "\n" not in msg
    assert str(sealed.key_file) in msg
    assert "--passphrase-file" in msg
    assert PASSPHRASE_ENV in msg


def test_wrong_passphrase_is_one_config_line(sealed: DataDir) -> None:
    with pytest.raises(ConfigError, match="wrong passphrase") as info:
        sealed.key(b"not it")
    assert str(sealed.key_file) in str(info.value)
    assert "\n" not in str(info.value)


def test_corrupt_key_file_is_a_config_error(sealed: DataDir) -> None:
    sealed.key_file.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        sealed.key(PASS)
    with pytest.raises(ConfigError, match="not valid JSON"):
        sealed.did()


def test_plain_key_ignores_a_passphrase(tmp_path: Path) -> None:
    d = DataDir.init(tmp_path / "node", World.create(seed=1).genesis, key=KEY)
    assert not keyfile.is_encrypted(d.key_file)
    assert d.key().seed == d.key(PASS).seed == KEY.seed


# -- passphrase files ----------------------------------------------------------------------


def test_no_file_and_no_environment_is_none() -> None:
    assert load_passphrase(None, {}) is None
    assert load_passphrase(None, {PASSPHRASE_ENV: ""}) is None


@pytest.mark.parametrize(("content", "want"), [
    (b"secret", b"secret"),
    (b"secret\n", b"secret"),
    (b"secret\r\n", b"secret"),
    (b"two words \n\n", b"two words \n"),  # only one newline is the file's ending
    (b"\xffbinary\x00", b"\xffbinary\x00"),
])
def test_file_content(tmp_path: Path, content: bytes, want: bytes) -> None:
    path = tmp_path / "pass"
    path.write_bytes(content)
    assert load_passphrase(path, {}) == want


def test_flag_beats_environment(tmp_path: Path) -> None:
    flag, env = tmp_path / "flag", tmp_path / "env"
    flag.write_bytes(b"from-flag")
    env.write_bytes(b"from-env")
    assert load_passphrase(flag, {PASSPHRASE_ENV: str(env)}) == b"from-flag"
    assert load_passphrase(None, {PASSPHRASE_ENV: str(env)}) == b"from-env"


@pytest.mark.parametrize(("content", "match"), [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"\n", "is empty"),
    (b"x" * 5000, "larger than"),
])
def test_bad_file_names_it(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "pass"
    if content is not None:
        path.write_bytes(content)
    flag_or_env: list[tuple[Path | None, dict[str, str]]] = [
        (path, {}), (None, {PASSPHRASE_ENV: str(path)})
    ]
    for flag, env in flag_or_env:
        with pytest.raises(ConfigError, match=match) as info:
            load_passphrase(flag, env)
        assert str(path) in str(info.value)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read") as info:
        load_passphrase(tmp_path, {})
    assert str(tmp_path) in str(info.value)
