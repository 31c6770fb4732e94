"""The node's HTTP JSON API (Starlette on Hypercorn's trio worker): see `node.rpc.app`."""
