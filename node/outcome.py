"""What became of a submitted record, and the error of a failed append to our own feed."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import Error


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one submitted record."""

    status: str  # stored | duplicate | pending | rejected | fork
    id: bytes | None = None
    reason: str | None = None
    penalty: int = 0


class AppendError(Error):
    """The node could not append to its own feed; `outcome` says why."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason or outcome.status)
        self.outcome = outcome


__all__ = ["AppendError", "Outcome"]
