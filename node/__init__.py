"""The sealchain daemon: store, state, rules, network, RPC, CLI.

The state, facts, rules and verification modules are pure; the rest is the
trio shell that does the I/O.
"""
