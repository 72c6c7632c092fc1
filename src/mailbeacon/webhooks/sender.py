"""One HTTP attempt to a checked address: no redirects, no proxies, a deadline, a capped read.

The URL is checked and its host resolved again right before the attempt
(``ssrf.resolve_target``); the connection then goes to that very address,
with the original host in the ``Host`` header and in TLS SNI, so certificate
checks still name the host and a DNS answer that changed in between cannot
redirect the request. A 3xx is a failure (Standard Webhooks says so too), and
at most 64 KB of the answer is read and never shown to the tenant.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from mailbeacon.webhooks.policy import Outcome, parse_retry_after
from mailbeacon.webhooks.ssrf import Resolver, UnsafeURL, resolve_target

__all__ = ["Sender"]

_MAX_READ = 64 * 1024
USER_AGENT = "mailbeacon-webhooks/1"


class Sender:
    def __init__(self, *, timeout: float, allow_private: bool, resolver: Resolver | None = None) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._resolver = resolver
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False, verify=True
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        try:
            target = await asyncio.to_thread(
                resolve_target, url, allow_private=self.allow_private, resolver=self._resolver
            )
        except UnsafeURL as exc:
            return Outcome(None, f"refused: {exc}")
        host = f"[{target.address}]" if ":" in target.address else target.address
        pinned = httpx.URL(url).copy_with(host=host.strip("[]"), port=target.port)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        request_headers = {
            **headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": host_header,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with asyncio.timeout(self.timeout):
                request = self._client.build_request(
                    "POST", pinned, content=body.encode(), headers=request_headers, extensions=extensions
                )
                response = await self._client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= _MAX_READ:
                            break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(None, f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {str(exc)[:200]}")
        code = response.status_code
        error = None
        if 300 <= code < 400:
            error = "redirects are not followed; give the final URL"
        elif not 200 <= code < 300:
            error = f"HTTP {code}"
        return Outcome(code, error, parse_retry_after(response.headers.get("retry-after"), time.time()))
