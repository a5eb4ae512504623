"""The relay's talk with the controller: every few seconds it says its key
and what it carried, and takes the list of keys allowed to use it when that
list changed. The certificate pin is proven before the credential is sent.

While the controller is unreachable the relay keeps serving the keys it
last had: nodes already relayed keep their paths.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import httpx

from skylan.model.publickey import decode_public
from skylan.model.relayapi import RelaySync, RelaySyncAnswer
from skylan.pinning import PinnedAsyncTransport, pin_failure
from skylan.relay.forwarder import Forwarder

log = logging.getLogger("skylan.relay")

SYNC_EVERY = 5.0  # after a failure, again this soon
WAIT = 5.0  # a sync waits this long for new keys: its counters are at most this old


class ControllerLink:
    def __init__(
        self,
        url: str,
        fingerprint: str,
        credential: str,
        forwarder: Forwarder,
        tls_port: int | None = None,
    ) -> None:
        self.forwarder = forwarder
        self.tls_port = tls_port
        self.keys_version = ""
        self.last_error: str | None = None
        self.synced = asyncio.Event()  # set once the first key list arrived
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {credential}"},
            timeout=WAIT + 15.0,
            transport=PinnedAsyncTransport(fingerprint),
        )

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sync(wait=WAIT if self.synced.is_set() else 0.0)
            except (httpx.HTTPError, ValueError) as exc:
                message = pin_failure(exc) or str(exc) or type(exc).__name__
                if message != self.last_error:
                    log.warning("controller: %s", message)
                self.last_error = message
                await asyncio.sleep(SYNC_EVERY)
                continue
            # answered early: keys changed; do not come back at once after
            # each of a burst of enrolments
            await asyncio.sleep(max(0.0, 0.2 - (time.monotonic() - started)))

    async def sync(self, wait: float = 0.0) -> None:
        fwd = self.forwarder
        body = RelaySync(
            public_key=base64.b64encode(fwd.keypair.public).decode(),
            keys_version=self.keys_version,
            tls_port=self.tls_port,
            nodes=len(fwd.nodes),
            forwarded_bytes=fwd.forwarded_bytes,
            forwarded_packets=fwd.forwarded_packets,
            dropped=sum(fwd.drops.values()),
        )
        response = await self._client.post(
            "/api/v1/relay/sync", json=body.model_dump(), params={"wait": wait}
        )
        if response.status_code != 200:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ValueError(f"{response.status_code}: {message}")
        answer = RelaySyncAnswer.model_validate_json(response.content)
        if answer.keys is not None:
            keys = set()
            for text in answer.keys:
                try:
                    keys.add(decode_public(text))
                except ValueError:
                    continue  # (the controller validated them; a bad one costs only itself)
            fwd.set_allowed(keys)
            self.keys_version = answer.keys_version
            log.info("%d keys may use this relay", len(keys))
        if self.last_error is not None:
            log.info("controller reachable again")
        self.last_error = None
        self.synced.set()

    async def aclose(self) -> None:
        await self._client.aclose()
