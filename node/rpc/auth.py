"""Bearer-token access: a write token and a read-only token, compared in constant time.

The tokens are made by `sealchain init` (`DATA/rpc.tokens`, mode 0600). Every
request names one in `Authorization: Bearer <token>`; both are compared, each
with `hmac.compare_digest`, so the time taken tells nothing about either.
"""

from __future__ import annotations

import enum
import hmac

from node.datadir import Tokens
from node.errors import RpcError


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"


class Auth:
    def __init__(self, tokens: Tokens) -> None:
        self._write = tokens.write.encode()
        self._read = tokens.read.encode()

    def access(self, authorization: str | None) -> Access:
        """The access a request's Authorization header grants, or `RpcError` 401."""
        if not authorization:
            raise RpcError(401, "unauthorized", "missing bearer token (Authorization: Bearer …)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise RpcError(401, "unauthorized", "expected Authorization: Bearer <token>")
        given = token.strip().encode("utf-8", "replace")
        is_write = hmac.compare_digest(given, self._write)
        is_read = hmac.compare_digest(given, self._read)
        if is_write:
            return Access.WRITE
        if is_read:
            return Access.READ
        raise RpcError(401, "unauthorized", "invalid bearer token")

    def require(self, authorization: str | None, need: Access) -> Access:
        got = self.access(authorization)
        if need is Access.WRITE and got is not Access.WRITE:
            raise RpcError(403, "read_only", "this token is read-only; writes need the write token")
        return got
