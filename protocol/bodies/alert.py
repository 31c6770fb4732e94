"""Alert records: a deterministic rule fired on a subject, with the evidence record ids.

`key` identifies the alert network-wide: the same rule on the same subject and
evidence, with the same severity and reason, has the same key whoever raises it,
so duplicates collapse. Severity and reason are in the key so that a copy with
either altered (a peer pushing a forged entry) has a key of its own and cannot
take the place of the real alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crypto import hashing
from protocol import codec, schema
from protocol.bodies.common import SEVERITIES, ObjectRef, text
from protocol.errors import ValidationError
from protocol.schema import f, register

__all__ = ["Alert", "alert_key"]


def alert_key(rule: str, subject: ObjectRef, evidence: Sequence[bytes], *, severity: str,
              reason: str) -> bytes:
    """The network-wide key of an alert: a hash of rule, subject, sorted evidence,
    severity and reason."""
    value = [rule, subject.kind, subject.id, sorted(bytes(e) for e in evidence), severity,
             reason]
    return hashing.h(hashing.ALERT_ID, codec.encode(value))


@register("alert")
@dataclass(frozen=True, slots=True, kw_only=True)
class Alert(schema.Body):
    """Rule `rule` fired on `subject` with severity `severity`, because of `evidence`."""

    rule: str = f(schema.string(64, r"[a-z][a-z0-9_.]*"))
    severity: str = f(schema.one_of(*SEVERITIES))
    subject: ObjectRef = f(schema.struct(ObjectRef))
    reason: str = f(text(500))
    evidence: tuple[bytes, ...] = f(schema.list_of(schema.hash32, min=1, max=64, ascending=True))
    key: bytes = f(schema.hash32)

    def validate(self, path: str) -> None:
        want = alert_key(self.rule, self.subject, self.evidence, severity=self.severity,
                         reason=self.reason)
        if self.key != want:
            raise ValidationError(f"{path}.key", "alert_key", f"key should be {want.hex()}")
