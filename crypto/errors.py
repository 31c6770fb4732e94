"""The one error tree of sealchain.

Every error the project raises on purpose is an `Error`. Foreign exceptions are
mapped at the boundary (`raise OurError(...) from exc`). `protocol/` and `node/`
add their branches under the same root (see `protocol.errors`, `node.errors`).
"""

from __future__ import annotations


class Error(Exception):
    """Root of every sealchain error."""


class CryptoError(Error):
    """A cryptographic operation failed or was given malformed input."""


class VerificationError(CryptoError):
    """A signature, hash link, proof or credential does not verify."""


class KeyFileError(CryptoError):
    """A key file is missing, malformed, truncated, unreadable or undecryptable.

    The message always names the file.
    """


class EncodingError(CryptoError):
    """A did:key, multibase or other identifier encoding is malformed."""
