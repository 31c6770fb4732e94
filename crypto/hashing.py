"""Domain-separated BLAKE2b-256.

Every hash sealchain computes names its purpose: the domain goes into BLAKE2b's
`person` parameter (at most 16 bytes), so a record id can never collide with a
Merkle leaf, a network id or a token id even over identical bytes.
"""

from __future__ import annotations

import hashlib
from typing import Final

DIGEST_SIZE: Final = 32

# Domains in use. Each is at most 16 bytes (BLAKE2b's personalisation size).
RECORD_ID: Final = b"sc/record-id"
NETWORK_ID: Final = b"sc/network-id"
TOKEN_ID: Final = b"sc/token-id"
MERKLE_LEAF: Final = b"sc/merkle-leaf"
MERKLE_NODE: Final = b"sc/merkle-node"
STATE_ROOT: Final = b"sc/state-root"
ALERT_ID: Final = b"sc/alert-key"


def h(domain: bytes, data: bytes) -> bytes:
    """BLAKE2b-256 of `data` under `domain`."""
    if not 0 < len(domain) <= 16:
        raise ValueError("hash domain must be 1..16 bytes")
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE, person=domain).digest()


def hasher(domain: bytes) -> hashlib.blake2b:
    """An incremental BLAKE2b-256 hasher under `domain`, for large inputs."""
    return hashlib.blake2b(digest_size=DIGEST_SIZE, person=domain)
