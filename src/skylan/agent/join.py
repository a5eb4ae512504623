"""Enrollment: turn a join token into a node identity and credential."""

from __future__ import annotations

import asyncio
import platform
import socket

from skylan import __version__
from skylan.agent.controlplane import ControlPlane
from skylan.agent.state import Enrollment, StateDir
from skylan.hostnet.interfaces import endpoints, physical_interfaces
from skylan.model.jointoken import JoinToken

DEFAULT_PORT = 51820


def sanitize_hostname(name: str) -> str:
    cleaned = "".join(
        c if c.isalnum() or c in "-_." else "-" for c in name.split(".", maxsplit=1)[0]
    )
    return cleaned.strip("-_.")[:64] or "node"


async def join(
    url: str,
    token_text: str,
    state: StateDir,
    *,
    hostname: str | None = None,
    listen_port: int = DEFAULT_PORT,
) -> Enrollment:
    """Enroll with the controller at ``url``, pinning the certificate named
    in the token, and store the result in ``state``."""
    token = JoinToken.parse(token_text)
    key = state.key()
    # pyroute2's synchronous API runs its own loop: keep it off ours
    interfaces = await asyncio.to_thread(physical_interfaces)
    cp = ControlPlane(url, token.fingerprint)
    try:
        answer = await cp.enroll(
            {
                "token": str(token),
                "public_key": key.public_b64,
                "hostname": sanitize_hostname(hostname or socket.gethostname()),
                "os": f"{platform.system()} {platform.release()}",
                "agent_version": __version__,
                "interfaces": [i.as_report() for i in interfaces],
                "endpoints": endpoints(interfaces, listen_port)[:16],
            }
        )
    finally:
        await cp.aclose()
    enrollment = Enrollment(
        node_id=answer["node_id"],
        name=answer["name"],
        controller_url=url.rstrip("/"),
        fingerprint=token.fingerprint,
        credential=answer["credential"],
        listen_port=listen_port,
    )
    state.save_enrollment(enrollment)
    return enrollment
