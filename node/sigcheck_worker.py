"""The helper process of `node.sigcheck`: checks Ed25519 signatures, nothing else.

Run as a script by `node.sigcheck` (`python sigcheck_worker.py DOMAIN_HEX`), it
imports only msgpack and PyNaCl and speaks frames on its standard streams, each
a 4-byte big-endian length and a msgpack value:

- in: `[seq, items]`: a frame number and a list of `[author, unsigned,
  signature]` (bytes, bytes, bytes);
- out: `[seq, count, bad]`: the same frame number, how many it checked, and the
  indexes in the list of the ones whose signature does not hold (`signature` over `DOMAIN + unsigned` by
  the Ed25519 key `author`; a signature of any length but 64 bytes fails).

It exits when its input ends (its parent closed the pipe or died) and on any
malformed frame; it ignores SIGINT, which a terminal sends to the whole process
group: its parent decides when it stops.
"""

from __future__ import annotations

import signal
import struct
import sys

import msgpack
import nacl.exceptions
import nacl.signing

MAX_FRAME = 64 << 20


def bad_indexes(domain: bytes, items: list[list[bytes]]) -> list[int]:
    bad = []
    for i, (author, unsigned, signature) in enumerate(items):
        try:
            if len(signature) != 64:
                raise ValueError("an Ed25519 signature is 64 bytes")
            nacl.signing.VerifyKey(author).verify(domain + unsigned, signature)
        except (ValueError, TypeError, nacl.exceptions.BadSignatureError,
                nacl.exceptions.ValueError, nacl.exceptions.TypeError):
            bad.append(i)
    return bad


def read_exact(stream: object, n: int) -> bytes | None:
    data = stream.read(n)  # type: ignore[attr-defined]
    return data if len(data) == n else None


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    domain = bytes.fromhex(sys.argv[1])
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = read_exact(inp, 4)
        if head is None:
            return 0
        (size,) = struct.unpack(">I", head)
        if size > MAX_FRAME:
            return 2
        frame = read_exact(inp, size)
        if frame is None:
            return 2
        try:
            seq, items = msgpack.unpackb(frame)
            if type(seq) is not int or type(items) is not list:
                return 2
            bad = bad_indexes(domain, items)
        except (ValueError, TypeError, msgpack.UnpackException):
            return 2
        reply = msgpack.packb([seq, len(items), bad])
        out.write(struct.pack(">I", len(reply)) + reply)
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
