"""The sealchain wire format and rules, pure: canonical codec, envelope,
record types and schemas, feed and role rules, sync and push messages.

Imports only `crypto` and the standard library (and msgpack); never trio,
libp2p, plyvel or `node`.
"""
