"""Conformance suite: runs mixed clusters of swim_py and foca (rust_peer) nodes.

Every node process speaks the control contract in PEER_CONTRACT.md, so the
harness drives all implementations alike. ``swim-conformance run`` is the
entry point.
"""
