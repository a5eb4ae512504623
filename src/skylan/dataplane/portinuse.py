"""The one start-up failure of the data plane a user causes and can fix.

Kept apart from :mod:`skylan.dataplane.udp` so that the CLI can name it
without importing the data plane (and numpy) on every command.
"""

from __future__ import annotations


class PortInUseError(OSError):
    """The tunnel's UDP port is bound by another program, often a second agent."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"UDP port {port} on {host} is already in use (another skylan agent, or "
            "another VPN?); stop it or enroll with a different --listen-port"
        )
        self.host = host
        self.port = port
