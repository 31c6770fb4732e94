"""Protocol errors, under the one root `crypto.errors.Error`.

`ProtocolError` splits, as in h11, into `LocalProtocolError` (we were asked to
produce something invalid) and `RemoteProtocolError` (a peer or client sent
something invalid). A remote error carries `penalty`: the points a peer loses
for sending it. `ValidationError` is the remote error for a record or field
that breaks a rule; it names the field and the rule.
"""

from __future__ import annotations

from crypto.errors import Error, VerificationError

__all__ = [
    "Error",
    "VerificationError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "DecodeError",
    "ValidationError",
    "FeedError",
    "RoleError",
]


class ProtocolError(Error):
    """Something broke the sealchain protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to produce something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """Input from a peer or a client breaks the protocol.

    `penalty` is how many points a peer that sent it loses (0 for input that
    may be honest, such as a record whose predecessor we have not seen yet).
    """

    def __init__(self, message: str, *, penalty: int = 10) -> None:
        super().__init__(message)
        self.penalty = penalty


class DecodeError(RemoteProtocolError):
    """Bytes that are not a canonical sealchain encoding."""


class ValidationError(RemoteProtocolError):
    """A value breaks a rule. `field` names where (dotted path), `rule` which."""

    def __init__(self, field: str, rule: str, message: str, *, penalty: int = 10) -> None:
        super().__init__(f"{field}: {message}" if field else message, penalty=penalty)
        self.field = field
        self.rule = rule
        self.detail = message

    def under(self, prefix: str) -> ValidationError:
        """The same error with its field nested under `prefix`."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)(field, self.rule, self.detail, penalty=self.penalty)


class FeedError(RemoteProtocolError):
    """A record does not fit its author's feed (seq or prev broken)."""


class RoleError(RemoteProtocolError):
    """An author lacks the credential or role for what it wrote.

    `rule` is a stable code: `author.unknown`, `author.expired`,
    `author.revoked`, `author.not_yet_valid`, `role`, `trademark`, `delegation`.
    """

    def __init__(self, rule: str, message: str, *, penalty: int = 5) -> None:
        super().__init__(message, penalty=penalty)
        self.rule = rule
