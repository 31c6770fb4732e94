"""Tests for crypto.didkey: known-answer vectors, round trips, and every malformed DID.

The vectors live outside the repo in shared/conformance/didkey_vectors.txt
(W3C CCG did-method-key and w3c/vc-di-eddsa test vectors); they are read at
test time and never copied in.
"""

from __future__ import annotations

from pathlib import Path

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.didkey import ED25519_DID_PREFIX, did_from_public, public_from_did, short
from crypto.errors import CryptoError, EncodingError
from crypto.keys import PublicKey, SigningKey

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
VECTORS = CONFORMANCE / "didkey_vectors.txt"


def _load_vectors() -> list[object]:
    """One `pytest.param(seed, pk, did, id=did)` per vector line."""
    if not VECTORS.is_file():
        return []
    vectors: list[object] = []
    for line in VECTORS.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        seed_hex, pk_hex, rest = (part.strip() for part in line.split("|", 2))
        did = rest.split()[0]
        vectors.append(pytest.param(bytes.fromhex(seed_hex), bytes.fromhex(pk_hex), did, id=did))
    return vectors


_VECTORS = _load_vectors()


def _b58did(payload: bytes) -> str:
    return "did:key:z" + base58.b58encode(payload).decode("ascii")


# --- known answers ----------------------------------------------------------------


@pytest.mark.skipif(not VECTORS.is_file(), reason=f"conformance vectors absent: {VECTORS}")
def test_vector_file_has_vectors() -> None:
    assert len(_VECTORS) >= 10


@pytest.mark.skipif(not VECTORS.is_file(), reason=f"conformance vectors absent: {VECTORS}")
@pytest.mark.parametrize(
    ("seed", "pk", "did"), _VECTORS or [pytest.param(b"", b"", "", id="no-vectors")]
)
def test_known_answer(seed: bytes, pk: bytes, did: str) -> None:
    assert SigningKey(seed).public.raw == pk
    assert did_from_public(pk) == did
    assert did_from_public(PublicKey(pk)) == did
    assert public_from_did(did) == PublicKey(pk)
    assert did.startswith(ED25519_DID_PREFIX)


# --- round trips --------------------------------------------------------------------


@given(st.binary(min_size=32, max_size=32))
def test_round_trip(raw: bytes) -> None:
    did = did_from_public(raw)
    assert did.startswith(ED25519_DID_PREFIX)
    assert public_from_did(did).raw == raw
    assert did_from_public(public_from_did(did)) == did


def test_did_from_public_rejects_wrong_size() -> None:
    with pytest.raises(CryptoError):
        did_from_public(b"\x00" * 31)


# --- malformed ----------------------------------------------------------------------

_GOOD = did_from_public(bytes(range(32)))
_PK = bytes(range(32))


@pytest.mark.parametrize(
    ("did", "words"),
    [
        ("", "must start"),
        ("did:web:example.com", "must start"),
        ("DID:KEY:" + _GOOD[8:], "must start"),
        ("did:key:", "no key"),
        ("did:key:z", "empty"),
        ("did:key:f" + (b"\xed\x01" + _PK).hex(), "multibase"),
        ("did:key:Z" + _GOOD[9:], "multibase"),
        (_GOOD + "#" + _GOOD[8:], "fragment"),
        (_GOOD + " ", "base58"),
        (" " + _GOOD, "must start"),
        (_GOOD + "\n", "base58"),
        (_GOOD[:-1] + "0", "base58"),
        (_GOOD[:-1] + "O", "base58"),
        (_GOOD[:-1] + "l", "base58"),
        (_GOOD[:-1] + "é", "base58"),
        # base58 is one big number: a dropped or added digit shifts every byte.
        (_GOOD[:-1], "multicodec"),
        (_GOOD + "1", "multicodec"),
        (_GOOD + "z" * 100, "too long"),
        (_b58did(b"\xec\x01" + _PK), "0xec"),  # x25519-pub, the did:key agreement key
        (_b58did(b"\xe7\x01" + _PK[:1] + _PK), "0xe7"),  # secp256k1-pub
        (_b58did(b"\x80\x26" + _PK), "0x1300"),  # ed25519-priv multikey
        (_b58did(b"\x00" + b"\xed\x01" + _PK), "0x0"),
        (_b58did(b"\xed\x81\x00" + _PK), "minimal"),
        (_b58did(b"\xed"), "varint"),
        (_b58did(b"\xff" * 12), "varint"),
        (_b58did(b"\xed\x01"), "0 bytes"),
        (_b58did(b"\xed\x01" + _PK[:31]), "31 bytes"),
        (_b58did(b"\xed\x01" + _PK + b"\x00"), "33 bytes"),
    ],
)
def test_malformed(did: str, words: str) -> None:
    with pytest.raises(EncodingError, match=words):
        public_from_did(did)


def test_not_a_string() -> None:
    with pytest.raises(EncodingError, match="str"):
        public_from_did(_GOOD.encode())  # type: ignore[arg-type]


def _never_crashes(did: str) -> None:
    try:
        public_from_did(did)
    except EncodingError:
        pass


@given(st.text(max_size=200))
def test_random_text_only_encoding_error(text: str) -> None:
    _never_crashes(text)
    _never_crashes("did:key:" + text)
    _never_crashes("did:key:z" + text)


@given(st.text(alphabet=base58.BITCOIN_ALPHABET.decode(), max_size=120))
def test_random_base58_only_encoding_error(text: str) -> None:
    _never_crashes("did:key:z" + text)


@given(st.binary(max_size=60))
def test_random_payload(payload: bytes) -> None:
    did = _b58did(payload)
    if payload[:2] == b"\xed\x01" and len(payload) == 34:
        assert public_from_did(did).raw == payload[2:]
    else:
        with pytest.raises(EncodingError):
            public_from_did(did)


# --- short --------------------------------------------------------------------------


def test_short() -> None:
    did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
    assert short(did) == "iTBz1ymuepAQ…"


@given(st.text(max_size=300))
def test_short_never_raises_and_is_bounded(text: str) -> None:
    assert len(short(text)) <= len(ED25519_DID_PREFIX) + 13
