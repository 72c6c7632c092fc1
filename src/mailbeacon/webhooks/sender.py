"""One HTTP attempt to a checked address: no redirects, no proxies, a deadline, a capped read.

Every attempt checks the URL again (scheme, host, an address literal); every
new connection resolves the host through ``CheckedResolver``, which refuses it
unless *each* address it resolves to may be used (``ssrf.check_resolved``), so
a DNS answer that changed after the endpoint was created (rebinding) cannot
point a delivery at this network. The URL keeps its host name, so the
``Host`` header, TLS SNI, the certificate check and the connection pool's key
all name the host; a kept-alive connection goes on to the address that was
checked when it was opened. A 3xx is a failure (Standard Webhooks says so
too), and at most 64 KB of the answer is read and never shown to the tenant.

aiohttp rather than httpx: measured here (benchmarks/webhooks.py, and a bare
POST loop against a local receiver), httpx's async stack spends 0.8-3 ms of CPU
per request (anyio checkpoints and cancel scopes, worse with concurrency),
aiohttp ~0.15 ms: the difference between ~700 and several thousand deliveries a
second on one core.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from mailbeacon.webhooks.policy import Outcome, parse_retry_after
from mailbeacon.webhooks.ssrf import Resolver, UnsafeURL, check_resolved, check_url, is_address

__all__ = ["CheckedResolver", "Sender"]

_MAX_READ = 64 * 1024
USER_AGENT = "mailbeacon-webhooks/1"


class RefusedAddress(OSError):
    """Raised by ``CheckedResolver`` (aiohttp passes resolver OSErrors on): the host may not be used."""


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver for webhook hosts: every address must pass ``ssrf.check_address``."""

    def __init__(self, *, allow_private: bool, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolver = resolver  # tests answer names without DNS

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        addresses = [host] if is_address(host) else await self._lookup(host, port, family)
        try:
            check_resolved(host, addresses, allow_private=self.allow_private)
        except UnsafeURL as exc:
            raise RefusedAddress(str(exc)) from None
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in addresses
        ]

    async def _lookup(self, host: str, port: int, family: socket.AddressFamily) -> Sequence[str]:
        try:
            if self._resolver is not None:
                return await asyncio.to_thread(self._resolver, host, port)
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, family=family, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise RefusedAddress(f"the host {host!r} does not resolve ({exc})") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    async def close(self) -> None:
        return None


class Sender:
    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        resolver: Resolver | None = None,
        connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Must be made on the event loop it is used on (aiohttp binds its session to it)."""
        self.timeout = timeout
        self.allow_private = allow_private
        self._refusals: dict[str, str | None] = {}
        connector = aiohttp.TCPConnector(
            resolver=CheckedResolver(allow_private=allow_private, resolver=resolver),
            use_dns_cache=False,  # resolve (and check) again for every new connection
            limit=connections,
            limit_per_host=32,  # per receiver: a busy endpoint gets a few parallel requests, not hundreds
            ssl=ssl_context if ssl_context is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout),
            trust_env=False,  # no proxies from the environment
            auto_decompress=False,  # the answer is read only to keep the connection, never decoded
            skip_auto_headers=("Accept-Encoding",),
        )

    async def close(self) -> None:
        await self._session.close()

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be posted to before any lookup (its form, an address literal), or None.

        A pure function of the URL, so remembered: the check parses and IDNA-encodes the URL,
        which was a few per cent of each delivery."""
        try:
            return self._refusals[url]
        except KeyError:
            pass
        why = None
        try:
            _, host, _ = check_url(url, allow_private=self.allow_private)
            if is_address(host):  # aiohttp connects to literals without asking the resolver
                check_resolved(host, [host], allow_private=self.allow_private)
        except UnsafeURL as exc:
            why = str(exc)
        if len(self._refusals) >= 10_000:
            self._refusals.clear()
        self._refusals[url] = why
        return why

    async def post(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        why = self.refusal(url)
        if why is not None:
            return Outcome(None, f"refused: {why}")
        request_headers = {**headers, "content-type": "application/json", "user-agent": USER_AGENT}
        try:
            # The session's total timeout covers the lookup, connecting, sending and reading.
            async with self._session.post(
                url, data=body.encode(), headers=request_headers, allow_redirects=False
            ) as response:
                read = 0
                async for chunk in response.content.iter_any():
                    read += len(chunk)
                    if read >= _MAX_READ:
                        break  # the connection is closed instead of kept
                code = response.status
                retry_after = response.headers.get("retry-after")
        except TimeoutError:
            return Outcome(None, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                return Outcome(None, f"refused: {exc.os_error}")
            return Outcome(None, f"{type(exc).__name__}: {str(exc)[:200]}")
        except (aiohttp.ClientError, ValueError) as exc:
            return Outcome(None, f"{type(exc).__name__}: {str(exc)[:200]}")
        error = None
        if 300 <= code < 400:
            error = "redirects are not followed; give the final URL"
        elif not 200 <= code < 300:
            error = f"HTTP {code}"
        return Outcome(code, error, parse_retry_after(retry_after, time.time()))
