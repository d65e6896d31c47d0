"""``swim-conformance bench``: swim_py beside foca (rust_peer) and swim-protocol.

``runner`` parses the command line and runs the sections: ``codec``,
``core``, ``sim``, ``udp`` and ``soak``. Each section module returns plain
JSON-ready dicts, and ``report`` prints them side by side.
"""
