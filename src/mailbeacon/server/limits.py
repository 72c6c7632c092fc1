"""Request body limit for the API: a precise 413 instead of buffering anything a client sends."""

from __future__ import annotations

from typing import Any

from mailbeacon.server.problems import problem_response

__all__ = ["BodyLimit"]

_DRAIN_BYTES = 64 * 1024 * 1024


class BodyLimit:
    """Plain ASGI middleware: refuses bodies over ``limit`` bytes, by Content-Length or as they stream."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, send)
            await _drain(receive, _DRAIN_BYTES)
            return
        chunks: list[bytes] = []
        size = 0
        while True:  # read it all first: the endpoint never sees a partial body
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send)
                if message.get("more_body"):
                    await _drain(receive, _DRAIN_BYTES)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                later: dict[str, Any] = await receive()
                return later
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        response = problem_response(
            413, f"request body is larger than {self.limit:,} bytes (MAILBEACON_MAX_BODY_BYTES)"
        )
        response.headers["connection"] = "close"
        await response(scope, _no_receive, send)


async def _drain(receive: Any, budget: int) -> None:
    # Read (and drop) the rest of a refused upload, up to ``budget``: a server that stops
    # reading and closes makes the client see a reset instead of the 413 it was sent.
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        budget -= len(message.get("body", b""))


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
