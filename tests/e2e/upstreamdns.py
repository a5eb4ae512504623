"""The lab hosts' "other" DNS server: answers www.example.test, NXDOMAIN for
everything else. Run in a lab host: ``upstreamdns.py ADDRESS``."""

from __future__ import annotations

import socket
import sys

import dns.message
import dns.rcode
import dns.rrset

NAME = "www.example.test."
ADDRESS = "198.51.100.80"


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sys.argv[1], 53))
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
        except Exception:
            continue
        answer = dns.message.make_response(query)
        question = query.question[0]
        if question.name.to_text().lower() == NAME and question.rdtype == 1:
            answer.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", ADDRESS))
        elif question.name.to_text().lower() != NAME:
            answer.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(answer.to_wire(), peer)


if __name__ == "__main__":
    main()
