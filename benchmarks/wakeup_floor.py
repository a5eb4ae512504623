"""What four userspace hops cost a round trip on this machine, whatever runs in them.

A userspace VPN's ping crosses four processes' passes (each agent, each way), so its
RTT over native has a floor set by how fast an idle process wakes, reads one
datagram and writes it on, before any crypto or switching. This measures that floor
with the least code possible in each pass: a UDP round trip from a client to an echo
process directly (the baseline, one hop), and through a chain of two relay
processes that do nothing but ``recvfrom`` and ``sendto`` (four more hops, the shape
of a ping through two VPN agents), with relays written in Python and, when a C
compiler is there, in C. Each round trip starts after a pause, as a ping every
``pause`` seconds does.

    .venv/bin/python benchmarks/wakeup_floor.py [--samples 300] [--pauses 0 0.01 0.02]

Loopback only (127.0.0.1); every child is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

# A relay forwards what comes from port A to port B and everything else to port A;
# the echo sends each datagram back. Both get their bound socket's fd as argv[1].
C_RELAY = r"""
#include <stdlib.h>
#include <arpa/inet.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int fd = atoi(argv[1]), a = atoi(argv[2]), b = argc > 3 ? atoi(argv[3]) : -1;
    char buf[2048];
    for (;;) {
        struct sockaddr_in from; socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
        if (b >= 0) from.sin_port = htons(ntohs(from.sin_port) == a ? b : a);
        sendto(fd, buf, n, 0, (struct sockaddr *)&from, len);
    }
}
"""

PY_RELAY = """
import socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
a = int(sys.argv[2]); b = int(sys.argv[3]) if len(sys.argv) > 3 else None
while True:
    data, (host, port) = s.recvfrom(2048)
    s.sendto(data, (host, port if b is None else (b if port == a else a)))
"""


def bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@contextmanager
def started(program: Sequence[str], sock: socket.socket, *ports: int) -> Iterator[None]:
    argv = [*program, str(sock.fileno()), *map(str, ports)]
    proc = subprocess.Popen(argv, pass_fds=(sock.fileno(),))
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def round_trips(client: socket.socket, first: int, pause: float, samples: int) -> float:
    """Median µs of ``samples`` round trips of a 98-byte datagram, each after ``pause``."""
    client.settimeout(2.0)
    times = []
    for _ in range(samples + 5):  # the first few warm the path up
        if pause:
            time.sleep(pause)
        t0 = time.perf_counter_ns()
        client.sendto(b"x" * 98, ("127.0.0.1", first))
        client.recv(2048)
        times.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(times[5:])


def measure(relay: list[str] | None, echo: list[str], pause: float, samples: int) -> float:
    """Round trips to the echo, directly or (with ``relay``) through two relays;
    the children are killed, then every socket closed, on the way out."""
    with ExitStack() as stack:
        client, echo_sock, near, far = (stack.enter_context(bound()) for _ in range(4))
        stack.enter_context(started(echo, echo_sock, 0))
        first = port(echo_sock)
        if relay is not None:
            stack.enter_context(started(relay, near, port(client), port(far)))
            stack.enter_context(started(relay, far, port(near), port(echo_sock)))
            first = port(near)
        return round_trips(client, first, pause, samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--pauses", type=float, nargs="+", default=[0, 0.01, 0.02])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        py_relay = [sys.executable, "-c", PY_RELAY]
        kinds: dict[str, list[str]] = {"Python": py_relay}
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc:
            src, exe = Path(tmp, "relay.c"), Path(tmp, "relay")
            src.write_text(C_RELAY)
            subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
            kinds["C"] = [str(exe)]
        echo = kinds.get("C", py_relay)
        print(f"UDP round trips on loopback, medians of {args.samples}, µs")
        print(
            f"{'pause':>8}{'direct':>9}"
            + "".join(f"{k + ' relays':>15}{'added':>8}" for k in kinds)
        )
        for pause in args.pauses:
            direct = measure(None, echo, pause, args.samples)
            row = f"{pause * 1000:>5.0f} ms{direct:>9.1f}"
            for argv in kinds.values():
                chained = measure(argv, echo, pause, args.samples)
                row += f"{chained:>15.1f}{chained - direct:>8.1f}"
            print(row)


if __name__ == "__main__":
    main()
