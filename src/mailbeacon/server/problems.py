"""Every API error as RFC 9457 problem details (``application/problem+json``).

One place turns exceptions into responses: validation errors name each
offending field, HTTP errors keep their status, and anything unexpected is
logged with its traceback and answered with a 500 that shows none.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

__all__ = ["ProblemError", "install", "problem_response"]

log = logging.getLogger("mailbeacon.api")
PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raise from an endpoint to answer with a problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return Response(
        json.dumps(body, ensure_ascii=False), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _field(location: tuple[Any, ...]) -> str:
    # ("body", "tags", 0) -> "tags[0]"; ("query", "limit") -> "limit"
    parts = (
        [str(p) for p in location[1:]]
        if location and location[0] in ("body", "query", "path", "header")
        else [str(p) for p in location]
    )
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


def _validation(exc: RequestValidationError) -> Response:
    errors = [
        {
            "field": _field(tuple(error.get("loc", ()))),
            "message": error.get("msg", "invalid"),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]
    if any(error["type"] == "json_invalid" for error in errors):
        return problem_response(400, "the request body is not valid JSON", errors=errors)
    fields = ", ".join(dict.fromkeys(error["field"] for error in errors))
    return problem_response(422, f"invalid value for: {fields}", errors=errors)


def _allowed(request: Request) -> set[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation(_request: Request, exc: RequestValidationError) -> Response:
        return _validation(exc)

    @app.exception_handler(ProblemError)
    async def _on_problem(_request: Request, exc: ProblemError) -> Response:
        return problem_response(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def _on_http(request: Request, exc: HTTPException) -> Response:
        detail = (
            exc.detail
            if isinstance(exc.detail, str) and exc.detail != HTTPStatus(exc.status_code).phrase
            else None
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; GET and POST on
            # /api/v1/messages are two routes, so gather what every route of this path allows.
            headers["Allow"] = ", ".join(sorted(_allowed(request)))
        return problem_response(exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _on_bug(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, "internal error; it has been logged")
