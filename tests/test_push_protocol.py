"""Push protocol machines wired together in memory, and hand-driven peers for the
misbehaviour cases.

`Log` stands in for the provider's store (entries by cursor, each with its
context); `Inbox` for the subscriber's: it keeps entries by alert key (a
duplicate key is dropped, as `Ledger.record_alert` does) and a persisted cursor.
`Link` runs one session between them, carrying bytes both ways and the shell's
actions, and checks the provider never has more than `window` entries unacked.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol.bodies import SEVERITIES, ObjectRef, alert_key
from protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from protocol.push import (
    EMPTY,
    KINDS,
    Ack,
    Action,
    Alerts,
    Backlog,
    Context,
    Deliver,
    Filter,
    Persist,
    PushLimits,
    PushProvider,
    PushSubscriber,
    State,
    Subscribe,
    wire_entry,
)
from protocol.sync_messages import Bye, Disconnect, FrameDecoder, Message, Send, encode_frame
from tests import examples as ex

NET = ex.NETWORK
BRAND = bytes([7]) * 32
OTHER_BRAND = bytes([8]) * 32
SMALL = PushLimits(window=8, batch=3, page=5)
_fast = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def entry(cursor: int, severity: str = "critical", container: str = ex.CONTAINER,
          rule: str = "seal_mismatch") -> dict[str, Any]:
    evidence = sorted([ex.record_id(f"a{cursor}"), ex.record_id(f"b{cursor}")])
    subject = {"kind": "container", "id": container}
    reason = f"alert {cursor}"
    key = alert_key(rule, ObjectRef(**subject), evidence, severity=severity, reason=reason)
    return {"cursor": cursor, "key": key, "rule": rule, "severity": severity,
            "subject": subject, "reason": reason, "evidence": evidence, "ts": ex.T0 + cursor}


def ctx(*jurisdictions: str, brands: tuple[bytes, ...] = ()) -> Context:
    return Context(jurisdictions=frozenset(jurisdictions), brands=frozenset(brands))


class Log:
    """The provider's alert log: cursor -> (entry, context)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, Any], Context]] = []

    def add(self, severity: str = "critical", context: Context = EMPTY) -> tuple[int, dict[str, Any], Context]:
        c = len(self.rows) + 1
        self.rows.append((c, entry(c, severity), context))
        return self.rows[-1]

    def after(self, cursor: int, limit: int) -> list[tuple[int, dict[str, Any], Context]]:
        return self.rows[cursor:cursor + limit]


class Inbox:
    """The subscriber's side: entries kept once by key, and the persisted cursor."""

    def __init__(self) -> None:
        self.keys: dict[bytes, int] = {}
        self.order: list[int] = []
        self.cursor = 0
        self.delivered: list[int] = []  # every cursor delivered, duplicates included

    def store(self, d: Deliver, persist: bool = True) -> None:
        for c, e in d.entries:
            self.delivered.append(c)
            if e["key"] not in self.keys:
                self.keys[e["key"]] = c
                self.order.append(c)
        if persist:
            self.cursor = d.upto


class Link:
    """One session between a provider over `log` and a subscriber into `inbox`."""

    def __init__(self, log: Log, inbox: Inbox, flt: Filter, limits: PushLimits = SMALL,
                 *, auto_ack: bool = True) -> None:
        self.log, self.inbox, self.limits = log, inbox, limits
        self.now = 1_000
        self.provider = PushProvider(NET, self.now, limits)
        self.subscriber = PushSubscriber(NET, flt, inbox.cursor, limits)
        self.auto_ack = auto_ack
        self.persisted: list[Persist] = []
        self.held: list[Deliver] = []  # deliveries not acked yet (auto_ack off)
        self.to_sub: list[bytes] = []
        self.to_prov: list[bytes] = []
        self.closed = False
        self._provider_do(self._sub_do(self.subscriber.start(self.now)))

    def _provider_do(self, actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            if isinstance(a, Send):
                self.to_sub.append(a.data)
            elif isinstance(a, Backlog):
                queue += self.provider.supply(self.log.after(a.from_cursor, a.limit), self.now)
            elif isinstance(a, Persist):
                self.persisted.append(a)
            elif isinstance(a, Disconnect):
                self.closed = True
        assert len(self.provider._inflight) <= self.limits.window

    def _sub_do(self, actions: list[Action]) -> list[Action]:
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            if isinstance(a, Send):
                self.to_prov.append(a.data)
            elif isinstance(a, Deliver):
                if self.auto_ack:
                    self.inbox.store(a)
                    queue += self.subscriber.stored(a.upto)
                else:
                    self.held.append(a)
            elif isinstance(a, Disconnect):
                self.closed = True
        return []

    def ack_held(self) -> None:
        for d in self.held:
            self.inbox.store(d)
            self._sub_do(self.subscriber.stored(d.upto))
        self.held.clear()

    def offer(self, *rows: tuple[int, dict[str, Any], Context]) -> None:
        self._provider_do(self.provider.offer(list(rows), self.now))

    def tick(self, ms: int = 1000) -> None:
        self.now += ms
        self._provider_do(self.provider.tick(self.now))
        self._sub_do(self.subscriber.tick(self.now))

    def pump(self, *, chunk: int | None = None) -> None:
        """Carry bytes both ways until nothing moves (optionally in small pieces)."""
        while self.to_sub or self.to_prov:
            if self.to_sub:
                data = self.to_sub.pop(0)
                for part in _split(data, chunk):
                    if not self.subscriber.closed:
                        self._sub_do(self.subscriber.receive(part, self.now))
            if self.to_prov:
                data = self.to_prov.pop(0)
                for part in _split(data, chunk):
                    if not self.provider.closed:
                        self._provider_do(self.provider.receive(part, self.now))


def _split(data: bytes, chunk: int | None) -> list[bytes]:
    if chunk is None:
        return [data]
    return [data[i:i + chunk] for i in range(0, len(data), chunk)]


def frames(data: bytes) -> list[Message]:
    return FrameDecoder(kinds=KINDS).feed(data)


# -- filter ----------------------------------------------------------------------


@pytest.mark.parametrize(("flt", "context", "want"), [
    (Filter(), EMPTY, True),
    (Filter(jurisdictions={"DE"}), ctx("DE", "NL"), True),
    (Filter(jurisdictions={"DE"}), ctx("NL"), False),
    (Filter(jurisdictions={"DE"}), EMPTY, False),
    (Filter(brands={BRAND}), ctx(brands=(BRAND,)), True),
    (Filter(brands={BRAND}), ctx(brands=(OTHER_BRAND,)), False),
    (Filter(marks={"ACME"}), Context(marks=frozenset({"ACME"})), True),
    (Filter(marks={"ACME"}), Context(marks=frozenset({"OTHER"})), False),
    (Filter(containers={ex.CONTAINER}), Context(containers=frozenset({ex.CONTAINER})), True),
    (Filter(containers={ex.CONTAINER}), Context(containers=frozenset({ex.CONTAINER_2})), False),
    (Filter(shipments={ex.SHIPMENT}), Context(shipments=frozenset({ex.SHIPMENT})), True),
    (Filter(shipments={ex.SHIPMENT}), Context(shipments=frozenset({"X"})), False),
    # every non-empty field must match
    (Filter(jurisdictions={"DE"}, brands={BRAND}), ctx("DE"), False),
    (Filter(jurisdictions={"DE"}, brands={BRAND}), ctx("DE", brands=(BRAND,)), True),
])
def test_filter_fields(flt: Filter, context: Context, want: bool) -> None:
    assert flt.matches(entry(1), context) is want


@pytest.mark.parametrize("level", SEVERITIES)
def test_filter_minimum_severity(level: str) -> None:
    flt = Filter(min_severity=level)
    for sev in SEVERITIES:
        assert flt.matches(entry(1, sev)) is (SEVERITIES.index(sev) >= SEVERITIES.index(level))
    assert not flt.matches({"severity": "urgent"})


def test_filter_wire_map_is_canonical_and_checked() -> None:
    flt = Filter(jurisdictions={"NL", "DE"}, brands={BRAND}, marks={"ACME"}, min_severity="high")
    assert Filter.from_map(flt.to_map()) == flt
    assert flt.needs_context
    assert not Filter(min_severity="high").needs_context
    bad = flt.to_map() | {"jurisdictions": ["NL", "DE"]}  # not ascending
    with pytest.raises(LocalProtocolError):
        Filter.from_map(bad)
    for change in ({"jurisdictions": ["de"]}, {"brands": [b"short"]}, {"min_severity": "x"},
                   {"marks": [1, "a"]}, {"marks": "ACME"}):
        with pytest.raises(LocalProtocolError):
            Filter.from_map(flt.to_map() | change)
    with pytest.raises(LocalProtocolError):
        Filter(jurisdictions="DE")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Filter(marks={str(i) for i in range(300)})


def test_wire_entry_keeps_network_fields_and_checks_the_key() -> None:
    e = entry(3) | {"via": BRAND, "received": 5, "retracted": 9}
    w = wire_entry(e)
    assert set(w) == {"evidence", "key", "reason", "retracted", "rule", "severity", "subject", "ts"}
    with pytest.raises(LocalProtocolError):
        wire_entry(entry(3) | {"reason": "x", "key": bytes(32)})
    with pytest.raises(LocalProtocolError):
        wire_entry({k: v for k, v in entry(3).items() if k != "ts"})


# -- messages --------------------------------------------------------------------


@pytest.mark.parametrize("msg", [
    Subscribe(network=NET, filter=Filter(jurisdictions={"DE"}, brands={BRAND}), cursor=7),
    Alerts(after=3, upto=9, entries=[(4, wire_entry(entry(4))), (9, wire_entry(entry(9)))]),
    Alerts(after=3, upto=3, entries=[]),
    Ack(cursor=12),
    Bye(reason="done"),
])
def test_messages_round_trip(msg: Message) -> None:
    assert Message.from_bytes(msg.to_bytes(), KINDS) == msg
    assert frames(encode_frame(msg)) == [msg]


def test_alerts_entries_must_lie_in_order_inside_the_range() -> None:
    e4, e5 = wire_entry(entry(4)), wire_entry(entry(5))
    for entries in ([(5, e5), (4, e4)], [(3, e4)], [(10, e4)], [(4, e4), (4, e4)]):
        with pytest.raises(LocalProtocolError):
            Alerts(after=3, upto=9, entries=entries)
    with pytest.raises(LocalProtocolError):
        Alerts(after=5, upto=4, entries=[])


def test_a_forged_entry_does_not_decode() -> None:
    for change in ({"severity": "info"}, {"reason": "nothing to see"},
                   {"subject": {"id": ex.CONTAINER_2, "kind": "container"}},
                   {"evidence": entry(4)["evidence"][:1]}):
        forged = wire_entry(entry(4)) | change  # the key no longer matches
        data = codec.encode_local({"after": 3, "entries": [[4, forged]], "k": "alerts",
                                   "upto": 4})
        with pytest.raises(RemoteProtocolError):
            Message.from_bytes(data, KINDS)


def test_an_altered_entry_has_a_key_of_its_own() -> None:
    """A provider that alters severity or reason must give the entry another key: the
    subscriber stores it beside the real alert (keys are unique), never in its place."""
    real = wire_entry(entry(4))
    altered = {**real, "severity": "info", "reason": "all fine"}
    altered["key"] = alert_key(real["rule"], ObjectRef(**real["subject"]), real["evidence"],
                               severity="info", reason="all fine")
    msg = Alerts(after=3, upto=4, entries=[(4, altered)])
    assert msg.entries[0][1]["key"] != real["key"]


# -- end to end ------------------------------------------------------------------


def test_backlog_then_live_in_order_only_matches() -> None:
    log, inbox = Log(), Inbox()
    for i in range(40):
        log.add(context=ctx("DE" if i % 3 == 0 else "NL"))
    link = Link(log, inbox, Filter(jurisdictions={"DE"}))
    link.pump()
    want = [c for c, _, x in log.rows if "DE" in x.jurisdictions]
    assert inbox.order == want
    assert link.persisted[0].filter == Filter(jurisdictions={"DE"})
    for i in range(10):
        link.offer(log.add(context=ctx("DE" if i % 2 else "FR")))
        link.pump()
    want = [c for c, _, x in log.rows if "DE" in x.jurisdictions]
    assert inbox.order == want
    assert inbox.delivered == want
    link.tick()  # progress: the scan passed non-matching entries at the end
    link.pump()
    assert inbox.cursor == len(log.rows)
    assert link.persisted[-1].cursor == len(log.rows)


def test_severity_filter_drops_low_alerts() -> None:
    log, inbox = Log(), Inbox()
    for i in range(20):
        log.add(severity=SEVERITIES[i % len(SEVERITIES)])
    link = Link(log, inbox, Filter(min_severity="high"))
    link.pump()
    assert inbox.order == [c for c, e, _ in log.rows if e["severity"] in ("high", "critical")]


def test_flow_control_holds_the_window_until_acked() -> None:
    log, inbox = Log(), Inbox()
    for _ in range(30):
        log.add()
    link = Link(log, inbox, Filter(), auto_ack=False)
    link.pump()
    assert sum(len(d.entries) for d in link.held) == SMALL.window
    link.offer(log.add())  # live while the window is full: waits
    link.pump()
    assert sum(len(d.entries) for d in link.held) == SMALL.window
    while link.held:
        link.ack_held()
        link.pump()
    assert inbox.order == list(range(1, 32))
    assert link.provider.sent == 31


def test_no_ack_times_out_and_keepalive_flows() -> None:
    log, inbox = Log(), Inbox()
    link = Link(log, inbox, Filter())
    link.pump()
    link.tick(SMALL.keepalive_ms)
    assert len(link.to_sub) == 1  # a keepalive
    link.pump()
    assert not link.closed
    link.auto_ack = False
    link.offer(log.add())
    link.pump()
    link.tick(SMALL.ack_timeout_ms + 1)
    assert link.closed
    assert link.provider.closed


def test_subscriber_gives_up_on_a_silent_provider() -> None:
    sub = PushSubscriber(NET, Filter(), 0, SMALL)
    sub.start(0)
    assert sub.tick(SMALL.idle_timeout_ms) == []
    actions = sub.tick(SMALL.idle_timeout_ms + 1)
    assert isinstance(actions[-1], Disconnect)
    assert sub.closed


def test_provider_without_subscribe_times_out() -> None:
    prov = PushProvider(NET, 0, SMALL)
    assert prov.tick(SMALL.subscribe_timeout_ms) == []
    actions = prov.tick(SMALL.subscribe_timeout_ms + 1)
    assert isinstance(frames(actions[0].data)[0], Bye)  # type: ignore[union-attr]


def test_live_offers_with_a_gap_are_read_back_from_the_log() -> None:
    log, inbox = Log(), Inbox()
    link = Link(log, inbox, Filter())
    link.pump()
    rows = [log.add() for _ in range(6)]
    link.offer(rows[0], rows[3], rows[5])  # 2, 3, 5 were never offered
    link.pump()
    assert inbox.order == [1, 2, 3, 4, 5, 6]
    link.offer(rows[4])  # late and old: ignored
    link.pump()
    assert inbox.delivered == [1, 2, 3, 4, 5, 6]


def test_log_end_hint_reads_back_entries_never_offered() -> None:
    log, inbox = Log(), Inbox()
    link = Link(log, inbox, Filter())
    link.pump()
    for _ in range(12):
        log.add()
    link._provider_do(link.provider.offer([], link.now, log_end=12))
    link.pump()
    assert inbox.order == list(range(1, 13))


@_fast
@given(st.integers(0, 2**32), st.integers(1, 6))
def test_exactly_once_across_reconnects(seed: int, every: int) -> None:
    rnd = random.Random(seed)
    log, inbox = Log(), Inbox()
    flt = Filter(jurisdictions={"DE"})
    for _ in range(rnd.randrange(0, 30)):
        log.add(context=ctx(rnd.choice(["DE", "NL"])))
    for _ in range(rnd.randrange(1, 6)):
        link = Link(log, inbox, flt)
        for _ in range(rnd.randrange(0, 15)):
            link.offer(log.add(context=ctx(rnd.choice(["DE", "NL"]))))
            if rnd.randrange(every) == 0:
                link.pump(chunk=rnd.choice([None, 1, 7, 100]))
        if rnd.random() < 0.3:  # crash: stored, cursor not persisted, not acked
            link.auto_ack = False
            link.pump()
            for d in link.held:
                inbox.store(d, persist=False)
        else:
            link.pump()
    link = Link(log, inbox, flt)
    link.pump()
    link.tick()
    link.pump()
    want = [c for c, _, x in log.rows if "DE" in x.jurisdictions]
    assert inbox.order == want  # each once, in order
    assert inbox.cursor == len(log.rows)


# -- misbehaving peers ---------------------------------------------------------------


def _streaming_subscriber(cursor: int = 5) -> PushSubscriber:
    sub = PushSubscriber(NET, Filter(), cursor, SMALL)
    sub.start(0)
    return sub


def test_subscriber_rejects_gaps_and_regressions_and_drops_duplicates() -> None:
    e = {c: wire_entry(entry(c)) for c in range(1, 12)}
    sub = _streaming_subscriber(5)
    with pytest.raises(RemoteProtocolError):
        sub.receive(encode_frame(Alerts(after=6, upto=8, entries=[(7, e[7])])), 1)
    assert sub.closed
    sub = _streaming_subscriber(5)
    [d] = sub.receive(encode_frame(Alerts(after=5, upto=8, entries=[(7, e[7])])), 1)
    assert isinstance(d, Deliver)
    assert [c for c, _ in d.entries] == [7]
    [d] = sub.receive(encode_frame(Alerts(after=2, upto=10, entries=[(3, e[3]), (9, e[9])])), 1)
    assert isinstance(d, Deliver)
    assert [c for c, _ in d.entries] == [9]
    assert sub.duplicates == 1
    with pytest.raises(RemoteProtocolError):
        sub.receive(encode_frame(Alerts(after=5, upto=9, entries=[])), 1)
    with pytest.raises(LocalProtocolError):
        _streaming_subscriber(5).stored(6)


def test_provider_rejects_bad_acks_and_foreign_networks() -> None:
    log, inbox = Log(), Inbox()
    for _ in range(3):
        log.add()
    link = Link(log, inbox, Filter(), auto_ack=False)
    link.pump()
    with pytest.raises(RemoteProtocolError):
        link.provider.receive(encode_frame(Ack(cursor=99)), 0)
    prov = PushProvider(NET, 0, SMALL)
    actions = prov.receive(encode_frame(Subscribe(network=bytes(32), filter=Filter(), cursor=0)), 0)
    assert prov.closed
    assert isinstance(actions[-1], Disconnect)


@pytest.mark.parametrize("msg", [
    Subscribe(network=NET, filter=Filter(), cursor=0), Alerts(after=0, upto=0, entries=[]),
    Ack(cursor=0),
])
def test_messages_out_of_place_are_protocol_errors(msg: Message) -> None:
    prov = PushProvider(NET, 0, SMALL)
    sub = _streaming_subscriber(0)
    if isinstance(msg, Subscribe):
        prov.receive(encode_frame(msg), 0)  # fine once...
        with pytest.raises(RemoteProtocolError):
            prov.receive(encode_frame(msg), 0)  # ...not twice
    else:
        if isinstance(msg, Ack):
            with pytest.raises(RemoteProtocolError):
                prov.receive(encode_frame(msg), 0)  # before subscribing
        else:
            with pytest.raises(RemoteProtocolError):
                prov.receive(encode_frame(msg), 0)
    if not isinstance(msg, Alerts):
        with pytest.raises(RemoteProtocolError):
            sub.receive(encode_frame(msg), 0)


def test_bye_and_end_of_stream_close_cleanly() -> None:
    sub = _streaming_subscriber(0)
    [d] = sub.receive(encode_frame(Bye(reason="going")), 0)
    assert isinstance(d, Disconnect)
    assert sub.state is State.CLOSED
    prov = PushProvider(NET, 0, SMALL)
    [d] = prov.receive(b"", 0)
    assert isinstance(d, Disconnect)
    prov = PushProvider(NET, 0, SMALL)
    with pytest.raises(RemoteProtocolError):
        prov.receive(encode_frame(Ack(cursor=1))[:3], 0) or prov.receive(b"", 0)


def _drive_garbage(machine: PushProvider | PushSubscriber, data: bytes) -> None:
    try:
        for i in range(0, len(data), 17):
            machine.receive(data[i:i + 17], 0)
            if machine.closed:
                return
        machine.receive(b"", 0)
    except ProtocolError:
        assert machine.closed


@_fast
@given(st.binary(max_size=400), st.booleans())
def test_garbage_only_raises_protocol_errors(data: bytes, framed: bool) -> None:
    if framed:
        data = len(data).to_bytes(4, "big") + data
    _drive_garbage(PushProvider(NET, 0, SMALL), data)
    _drive_garbage(_streaming_subscriber(0), data)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@_fast
@given(st.sampled_from(["subscribe", "alerts", "ack", "bye", "heads"]),
       st.dictionaries(st.sampled_from(["after", "upto", "entries", "cursor", "filter", "net", "v",
                                        "reason", "x"]), _VALUES, max_size=5))
def test_well_framed_nonsense_only_raises_protocol_errors(kind: str, fields: dict[str, Any]) -> None:
    try:
        payload = codec.encode_local({"k": kind, **fields})
    except ProtocolError:
        return
    data = len(payload).to_bytes(4, "big") + payload
    _drive_garbage(PushProvider(NET, 0, SMALL), data)
    _drive_garbage(_streaming_subscriber(0), data)


# -- entries from signed alert records ---------------------------------------------


def signed_entry(**changes: Any) -> dict[str, Any]:
    """The wire entry of a signed alert record (by a fresh key), with the record's wire."""
    from crypto.keys import SigningKey
    from protocol.envelope import Record

    body = ex.alert()
    r = Record.sign(SigningKey.generate(), network=bytes(32), seq=1, prev=None, ts=ex.T0,
                    type="alert", body=body)
    stored = {"key": body["key"], "rule": body["rule"], "severity": body["severity"],
              "subject": dict(body["subject"]), "reason": body["reason"],
              "evidence": list(body["evidence"]), "ts": ex.T0, "record": r.id,
              "author": r.author, "signed": r.wire}
    return wire_entry(stored) | changes


def alerts_bytes(e: dict[str, Any]) -> bytes:
    return codec.encode_local({"after": 3, "entries": [[4, e]], "k": "alerts", "upto": 4})


def test_a_signed_entry_travels_with_its_record() -> None:
    from protocol.push import signed_record

    e = signed_entry()
    assert "record" not in e
    assert "author" not in e
    msg = Message.from_bytes(alerts_bytes(e), KINDS)
    assert isinstance(msg, Alerts)
    r = signed_record(msg.entries[0][1])
    assert r.type == "alert"
    assert r.body.key == e["key"]


def test_a_signed_entry_must_say_what_its_record_says() -> None:
    real = signed_entry()
    reason = "all fine"
    rekeyed = alert_key(real["rule"], ObjectRef(**real["subject"]), real["evidence"],
                        severity="info", reason=reason)
    other = signed_entry()["signed"]  # another record (another signer) with the same body
    tampered = bytearray(real["signed"])
    tampered[-1] ^= 1  # the signature
    for forged in ({**real, "severity": "info", "reason": reason, "key": rekeyed},
                   {**real, "signed": bytes(tampered)}, {**real, "signed": b"\x93garbage"}):
        with pytest.raises(RemoteProtocolError):
            Message.from_bytes(alerts_bytes(forged), KINDS)
    Message.from_bytes(alerts_bytes({**real, "signed": other}), KINDS)  # also signed: fine
