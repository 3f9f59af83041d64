"""Fabric CA's REST API over HTTP(S): a Starlette/FastAPI shell around `FabricCa`.

Routes parse the request (the raw body is kept: the token signs its exact bytes), call one
`FabricCa` method and answer Fabric CA's envelope `{"result", "errors", "messages",
"success"}`. Every failure, ours or a malformed request, is an envelope too, with the HTTP
status of its error category; a body over 64 KiB is refused before it is read whole. At most
`MAX_ENROLLING` enrolments check a secret at once (argon2id: 19 MiB and tens of milliseconds
each): a flood of guesses gets 503 with `Retry-After` instead of the CA's memory and CPU.
Nothing here logs a header or a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from medalliance.ca.authority import FabricCa
from medalliance.ca.messages import EnrollBody, GenCrlBody, RegisterBody, RevokeBody
from medalliance.ca.registrar import CaIdentity
from medalliance.ca.token import parse_basic
from medalliance.errors import CaAuthenticationFailed, InvalidArgument, MedallianceError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_ENROLLING = 2
_Body = TypeVar("_Body", bound=BaseModel)


def create_ca_app(ca: FabricCa) -> FastAPI:
    """The ASGI application serving `ca` under /api/v1 (and /cainfo for `GET`)."""
    app = FastAPI(title=f"Fabric CA {ca.name}", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(MedallianceError)
    async def _error(_: Request, exc: MedallianceError) -> JSONResponse:
        return _envelope(None, exc.status.http, str(exc))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("fabric ca request failed")  # the traceback, never the request
        return _envelope(None, 500, "internal error; see the CA's log")

    @app.get("/api/v1/cainfo")
    @app.post("/api/v1/cainfo")
    async def cainfo() -> JSONResponse:
        return _envelope(ca.cainfo())

    enrolling = 0  # enrolments checking a secret now; one event loop, so no lock

    @app.post("/api/v1/enroll")
    async def enroll(request: Request) -> JSONResponse:
        nonlocal enrolling
        if enrolling >= MAX_ENROLLING:
            busy = _envelope(None, 503, "too many enrolments at once; retry in a second")
            busy.headers["Retry-After"] = "1"
            return busy
        enrolling += 1
        try:
            credentials = parse_basic(request.headers.get("authorization", ""))
            body = _parse(EnrollBody, await _read(request))
            return _envelope(await run_in_threadpool(ca.enroll, credentials, body))
        finally:
            enrolling -= 1

    async def signed(
        request: Request, model: type[_Body], call: Callable[[CaIdentity, _Body], dict[str, Any]]
    ) -> JSONResponse:
        raw = await _read(request)
        caller = await _caller(ca, request, raw)
        body = _parse(model, raw)
        return _envelope(await run_in_threadpool(call, caller, body))

    @app.post("/api/v1/reenroll")
    async def reenroll(request: Request) -> JSONResponse:
        return await signed(request, EnrollBody, ca.reenroll)

    @app.post("/api/v1/register")
    async def register(request: Request) -> JSONResponse:
        return await signed(request, RegisterBody, ca.register)

    @app.post("/api/v1/revoke")
    async def revoke(request: Request) -> JSONResponse:
        return await signed(request, RevokeBody, ca.revoke)

    @app.post("/api/v1/gencrl")
    async def gencrl(request: Request) -> JSONResponse:
        return await signed(request, GenCrlBody, ca.gencrl)

    @app.get("/api/v1/identities")
    async def identities(request: Request) -> JSONResponse:
        caller = await _caller(ca, request, b"")
        return _envelope(await run_in_threadpool(ca.identities, caller))

    @app.get("/api/v1/identities/{enrollment_id}")
    async def identity(request: Request, enrollment_id: str) -> JSONResponse:
        caller = await _caller(ca, request, b"")
        return _envelope(await run_in_threadpool(ca.identity, caller, enrollment_id))

    return app


def _envelope(result: Any, status: int = 200, error: str | None = None) -> JSONResponse:
    errors = [] if error is None else [{"code": status, "message": error}]
    return JSONResponse(
        {"result": result, "errors": errors, "messages": [], "success": error is None},
        status_code=status,
    )


async def _read(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > MAX_BODY_BYTES
    ):
        raise _TooLarge()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge()
    return body


async def _caller(ca: FabricCa, request: Request, body: bytes) -> CaIdentity:
    header = request.headers.get("authorization")
    if not header:
        raise CaAuthenticationFailed(
            "authentication failure: this call needs an Authorization token; enroll first"
        )
    uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await run_in_threadpool(ca.authenticate, header, request.method, uri, body)


def _parse(model: type[_Body], raw: bytes) -> _Body:
    try:
        return model.model_validate(json.loads(raw or b"{}"))
    except (ValueError, ValidationError) as exc:
        where = ""
        if isinstance(exc, ValidationError) and exc.errors():
            first = exc.errors()[0]
            where = f" at {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        raise InvalidArgument(f"the request body is not a valid {model.__name__}{where}") from None


class _TooLarge(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(f"the request body exceeds {MAX_BODY_BYTES} bytes")
