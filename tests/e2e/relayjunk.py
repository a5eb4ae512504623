"""Hostile traffic for a relay, run inside a lab host: junk datagrams of many
sizes (some dressed as hellos) to its hello port and its nodes' ports, then
a TLS connection to its TCP fallback that sends garbage frames.

    python relayjunk.py RELAY_IP COUNT
"""

from __future__ import annotations

import os
import socket
import ssl
import sys

SIZES = [1, 68, 69, 1420, 9000]
PORTS = [3478, 40000, 40001, 40002]


def main() -> None:
    host, count = sys.argv[1], int(sys.argv[2])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        size = SIZES[i % len(SIZES)]
        junk = (bytes([9, 0, 0, 0]) if i % 3 == 0 else b"") + os.urandom(size)
        udp.sendto(junk[:size], (host, PORTS[i % len(PORTS)]))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection((host, 443), timeout=10)) as tls:
        # a frame for port 40000 with random bytes, then a zero-length frame
        tls.sendall(b"\x00\x10\x9c\x40" + os.urandom(16) + bytes(16))


if __name__ == "__main__":
    main()
