"""`node.daemon.signals_ignored`: a second signal while the node closes its store.

The first SIGINT or SIGTERM begins a clean shutdown (tests/test_cli_client.py); one
arriving while the store closes must neither interrupt nor kill the process.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

from node.daemon import signals_ignored


def test_signals_are_ignored_while_the_store_closes_then_restored() -> None:
    got: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    before_int = signal.getsignal(signal.SIGINT)
    before_term = signal.signal(signal.SIGTERM, record)
    try:
        with signals_ignored():
            os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert got == []
        assert signal.getsignal(signal.SIGINT) is before_int
        assert signal.getsignal(signal.SIGTERM) is record
        os.kill(os.getpid(), signal.SIGTERM)  # handled again once the block ends
        time.sleep(0.05)
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before_term)


def test_disabled_it_changes_nothing() -> None:
    before = signal.getsignal(signal.SIGINT)
    with signals_ignored(False):
        assert signal.getsignal(signal.SIGINT) is before
