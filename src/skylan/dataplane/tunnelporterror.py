"""The data plane's start-up failure that a user causes and can fix.

Kept apart from :mod:`skylan.dataplane.udp` so that the CLI can name it
without importing the data plane (and numpy) on every command.
"""

from __future__ import annotations

import errno


class TunnelPortError(OSError):
    """The tunnel's UDP port cannot be bound: most often another program (a
    second agent, another VPN) holds it."""

    def __init__(self, host: str, port: int, code: int, reason: str) -> None:
        self.reason = reason
        if code == errno.EADDRINUSE:
            message = (
                f"UDP port {port} on {host} is already in use (another skylan agent, or "
                "another VPN?); stop it, or move the tunnels: skylan agent run --listen-port N"
            )
        else:
            message = f"cannot use UDP port {port} on {host}: {reason}"
        super().__init__(code, message)
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)
