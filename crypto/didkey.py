"""did:key identifiers for Ed25519 public keys.

A node's DID is its public key, spelled the way the did:key method (W3C CCG)
and Multikey (W3C Controlled Identifiers) spell it:

    did = "did:key:" + "z" + base58btc(0xed 0x01 || pk32)

"z" is the multibase prefix for base58btc (Bitcoin alphabet) and 0xed 0x01 is
the unsigned-varint multicodec code 0xed (ed25519-pub), so every Ed25519
did:key starts "did:key:z6Mk". Decoding is strict: anything other than exactly
that shape is an `EncodingError`, never another exception type. Base58 with the
leading-'1' convention is a bijection, so each key has exactly one DID.
"""

from __future__ import annotations

from typing import Final

import base58

from crypto.errors import EncodingError
from crypto.keys import PUBLIC_KEY_SIZE, PublicKey

DID_KEY_PREFIX: Final = "did:key:"
MULTIBASE_BASE58BTC: Final = "z"
ED25519_PUB_CODEC: Final = 0xED
ED25519_PUB_PREFIX: Final = b"\xed\x01"  # unsigned varint of 0xed
ED25519_DID_PREFIX: Final = "did:key:z6Mk"

_ALPHABET: Final = frozenset(base58.BITCOIN_ALPHABET.decode("ascii"))
# An Ed25519 did:key is 56 characters; refuse long input before base58's
# quadratic decode ever sees it.
_MAX_DID_LENGTH: Final = 128
_SHORT_CHARS: Final = 12


def did_from_public(key: PublicKey | bytes) -> str:
    """The did:key of an Ed25519 public key (a `PublicKey` or its 32 raw bytes)."""
    pk = key if isinstance(key, PublicKey) else PublicKey(key)
    encoded: str = base58.b58encode(ED25519_PUB_PREFIX + pk.raw).decode("ascii")
    return DID_KEY_PREFIX + MULTIBASE_BASE58BTC + encoded


def public_from_did(did: str) -> PublicKey:
    """The Ed25519 public key named by `did`; `EncodingError` if malformed."""
    if not isinstance(did, str):
        raise EncodingError(f"a did:key is a str, not {type(did).__name__}")
    if len(did) > _MAX_DID_LENGTH:
        raise EncodingError(f"not an Ed25519 did:key: {len(did)} characters is too long")
    if not did.startswith(DID_KEY_PREFIX):
        raise EncodingError(f"not a did:key (must start {DID_KEY_PREFIX!r}): {did!r}")
    if "#" in did:
        raise EncodingError(f"did:key has a fragment; strip '#…' first: {did!r}")
    multibase = did[len(DID_KEY_PREFIX) :]
    if not multibase:
        raise EncodingError(f"did:key has no key: {did!r}")
    if multibase[0] != MULTIBASE_BASE58BTC:
        raise EncodingError(
            f"did:key multibase prefix must be 'z' (base58btc), got {multibase[0]!r}: {did!r}"
        )
    encoded = multibase[1:]
    bad = sorted(set(encoded) - _ALPHABET)
    if bad:
        raise EncodingError(f"did:key has characters outside base58btc {bad!r}: {did!r}")
    if not encoded:
        raise EncodingError(f"did:key has an empty base58btc key: {did!r}")
    try:
        data: bytes = base58.b58decode(encoded)
    except ValueError as exc:  # unreachable after the alphabet check; kept as the edge map
        raise EncodingError(f"did:key is not valid base58btc: {did!r}") from exc
    codec = _read_varint(data, did)
    if codec != ED25519_PUB_CODEC:
        raise EncodingError(f"did:key multicodec is 0x{codec:x}, not ed25519-pub (0xed): {did!r}")
    if not data.startswith(ED25519_PUB_PREFIX):
        # 0xed spelled with redundant varint padding bytes.
        raise EncodingError(f"did:key multicodec varint is not minimal: {did!r}")
    raw = data[len(ED25519_PUB_PREFIX) :]
    if len(raw) != PUBLIC_KEY_SIZE:
        raise EncodingError(
            f"did:key Ed25519 key is {len(raw)} bytes, not {PUBLIC_KEY_SIZE}: {did!r}"
        )
    return PublicKey(raw)


def short(did: str) -> str:
    """A short form of `did` for logs: 12 characters after "did:key:z6Mk", then "…".

    Never raises: anything that does not look like an Ed25519 did:key is cut to
    a bounded length instead, so a log line can quote a peer's garbage.
    """
    if did.startswith(ED25519_DID_PREFIX) and len(did) > len(ED25519_DID_PREFIX):
        return did[len(ED25519_DID_PREFIX) :][:_SHORT_CHARS] + "…"
    if len(did) <= len(ED25519_DID_PREFIX) + _SHORT_CHARS:
        return did
    return did[: len(ED25519_DID_PREFIX) + _SHORT_CHARS] + "…"


def _read_varint(data: bytes, did: str) -> int:
    """The unsigned-varint (multiformats) at the start of `data`."""
    value = 0
    for i, byte in enumerate(data[:9]):  # multiformats caps varints at 9 bytes
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value
    raise EncodingError(f"did:key has a truncated or overlong multicodec varint: {did!r}")
