"""What an alert concerns, for matching push subscriptions (`protocol.push.Filter`).

An alert names one subject; a subscriber filters on more than that: the
countries involved (customs), the brand and mark of the goods (trademark
owners), the containers and shipments. `alert_context` derives these from the
log through two readers, so it stays pure (the shell passes store reads):

- container: itself; its shipments (`shipments`, `declarations` facts); the
  jurisdictions it is declared in; its shipments' origin and destination
  countries and declarations.
- token: the mint records' authors (brands) and marks; the containers it was
  packed in, with their shipments and countries as above (at most
  `MAX_CONTAINERS` of them).
- shipment: itself; its containers, origin and destination countries and
  declarations.
- party (feed forks, author alerts): nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from node import facts as F
from protocol.envelope import Record
from protocol.push import EMPTY, Context

MAX_CONTAINERS: Final = 16  # containers one token's context looks into

FactsReader = Callable[[bytes], F.Facts]  # object key -> its facts ({} if none)
RecordReader = Callable[[bytes], Record | None]  # record id -> the record


@dataclass
class _Acc:
    brands: set[bytes] = field(default_factory=set)
    containers: set[str] = field(default_factory=set)
    jurisdictions: set[str] = field(default_factory=set)
    marks: set[str] = field(default_factory=set)
    shipments: set[str] = field(default_factory=set)

    def freeze(self) -> Context:
        return Context(brands=frozenset(self.brands), containers=frozenset(self.containers),
                       jurisdictions=frozenset(self.jurisdictions), marks=frozenset(self.marks),
                       shipments=frozenset(self.shipments))


def alert_context(entry: Mapping[str, Any], facts: FactsReader, record: RecordReader) -> Context:
    """The context of one alert entry (`node.ledger` alert log format)."""
    subject = entry.get("subject")
    if not isinstance(subject, Mapping):
        return EMPTY
    kind, ident = subject.get("kind"), subject.get("id")
    if not isinstance(ident, str):
        return EMPTY
    acc = _Acc()
    if kind == "container":
        _container(ident, acc, facts, record)
    elif kind == "shipment":
        _shipment(ident, acc, facts, record, with_containers=True)
    elif kind == "token":
        try:
            tid = bytes.fromhex(ident)
        except ValueError:
            return EMPTY
        _token(tid, acc, facts, record)
    else:
        return EMPTY
    return acc.freeze()


def _container(number: str, acc: _Acc, facts: FactsReader, record: RecordReader) -> None:
    acc.containers.add(number)
    f = facts(F.container_key(number))
    shipments = {s for s, _rid in f.get("shipments", ())}
    for _rid, shipment, jurisdiction in f.get("declarations", ()):
        shipments.add(shipment)
        acc.jurisdictions.add(jurisdiction)
    for s in sorted(shipments):
        _shipment(s, acc, facts, record, with_containers=False)


def _shipment(sid: str, acc: _Acc, facts: FactsReader, record: RecordReader, *,
              with_containers: bool) -> None:
    acc.shipments.add(sid)
    f = facts(F.shipment_key(sid))
    for _rid, jurisdiction, _author in f.get("declarations", ()):
        acc.jurisdictions.add(jurisdiction)
    for rid, _author in sorted(f.get("create", ())):
        r = record(rid)
        if r is None or r.type != "shipment.create":
            continue
        body: Any = r.body
        acc.jurisdictions.update((body.origin.country, body.destination.country))
        if with_containers:
            acc.containers.update(body.containers)


def _token(tid: bytes, acc: _Acc, facts: FactsReader, record: RecordReader) -> None:
    f = facts(F.token_key(tid))
    for mint_id, author in sorted(f.get("mint", ())):
        acc.brands.add(author)
        r = record(mint_id)
        if r is not None and r.type == "product.mint":
            acc.marks.add(r.body.mark)
    containers = sorted({c for c, _root, _pid in f.get("packs", ())})
    for number in containers[:MAX_CONTAINERS]:
        _container(number, acc, facts, record)
