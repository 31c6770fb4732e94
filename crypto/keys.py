"""Ed25519 keys (PyNaCl).

One key per node: the same 32-byte seed is the libp2p peer identity and the
record-signing key. Signatures are always made over a sealchain domain prefix
(see `protocol.envelope`), never over bare bytes that libp2p could also sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from crypto.errors import CryptoError, VerificationError

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key (32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != PUBLIC_KEY_SIZE:
            raise CryptoError("an Ed25519 public key is 32 bytes")

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise `VerificationError` unless `signature` is ours over `message`."""
        if len(signature) != SIGNATURE_SIZE:
            raise VerificationError("an Ed25519 signature is 64 bytes")
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
            raise VerificationError("bad signature") from exc

    def is_valid(self, message: bytes, signature: bytes) -> bool:
        try:
            self.verify(message, signature)
        except VerificationError:
            return False
        return True


class SigningKey:
    """An Ed25519 private key. Holds the seed; never printed."""

    __slots__ = ("_sk", "public")

    def __init__(self, seed: bytes) -> None:
        if type(seed) is not bytes or len(seed) != SEED_SIZE:
            raise CryptoError("an Ed25519 seed is 32 bytes")
        self._sk = nacl.signing.SigningKey(seed)
        self.public = PublicKey(bytes(self._sk.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._sk)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature over `message`."""
        return bytes(self._sk.sign(message).signature)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.raw.hex()[:16]}…)"
