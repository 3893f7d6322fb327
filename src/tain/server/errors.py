"""The server's edge: every ``TainError`` becomes its HTTP status and a JSON body."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from tain.errors import InvalidRequest, TainError

log = logging.getLogger("tain.server")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TainError)
    async def _tain_error(request: Request, exc: TainError) -> Response:
        if exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if request.method == "HEAD":
            return Response(status_code=exc.http_status, headers=headers)
        return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        err = InvalidRequest(f"{where}: {first.get('msg', 'invalid request')}")
        return JSONResponse(err.to_json(), status_code=400)
