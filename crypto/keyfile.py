"""Key files for the node's Ed25519 seed.

The one module in `crypto/` that does I/O. A key file is a small JSON object:

    {"format": "sealchain-key", "version": 1, "did": "did:key:z6Mk…", "seed": "<hex>"}

or, passphrase-protected, "seed" replaced by an argon2id-derived key
(`nacl.pwhash.argon2id`, its salt and limits recorded) sealing the seed in a
`nacl.secret.SecretBox` (XSalsa20-Poly1305):

    {…, "kdf": "argon2id", "salt": …, "opslimit": …, "memlimit": …,
     "cipher": "xsalsa20-poly1305", "nonce": …, "ciphertext": …}

The did is there so a human can see whose key a file holds, and it is checked:
a seed that does not derive the recorded did is refused. Writes are atomic
(a 0600 temp file in the same directory, then `os.replace`). Every failure is a
`KeyFileError` naming the file; a file open to group or others still loads but
warns with `KeyFilePermissionWarning`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import warnings
from dataclasses import dataclass
from typing import Final, TypeAlias

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret

from crypto.didkey import did_from_public, public_from_did
from crypto.errors import EncodingError, KeyFileError
from crypto.keys import SEED_SIZE, SigningKey

StrPath: TypeAlias = "str | os.PathLike[str]"

FORMAT: Final = "sealchain-key"
VERSION: Final = 1
KDF: Final = "argon2id"
CIPHER: Final = "xsalsa20-poly1305"

OPSLIMIT_DEFAULT: Final[int] = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT_DEFAULT: Final[int] = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Limits accepted from a file: a corrupted or hostile file must not make us
# allocate terabytes or spin for hours before failing.
OPSLIMIT_RANGE: Final[range] = range(
    nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE + 1
)
MEMLIMIT_RANGE: Final[range] = range(
    nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE + 1
)

_SALT_SIZE: Final[int] = nacl.pwhash.argon2id.SALTBYTES
_NONCE_SIZE: Final[int] = nacl.secret.SecretBox.NONCE_SIZE
_CIPHERTEXT_SIZE: Final[int] = SEED_SIZE + nacl.secret.SecretBox.MACBYTES
_MAX_FILE_SIZE: Final = 64 * 1024  # a real key file is about 400 bytes
_HEX: Final = re.compile(r"[0-9a-f]*")

_COMMON_FIELDS: Final = frozenset({"format", "version", "did"})
_PLAIN_FIELDS: Final = _COMMON_FIELDS | {"seed"}
_ENCRYPTED_FIELDS: Final = _COMMON_FIELDS | {
    "kdf",
    "salt",
    "opslimit",
    "memlimit",
    "cipher",
    "nonce",
    "ciphertext",
}


class KeyFilePermissionWarning(UserWarning):
    """A key file is readable or writable by group or others."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Sealed:
    salt: bytes
    opslimit: int
    memlimit: int
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class _Parsed:
    did: str
    secret: bytes | _Sealed  # the seed itself, or the seed sealed


def write_key(
    path: StrPath,
    key: SigningKey,
    passphrase: bytes | None = None,
    *,
    opslimit: int = OPSLIMIT_DEFAULT,
    memlimit: int = MEMLIMIT_DEFAULT,
) -> None:
    """Write `key` to `path` atomically with mode 0600, sealed if `passphrase` is given.

    An existing file at `path` is replaced. `opslimit` and `memlimit` are the
    argon2id limits, recorded in the file; they must lie in `OPSLIMIT_RANGE`
    and `MEMLIMIT_RANGE` so that `read_key` will accept them back.
    """
    name = os.fspath(path)
    doc: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "did": did_from_public(key.public),
    }
    if passphrase is None:
        doc["seed"] = key.seed.hex()
    else:
        if not passphrase:
            raise KeyFileError(f"key file {name}: refusing to encrypt with an empty passphrase")
        if opslimit not in OPSLIMIT_RANGE or memlimit not in MEMLIMIT_RANGE:
            raise KeyFileError(
                f"key file {name}: argon2id limits out of range "
                f"(opslimit={opslimit}, memlimit={memlimit})"
            )
        salt = secrets.token_bytes(_SALT_SIZE)
        nonce = secrets.token_bytes(_NONCE_SIZE)
        box = nacl.secret.SecretBox(_derive(name, passphrase, salt, opslimit, memlimit))
        ciphertext = bytes(box.encrypt(key.seed, nonce).ciphertext)
        doc |= {
            "kdf": KDF,
            "salt": salt.hex(),
            "opslimit": opslimit,
            "memlimit": memlimit,
            "cipher": CIPHER,
            "nonce": nonce.hex(),
            "ciphertext": ciphertext.hex(),
        }
    _write_atomic(name, (json.dumps(doc, indent=2) + "\n").encode("ascii"))


def read_key(path: StrPath, passphrase: bytes | None = None) -> SigningKey:
    """The key stored at `path`; `KeyFileError` naming the file on any failure.

    `passphrase` is required for a sealed file and ignored for a plain one (use
    `is_encrypted` to tell them apart). Warns `KeyFilePermissionWarning` when
    the file is open to group or others.
    """
    name = os.fspath(path)
    data, mode = _read(name)
    if mode & 0o077:
        warnings.warn(
            f"key file {name} has mode {stat.filemode(mode)} ({mode & 0o777:#o}); "
            "it is readable or writable by group/others, chmod it to 0600",
            KeyFilePermissionWarning,
            stacklevel=2,
        )
    parsed = _parse(name, data)
    if isinstance(parsed.secret, bytes):
        seed = parsed.secret
    elif passphrase is None:
        raise KeyFileError(f"key file {name} is encrypted and no passphrase was given")
    else:
        seed = _open(name, parsed.secret, passphrase)
    key = SigningKey(seed)
    if did_from_public(key.public) != parsed.did:
        raise KeyFileError(
            f"key file {name}: the seed does not match the recorded did {parsed.did}"
        )
    return key


def read_did(path: StrPath) -> str:
    """The did recorded in the key file at `path`, without unsealing it.

    Only what the file claims: `read_key` checks it against the seed.
    """
    name = os.fspath(path)
    data, _ = _read(name)
    return _parse(name, data).did


def is_encrypted(path: StrPath) -> bool:
    """Whether the key file at `path` is passphrase-protected; `KeyFileError` if unreadable."""
    name = os.fspath(path)
    data, _ = _read(name)
    return isinstance(_parse(name, data).secret, _Sealed)


def _derive(name: str, passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    try:
        key: bytes = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase,
            salt,
            opslimit=opslimit,
            memlimit=memlimit,
        )
    except (nacl.exceptions.CryptoError, MemoryError) as exc:
        raise KeyFileError(f"key file {name}: argon2id key derivation failed") from exc
    return key


def _open(name: str, sealed: _Sealed, passphrase: bytes) -> bytes:
    box = nacl.secret.SecretBox(
        _derive(name, passphrase, sealed.salt, sealed.opslimit, sealed.memlimit)
    )
    try:
        seed: bytes = box.decrypt(sealed.ciphertext, sealed.nonce)
    except nacl.exceptions.CryptoError as exc:
        raise KeyFileError(
            f"key file {name}: wrong passphrase (or the ciphertext is corrupted)"
        ) from exc
    return seed


def _read(name: str) -> tuple[bytes, int]:
    """The bytes of the file and its st_mode, both from one open descriptor."""
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {name} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"key file {name} cannot be opened: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise KeyFileError(f"key file {name} is not a regular file")
            data = f.read(_MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise KeyFileError(f"key file {name} cannot be read: {exc.strerror}") from exc
    if len(data) > _MAX_FILE_SIZE:
        raise KeyFileError(f"key file {name} is larger than {_MAX_FILE_SIZE} bytes")
    return data, mode


def _parse(name: str, data: bytes) -> _Parsed:
    """Check every field of a key file's bytes; the seed stays sealed."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError
        raise KeyFileError(f"key file {name} is not valid JSON (truncated or corrupted?)") from exc
    if not isinstance(doc, dict):
        raise KeyFileError(f"key file {name} is not a JSON object")
    if doc.get("format") != FORMAT:
        raise KeyFileError(f"key file {name} is not a {FORMAT} file")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        raise KeyFileError(f"key file {name} has unsupported version {version!r}")
    fields = frozenset(doc)
    if fields not in (_PLAIN_FIELDS, _ENCRYPTED_FIELDS):
        raise KeyFileError(
            f"key file {name} has an unexpected set of fields {sorted(fields)} (corrupted?)"
        )
    did = doc["did"]
    if not isinstance(did, str):
        raise KeyFileError(f"key file {name}: did is not a string")
    try:
        public_from_did(did)
    except EncodingError as exc:
        raise KeyFileError(f"key file {name}: bad did: {exc}") from exc
    if fields == _PLAIN_FIELDS:
        return _Parsed(did=did, secret=_hex_field(name, doc, "seed", SEED_SIZE))
    if doc["kdf"] != KDF or doc["cipher"] != CIPHER:
        raise KeyFileError(
            f"key file {name}: unsupported kdf {doc['kdf']!r} or cipher {doc['cipher']!r}"
        )
    sealed = _Sealed(
        salt=_hex_field(name, doc, "salt", _SALT_SIZE),
        opslimit=_int_field(name, doc, "opslimit", OPSLIMIT_RANGE),
        memlimit=_int_field(name, doc, "memlimit", MEMLIMIT_RANGE),
        nonce=_hex_field(name, doc, "nonce", _NONCE_SIZE),
        ciphertext=_hex_field(name, doc, "ciphertext", _CIPHERTEXT_SIZE),
    )
    return _Parsed(did=did, secret=sealed)


def _hex_field(name: str, doc: dict[str, object], field: str, size: int) -> bytes:
    value = doc[field]
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise KeyFileError(f"key file {name}: {field} is not {size} bytes of lowercase hex")
    return bytes.fromhex(value)


def _int_field(name: str, doc: dict[str, object], field: str, allowed: range) -> int:
    value = doc[field]
    if type(value) is not int or value not in allowed:
        raise KeyFileError(
            f"key file {name}: {field} must be an integer in [{allowed.start}, {allowed.stop - 1}]"
        )
    return value


def _write_atomic(name: str, data: bytes) -> None:
    """Write `data` to a fresh 0600 file beside `name`, then rename it over `name`."""
    directory = os.path.dirname(name) or "."
    tmp = os.path.join(directory, f".{os.path.basename(name)}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise KeyFileError(f"key file {name} cannot be created: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # already renamed or never there; the original error is what matters
        raise KeyFileError(f"key file {name} cannot be written: {exc.strerror}") from exc
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    # Makes the rename durable. Best effort: the file is already in place, and
    # some platforms and filesystems cannot open or fsync a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
