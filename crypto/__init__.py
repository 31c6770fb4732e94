"""Pure cryptography for sealchain: keys, hashing, Merkle trees, did:key, credentials.

Nothing here does I/O beyond key files, reads a clock, or imports trio, libp2p,
plyvel or `node`.
"""
