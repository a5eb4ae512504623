"""The sans-I/O peer protocol: Noise IK handshake, session keys, rekeying,
replay protection, keepalives and the wire format.

It takes bytes and a ``now`` and returns bytes and events, so it can be tested
exhaustively without sockets and driven by any event loop.
"""
