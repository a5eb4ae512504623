"""What a NAT does to a host's traffic, seen from both ends (run inside lab
hosts by tests/e2e/test_lab_nat.py).

``natprobe.py reflect PORT...``: answer every UDP datagram on each port with
the address and port it came from, and accept TCP on each port, answering
the same; prints ``ready`` once listening.

``natprobe.py udp SRC_PORT HOST PORT...``: from one UDP socket bound to
``SRC_PORT``, ask the reflector on each port and print one line per port:
the address the reflector saw, or ``none`` if no answer came.

``natprobe.py tcp HOST PORT``: print what the reflector saw of a TCP
connection to ``PORT``, or ``none`` if it could not connect.
"""

from __future__ import annotations

import selectors
import socket
import sys

TIMEOUT_S = 1.0


def reflect(ports: list[int]) -> None:
    sel = selectors.DefaultSelector()
    for port in ports:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", port))
        sel.register(udp, selectors.EVENT_READ, "udp")
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("0.0.0.0", port))
        tcp.listen(16)
        sel.register(tcp, selectors.EVENT_READ, "tcp")
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if key.data == "udp":
                _, (ip, port) = sock.recvfrom(2048)
                sock.sendto(f"{ip}:{port}".encode(), (ip, port))
            else:
                conn, (ip, port) = sock.accept()
                with conn:
                    conn.sendall(f"{ip}:{port}".encode())


def udp(src_port: int, host: str, ports: list[int]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", src_port))
    sock.settimeout(TIMEOUT_S)
    for port in ports:
        seen = "none"
        for _ in range(3):  # a datagram may be lost while ARP resolves
            sock.sendto(b"?", (host, port))
            try:
                data, _ = sock.recvfrom(2048)
            except TimeoutError:
                continue
            seen = data.decode()
            break
        print(seen, flush=True)


def tcp(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S) as conn:
            print(conn.recv(100).decode(), flush=True)
    except OSError:
        print("none", flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "reflect":
        reflect([int(a) for a in args])
    elif mode == "udp":
        udp(int(args[0]), args[1], [int(a) for a in args[2:]])
    else:
        tcp(args[0], int(args[1]))
