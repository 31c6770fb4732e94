"""Errors of the daemon shell, under the one root `crypto.errors.Error`."""

from __future__ import annotations

from crypto.errors import Error


class StorageError(Error):
    """The database is missing, corrupt, locked, or of another schema version."""


class ConfigError(Error):
    """A configuration file or option is invalid; the message names it."""


class RpcError(Error):
    """An RPC request failed; carries the HTTP status and a stable error code."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


class NetworkError(Error):
    """A peer connection or stream failed."""


class StreamClosed(NetworkError):
    """The stream was closed or reset by the other side."""
