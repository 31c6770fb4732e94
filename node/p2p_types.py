"""The values `node.p2p` hands out: peer events, gossip messages, its counters.

Plain data, no libp2p: users of the adapter import them from `node.p2p`, which
re-exports them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PeerEventKind(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerEvent:
    """A peer gained its first connection or lost its last one."""

    kind: PeerEventKind
    public_key: bytes
    peer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipMessage:
    """A validated gossip message. `author` signed it (strict signing)."""

    topic: str
    data: bytes
    author: bytes
    seqno: int


@dataclass(slots=True)
class NetStats:
    """Counters for the metrics endpoint: every overflow in this module lands here."""

    peer_events_dropped: int = 0  # nobody drained `Host.peer_events` fast enough
    subscription_dropped: int = 0  # a subscriber's channel was full
    publish_waits: int = 0  # publishes that waited for a peer's outbound queue
    publish_wait_timeouts: int = 0  # ... and gave up waiting (that peer is marked slow)
    refused: int = 0  # connections, streams and gossip refused by `Host.refuse`
