"""Custody records: a hand-over offered by the holder and accepted by the recipient.

Both name the object's current custody head (its mint or container.create
record, or the last accepted hand-over), so two hand-overs from the same head
are a provable fork of the object's custody chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import schema
from protocol.bodies.common import GOODS_REF, ObjectRef
from protocol.schema import f, register

__all__ = ["HandoverOffer", "HandoverAccept"]


@register("handover.offer")
@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverOffer(schema.Body):
    """The holder of `object` offers it to the key `to`."""

    object: ObjectRef = f(GOODS_REF)
    to: bytes = f(schema.key32)
    head: bytes = f(schema.hash32)


@register("handover.accept")
@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverAccept(schema.Body):
    """The recipient accepts the offer `offer` (naming the same object and head)."""

    offer: bytes = f(schema.hash32)
    object: ObjectRef = f(GOODS_REF)
    head: bytes = f(schema.hash32)
