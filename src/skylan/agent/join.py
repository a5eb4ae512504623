"""Enrollment: turn a join token into a node identity and credential."""

from __future__ import annotations

import asyncio
import platform
import socket

from skylan import __version__
from skylan.agent.controlplane import ControlPlane, ControlPlaneError, controller_urls
from skylan.agent.state import Enrollment, StateDir
from skylan.hostnet.interfaces import endpoints, physical_interfaces
from skylan.model.agentapi import EnrollRequest
from skylan.model.jointoken import JoinToken

DEFAULT_PORT = 51820
ATTEMPTS = 3  # a lost answer is asked for again (the same request)


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
    """Enroll with the controller at ``url`` (or the first reachable of a
    comma-separated list of replicas), pinning the certificate named in the
    token, and store the result in ``state``."""
    token = JoinToken.parse(token_text)
    urls = controller_urls(url)
    key = state.key()
    # pyroute2's synchronous API runs its own loop: keep it off ours
    interfaces = await asyncio.to_thread(physical_interfaces)
    request = EnrollRequest(
        token=str(token),
        public_key=key.public_b64,
        request_id=state.enroll_request_id(),
        hostname=sanitize_hostname(hostname or socket.gethostname()),
        os=f"{platform.system()} {platform.release()}",
        agent_version=__version__,
        interfaces=[i.as_report() for i in interfaces],
        endpoints=endpoints(interfaces, listen_port)[:16],
    )
    cp = ControlPlane(urls, token.fingerprint)
    try:
        for attempt in range(ATTEMPTS):
            try:
                answer = await cp.enroll(request)
                break
            except ControlPlaneError as exc:
                if exc.status is not None or attempt == ATTEMPTS - 1:
                    raise  # refused, or nobody answers
                await asyncio.sleep(1.0 + attempt)
    finally:
        await cp.aclose()
    enrollment = Enrollment(
        node_id=answer.node_id,
        name=answer.name,
        controller_url=urls[0],
        fingerprint=token.fingerprint,
        credential=answer.credential,
        listen_port=listen_port,
        controller_urls=urls,
    )
    state.save_enrollment(enrollment)
    state.enrolled()
    return enrollment
